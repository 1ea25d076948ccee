# shellcheck shell=bash
# Tour steps for sigrecv: "处理信号" (signals-and-graceful-restart.md) and "信号"
# (multiprocess-ipc.md). Sourced by tour/tour.sh. Each step starts sigrecv as a bash coproc,
# reads its first line (printed once the signals are blocked), then signals it.
chapter "信号 · receiving signals (sigrecv)"

step "处理信号 · run sigrecv, then kill it" \
    'coproc sigrecv; read -r first <&"${COPROC[0]}"; echo "$first"; pid=$COPROC_PID
kill -USR1 $pid; /bin/kill -s HUP $pid; kill $pid; cat <&"${COPROC[0]}"; wait $pid; echo "exit status $?"' \
    "each line says who sent the signal and how (kill = SI_USER); signals pending together come out lowest number first; SIGTERM ends it with a count per signal, exit 0."

step "信号 · standard signals merge, real-time signals queue (--block)" \
    'coproc sigrecv --block 1s --signals USR1,RTMIN+1,TERM; read -r first <&"${COPROC[0]}"; pid=$COPROC_PID
for i in 1 2 3 4 5; do kill -USR1 $pid; done; sigsend RTMIN+1 $pid --count 5 --value 1
while IFS= read -r line; do echo "$line"; [[ $line == *"value 5" ]] && kill $pid; done <&"${COPROC[0]}"; wait $pid' \
    "five SIGUSR1 while blocked are pending once and arrive once; five SIGRTMIN+1 arrive five times, in order, with their values."

step "信号 · signal.Stop: --stop-after hands the signals back to their default action" \
    'coproc sigrecv --stop-after 1; read -r first <&"${COPROC[0]}"; pid=$COPROC_PID
kill -USR1 $pid; while IFS= read -r line; do echo "$line"; [[ $line == "  SIGUSR1"* ]] && break; done <&"${COPROC[0]}"
kill $pid; wait $pid; echo "exit status $? (128 + 15: SIGTERM did its default action)"' \
    "after the stop nothing catches SIGTERM any more: the kernel ends the process, and the shell sees 143."

step "一个例子 · watchSignal() twice: every subscriber gets every signal (--watchers)" \
    'coproc sigrecv --watchers 2; read -r first <&"${COPROC[0]}"; pid=$COPROC_PID
kill -USR1 $pid; kill $pid; cat <&"${COPROC[0]}"; wait $pid' \
    "like two channels given to signal.Notify, each watcher receives SIGUSR1 and SIGTERM; sigrecv closes their channels before it exits."
