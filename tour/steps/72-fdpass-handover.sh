# shellcheck shell=bash
# Tour step for fdpass serve-listener/take-listener: the last section of
# signals-and-graceful-restart.md done as HAProxy and Envoy do it. Sourced by tour/tour.sh.
chapter "信号 · fdpass: a successor asks for the listener (HAProxy's way)"

step "Go网络服务器如何无缝重启 · the new process is not the old one's child" \
    'fdpass serve-listener --socket ctl.sock >old.log &
until grep -q "^serving" old.log; do sleep 0.05; done
port=$(sed -nE "1s/^serving on 127\.0\.0\.1:([0-9]+) .*/\1/p" old.log)
socat -u TCP:127.0.0.1:$port -
fdpass take-listener --socket ctl.sock --count 1 >new.log &
until grep -q "^serving" new.log; do sleep 0.05; done
socat -u TCP:127.0.0.1:$port -
wait
echo "--- the old server:"; cat old.log; echo "--- the new one:"; cat new.log' \
    "same port, another pid; the new process asked over ctl.sock and got the very socket (SCM_RIGHTS), where graceful forks a child that inherits it as fd 3: docs/fdpass.md compares the two."
