# shellcheck shell=bash
# Tour steps for robust: "关于同步" when the holder of a lock dies. Sourced by tour/tour.sh.
chapter "关于同步 · when the holder dies (robust)"

step "关于同步 · a semaphore stays taken; a robust mutex says EOWNERDEAD" \
    'robust --timeout 500ms' \
    "nothing gives a dead holder's semaphore back; the robust mutex goes to the next locker with EOWNERDEAD, who repairs the data and calls pthread_mutex_consistent."
