# shellcheck shell=bash
# Tour steps for sigsend: "发送信号" (signals-and-graceful-restart.md) and the
# `ps aux | grep | grep -v grep | awk` of "信号" (multiprocess-ipc.md). Sourced by tour/tour.sh.
chapter "信号 · sending signals (sigsend)"

step "发送信号 · kill -0 asks, kill sends: to a bash script with a trap" \
    'coproc bash -c '"'"'trap "echo got TERM; exit 0" TERM; echo ready; while :; do sleep 0.1; done'"'"'
read -r ready <&"${COPROC[0]}"; pid=$COPROC_PID
sigsend -0 $pid; sigsend TERM $pid; cat <&"${COPROC[0]}"; wait $pid; echo "exit status $?"
sigsend -0 $pid || echo "exit status $?"' \
    "signal 0 checks that the process exists and may be signalled; after the trap ran and bash exited, the same check says ESRCH."

step "信号 · ps aux | grep | grep -v grep | awk, done right (--name)" \
    'ln -s "$(command -v sigrecv)" myrecv; coproc ./myrecv; read -r first <&"${COPROC[0]}"; pid=$COPROC_PID
(exec -a "less myrecv.log" sleep 30) & decoy=$!
echo "ps aux | grep myrecv | grep -v grep | awk finds:"; ps aux | grep myrecv | grep -v grep | awk '"'"'{print $2, $11, $12}'"'"'
sigsend USR1 --name myrecv; kill $pid $decoy; cat <&"${COPROC[0]}"; wait' \
    "grep matches every line that mentions the name (here a pager reading myrecv.log); sigsend compares the process name itself, never matches itself or its shell, and holds the process by a pidfd."

step "信号 · a real-time queue has a limit (RLIMIT_SIGPENDING): EAGAIN, wait, retry" \
    'coproc bash -c '"'"'ulimit -i 10 && exec sigrecv --quiet --block 1s --signals RTMIN,TERM --stop-after 40'"'"'
read -r first <&"${COPROC[0]}"; pid=$COPROC_PID
sigsend RTMIN $pid --count 40 --value 1; while IFS= read -r line; do echo "$line"; [[ $line == "  SIGRTMIN"* ]] && break; done <&"${COPROC[0]}"
kill $pid; wait $pid || true' \
    "with ulimit -i 10 only 10 signals fit in the queue while sigrecv blocks them: sigqueue says EAGAIN, sigsend waits and retries, and all 40 arrive."

step "发送信号 · what sigsend refuses: every process (-1), init (1), a group without --group" \
    'sigsend TERM -- -1; echo "exit status $?"; sigsend TERM 1; echo "exit status $?"; sigsend TERM 0; echo "exit status $?"' \
    "kill(-1, SIGTERM) would signal every process you may signal; sigsend makes such calls say so on purpose (exit 2: a usage error)."
