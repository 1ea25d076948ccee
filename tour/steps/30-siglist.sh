# Tour steps for "信号类型" (signals-and-graceful-restart.md) and "信号" (multiprocess-ipc.md):
# siglist. Sourced by tour/tour.sh.
chapter "信号 · signals: kill -l, explained (siglist)"

step "信号类型 · kill -l" \
    'siglist -l | tail -n 3; siglist -l | cmp - <(bash -c "kill -l") && echo "siglist -l and bash kill -l: identical"' \
    "31 standard signals, then 34..64: 32 and 33 are missing, because glibc keeps them for its threads."

step "处理信号 · Term, Ign, Core, Stop, Cont" \
    'siglist TERM KILL STOP CONT CHLD QUIT RTMIN' \
    "only SIGKILL and SIGSTOP say no under CATCH and BLOCK; SIGCHLD is ignored by default, SIGQUIT dumps core."

step "处理信号 · an ignored signal is inherited" \
    'nohup siglist HUP </dev/null; (trap "" USR1; siglist USR1)' \
    "nohup works by ignoring SIGHUP before exec: SIG_IGN survives exec, a handler would not (INHERITED column)."

step "发送信号 · kill pid sends SIGTERM" \
    'bash -c "kill \$\$"; echo "status $?"; siglist 143' \
    "a process killed by signal N ends with status 128+N: 143 is SIGTERM, 137 would be SIGKILL."
