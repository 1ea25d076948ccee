# shellcheck shell=bash
# Tour steps for the "Socket" part of multiprocess-ipc.md (echoclient). Sourced by tour/tour.sh.
# Each step starts a server (echoserver, echodgram, or socat playing a server that misbehaves), waits for
# its readiness line, runs echoclient against it, and stops the server.
chapter "Socket · echoclient (multiprocess-ipc.md)"

step "基于TCP/IP协议栈的Socket通讯 · net.Dial, LocalAddr and RemoteAddr" \
    'echoserver --listen 127.0.0.1:0 >log & server=$!
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
addr=$(sed -n "s/^echoserver: listening on tcp //p" log)
echoclient --connect "$addr" -v hello "two words"; echo "exit status $?"
kill -TERM $server; wait' \
    "the kernel chose the client's port (LocalAddr); each line came back as sent, so the exit status is 0."

step "Read · partial reads, put together up to the newline as ReadBytes('\n') does (-x)" \
    'socat -d -d TCP-LISTEN:0,bind=127.0.0.1,reuseaddr SYSTEM:"read -r l; printf he; sleep 0.3; echo llo" 2>log & server=$!
for i in {1..200}; do grep -q "listening on" log && break; sleep 0.05; done
port=$(sed -n "s/.*listening on AF=2 127.0.0.1://p" log)
echoclient -x --connect "127.0.0.1:$port" hello; echo "exit status $?"
wait $server' \
    "the connect returned EINPROGRESS and poll waited for it; the reply came in two recv() calls, 2 bytes then 4, and only the newline ended it."

step "SetDeadline and DialTimeout · a server that never answers, a listener that never accepts" \
    'socat -d -d TCP-LISTEN:0,bind=127.0.0.1,reuseaddr SYSTEM:"cat >/dev/null" 2>log & mute=$!
for i in {1..200}; do grep -q "listening on" log && break; sleep 0.05; done
port=$(sed -n "s/.*listening on AF=2 127.0.0.1://p" log)
echoclient --connect "127.0.0.1:$port" --deadline 500ms hello; echo "exit status $?"
wait $mute
socat UNIX-LISTEN:full.sock,backlog=1 PIPE & full=$!
for i in {1..200}; do [[ -S full.sock ]] && break; sleep 0.05; done
kill -STOP $full
for i in 1 2 3; do echoclient --network unix --connect full.sock --dial-timeout 300ms </dev/null; echo "connect $i: exit status $?"; done
kill -CONT $full; kill $full; wait 2>/dev/null; rm -f full.sock' \
    "the reply deadline ended the wait with exit 1; with the listener stopped, two connects fit in its backlog (backlog=1 holds two) and the third timed out."

step "Socket的基本特征 · datagrams: a unixgram client needs a path of its own; udp hears ICMP" \
    'echodgram --network unixgram --listen gram.sock >log & server=$!
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
echoclient --network unixgram --connect gram.sock -v -x hello
kill -TERM $server; wait
echoclient --network udp --connect 127.0.0.1:1 hello; echo "exit status $?"' \
    "the client bound a temporary path so the reply could come back (and removed it); a datagram to a port nobody listens on came back as ECONNREFUSED."
