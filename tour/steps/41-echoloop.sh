# shellcheck shell=bash
# Tour steps for the "Socket" part of multiprocess-ipc.md (echoloop: the same service from one
# epoll loop, then one loop per core). Sourced by tour/tour.sh.
chapter "Socket · echoloop (multiprocess-ipc.md)"

step "基于TCP/IP协议栈的Socket通讯 · non-blocking sockets, EAGAIN and partial reads, in one epoll loop (-x)" \
    'echoloop -x --listen 127.0.0.1:0 >log 2>trace &
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
addr=$(sed -n "s/^echoloop: listening on tcp //p" log)
printf "one\ntwo\n" | nc -N "${addr%:*}" "${addr##*:}"
kill -TERM %1; wait; grep -E "epoll|accept4|recv|send|close" trace' \
    "one thread serves every client: epoll_wait says which socket is ready, accept4 takes the client (non-blocking), recv() takes what is there (0 at end of stream), send() writes it back."

step "a goroutine per connection, on every core · --loops 2: SO_REUSEPORT, EPOLLEXCLUSIVE, the herd" \
    'for share in reuseport exclusive shared; do
  echoloop --listen 127.0.0.1:0 --loops 2 --share $share >log &
  for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
  addr=$(sed -n "s/^echoloop: listening on tcp //p" log)
  for i in {1..20}; do echo "client $i" | nc -N "${addr%:*}" "${addr##*:}" >/dev/null; done
  kill -TERM %1; wait; echo "--share $share:"; grep "^echoloop: loop" log
done' \
    "reuseport: two sockets, the kernel spreads the clients; exclusive: one socket, one loop woken per client (an idle server gives all to loop 1); shared: every client wakes both loops."
