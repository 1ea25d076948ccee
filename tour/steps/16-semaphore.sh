# shellcheck shell=bash
# Tour steps for semaphore: the notes' map of IPC (基于同步: 信号灯) and "关于同步".
# Sourced by tour/tour.sh. The waiter runs as a bash coproc (its output read through a copy of
# the coproc's descriptor, which bash closes when the waiter ends); its first line says it waits.
chapter "信号灯 · named semaphores (semaphore)"

step "信号灯 · one process waits on a named semaphore, another posts it" \
    'coproc semaphore wait job-$$ --timeout 10s; exec {out}<&"${COPROC[0]}"; pid=$COPROC_PID
read -r first <&$out; echo "$first"; ls -l /dev/shm/sem.job-$$; semaphore post job-$$; cat <&$out; wait $pid; semaphore unlink job-$$' \
    "the waiter sleeps in sem_timedwait until an unrelated process posts; the semaphore is the 32-byte file /dev/shm/sem.NAME until it is unlinked."

step "信号灯 · sem_timedwait gives up: ETIMEDOUT" \
    'semaphore wait lonely-$$ --timeout 500ms; echo "exit status $?"; semaphore unlink lonely-$$' \
    "nobody posted: after the deadline (an absolute time on CLOCK_REALTIME) the wait fails with ETIMEDOUT, exit 1."
