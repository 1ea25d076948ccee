# shellcheck shell=bash
# Tour steps for the "Socket" part of multiprocess-ipc.md (echoserver). Sourced by tour/tour.sh.
# Each step starts a server on a free port (or a socket file in the scratch folder), waits for
# its readiness line, talks to it with nc or socat, and stops it with SIGTERM.
chapter "Socket · echoserver (multiprocess-ipc.md)"

step "基于TCP/IP协议栈的Socket通讯 · net.Listen, Accept, a goroutine per connection" \
    'echoserver --listen 127.0.0.1:0 >log &
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
addr=$(sed -n "s/^echoserver: listening on tcp //p" log)
printf "hello\nworld\n" | nc -N "${addr%:*}" "${addr##*:}"
printf "the last line, without a newline" | socat - "TCP:$addr"; echo
kill -TERM %1; wait; cat log' \
    "port 0 let the kernel pick a port; each connection is logged with RemoteAddr and LocalAddr, and the line without a newline came back at end of stream."

step "SetDeadline · a read deadline, renewed for each line" \
    'echoserver --listen 127.0.0.1:0 --timeout 500ms >log &
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
addr=$(sed -n "s/^echoserver: listening on tcp //p" log)
nc "${addr%:*}" "${addr##*:}" </dev/null
kill -TERM %1; wait; grep closed log' \
    "nc sent nothing: after 500ms without a whole line the server said so and closed the connection."

step "Read · non-blocking sockets and partial reads, in one epoll loop (-x)" \
    'echoserver --model epoll -x --listen 127.0.0.1:0 >log 2>trace &
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
addr=$(sed -n "s/^echoserver: listening on tcp //p" log)
printf "one\ntwo\n" | nc -N "${addr%:*}" "${addr##*:}"
kill -TERM %1; wait; grep -E "epoll|accept4|recv|send|close" trace' \
    "one thread serves every client: epoll_wait says which socket is ready, recv() takes what is there (0 at end of stream), send() writes it back."

step "Socket的基本特征 · unix domain sockets: a path, and datagrams that need a return address" \
    'echoserver --network unixgram --listen gram.sock >log &
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
echo "nc binds a socket of its own" | nc -uU -W 1 gram.sock
echo "sent from an unbound socket" | socat -t 0 - UNIX-SENDTO:gram.sock
kill -TERM %1; wait; cat log; ls' \
    "a datagram is echoed to the sender's address; an unbound unixgram socket has none, so no reply can reach it. The socket file is removed on exit."

step "信号 + Socket · SIGTERM: stop accepting, let a line in progress finish" \
    'echoserver --listen 127.0.0.1:0 -x >log 2>trace & server=$!
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
addr=$(sed -n "s/^echoserver: listening on tcp //p" log)
exec 5<>"/dev/tcp/${addr%:*}/${addr##*:}"
printf "half a " >&5
for i in {1..200}; do grep -q "recv() = 7" trace && break; sleep 0.05; done
kill -TERM $server
printf "line\n" >&5; cat <&5
wait $server; echo "exit status $?"; cat log' \
    "after SIGTERM the server accepted nobody new, but the client in the middle of a line got it back before the close; then it exited 0."
