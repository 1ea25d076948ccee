# shellcheck shell=bash
# Tour steps for race: "关于同步" in multiprocess-ipc.md (race conditions, critical sections,
# atomic operations). Sourced by tour/tour.sh.
chapter "关于同步 · a race in shared memory (race)"

step "关于同步 · N processes add to one counter: without a lock, with a semaphore, with an atomic" \
    'race --procs 4 --count 1000000' \
    "without a lock two processes store the same value and updates are lost (on a busy machine maybe none: see the next step); the semaphore and the atomic lose none, and the atomic is faster."

step "关于同步 · the cause the notes name: an interruption between load and store (--interrupt)" \
    'race --interrupt --count 300' \
    "with sched_yield() between each load and store nearly every unlocked update is lost; inside the semaphore's critical section the same interruption loses nothing."
