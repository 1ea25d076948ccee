# shellcheck shell=bash
# Tour steps for the "Socket" part of multiprocess-ipc.md (echoserver: a thread per connection).
# Sourced by tour/tour.sh.
# Each step starts a server on a free port (or a socket file in the scratch folder), waits for
# its readiness line, talks to it with nc or socat, and stops it with SIGTERM.
chapter "Socket · echoserver (multiprocess-ipc.md)"

step "基于TCP/IP协议栈的Socket通讯 · net.Listen, Accept, a thread per connection (the goroutine)" \
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

step "Socket的基本特征 · net.Listen takes stream networks only: socket, bind, listen, accept4 (-x)" \
    'echoserver --network udp; echo "exit status $?"
echoserver -x --listen 127.0.0.1:0 >log 2>trace &
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
addr=$(sed -n "s/^echoserver: listening on tcp //p" log)
echo hi | nc -N "${addr%:*}" "${addr##*:}"
kill -TERM %1; wait; grep -E "socket|bind|listen|accept4|pthread" trace' \
    "udp is refused as Go's net.Listen refuses it (echodgram serves datagrams); then the four calls that net.Listen and Accept are, and a thread for the client."

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
