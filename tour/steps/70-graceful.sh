# shellcheck shell=bash
# Tour steps for the last section of signals-and-graceful-restart.md (graceful). Sourced by
# tour/tour.sh. Each step starts its servers on port 0 and waits until the last one has exited.
chapter "信号 · graceful restart (signals-and-graceful-restart.md)"

step "Go网络服务器如果无缝重启 · the socket outlives the process" \
    'graceful --listen 127.0.0.1:0 --pidfile g.pid -x >log 2>explain.log &
until grep -q "^serving" log; do sleep 0.05; done
url=$(sed -nE "1s|^serving on ([^:]+:[0-9]+):.*|http://\1|p" log)
curl -s "$url/"
kill -HUP "$(cat g.pid)"                 # start a new copy; the old one drains and exits
until grep -q "drained, exit 0" log; do sleep 0.05; done
curl -s "$url/"
last=$(cat g.pid); kill -TERM "$last"    # the new copy is not our child: wait by its pid
while ps -o stat= -p "$last" | grep -q "^[^Z]"; do sleep 0.05; done
cat log
echo "--- what -x narrated of the handover:"
grep -E "fork\(\)|dup2|LISTEN_PID=[0-9]+ is|ready|stop accepting|every connection" explain.log' \
    "same port, a new pid, the next generation: the child got the listener as fd 3 and LISTEN_PID=its own pid, and the old one stopped only after \"ready\"."

step "其它 · a bad upgrade does not take the service down" \
    'IPCKIT_GRACEFUL_FAIL=exit graceful --listen 127.0.0.1:0 >log 2>err &
until grep -q "^serving" log; do sleep 0.05; done
url=$(sed -nE "1s|^serving on ([^:]+:[0-9]+):.*|http://\1|p" log)
kill -HUP $!
until grep -q "restart failed" err; do sleep 0.05; done
cat err; curl -s "$url/"
kill -TERM $!; wait $!' \
    "the new copy exited 1 (a test hook made it fail); the old one reaped it and kept serving."
