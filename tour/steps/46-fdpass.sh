# shellcheck shell=bash
# Tour step for fdpass: what only the Unix domain of "Socket" (multiprocess-ipc.md) carries:
# open descriptors and the sender's credentials. Sourced by tour/tour.sh.
chapter "Socket · fdpass: passing an open file over a unix socket"

step "Socket · AF_UNIX carries descriptors (SCM_RIGHTS) and credentials (SCM_CREDENTIALS)" \
    'printf "skipped\nread by another process\n" >data.txt
fdpass send --socket fd.sock --file data.txt --offset 8 >send.log &
until grep -q "^waiting on" send.log; do sleep 0.05; done
fdpass receive --socket fd.sock; wait $!
echo "--- the sender:"; cat send.log; ls fd.sock 2>/dev/null || echo "(fd.sock removed)"' \
    "the receiver never opened data.txt: it got the sender's descriptor, read from where the sender had left the offset, and moved the sender's offset too; the kernel told it the sender's pid and uid."
