# shellcheck shell=bash
# Tour steps for the "Socket" part of multiprocess-ipc.md (echodgram: the datagram networks).
# Sourced by tour/tour.sh.
chapter "Socket · echodgram (multiprocess-ipc.md)"

step "Socket的基本特征 · datagrams: ListenPacket, and a unixgram client needs a return address" \
    'echodgram --network unixgram --listen gram.sock >log &
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
echo "nc binds a socket of its own" | nc -uU -W 1 gram.sock
echo "sent from an unbound socket" | socat -t 0 - UNIX-SENDTO:gram.sock
kill -TERM %1; wait; cat log; ls' \
    "a datagram is echoed to the sender's address; an unbound unixgram socket has none, so no reply can reach it. The socket file is removed on exit."

step "基于TCP/IP协议栈的Socket通讯 · udp: recvfrom and sendto, no listen, no accept (-x)" \
    'echodgram -x --listen 127.0.0.1:0 >log 2>trace &
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
addr=$(sed -n "s/^echodgram: listening on udp //p" log)
echo "a datagram" | nc -u -W 1 "${addr%:*}" "${addr##*:}"
kill -TERM %1; wait; cat log; grep -E "socket|bind|recvfrom|sendto" trace' \
    "one socket for every client: each datagram comes with its sender's address and goes back to it."
