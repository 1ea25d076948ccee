# Tour steps for the "进程" part of multiprocess-ipc.md (procinfo). Sourced by tour/tour.sh.
chapter "进程 · processes (multiprocess-ipc.md)"

step "进程的标识 · PID and PPID" \
    'procinfo' \
    "every process has a pid, and a parent: here the parent is the bash that ran procinfo."
