# shellcheck shell=bash
# Tour steps for the "进程" part of multiprocess-ipc.md (procinfo). Sourced by tour/tour.sh.
chapter "进程 · processes (multiprocess-ipc.md)"

step "进程的标识 · PID and PPID" \
    'procinfo && echo "the shell that ran it: $$"' \
    "every process has a pid and a parent: procinfo's ppid is the shell's pid; R because it reads itself while running."

step "进程的衍生 · every process has a parent, up to pid 1" \
    'procinfo --ancestors $$ && echo "(the shell, pid $$, ran procinfo as its child)"' \
    "follow PPID upwards from the shell: the chain ends at pid 1, the init of this pid namespace, whose parent is 0."

step "进程的状态 · R S D T Z, and why never X" \
    'procinfo states' \
    "each letter is read back from /proc/PID/stat; T after SIGSTOP, S again after SIGCONT; Z until waitpid(). Source: procinfo/states.cpp."

step "进程的衍生 · an orphan is adopted" \
    'procinfo orphan; echo; procinfo orphan --subreaper' \
    "the grandchild's ppid changes when its parent exits: to pid 1, or to the nearest subreaper (the tool itself). Source: procinfo/orphan.cpp."

step "进程的衍生 · fork() and copy-on-write" \
    'procinfo fork' \
    "the same virtual address in both processes, but after the child's write two different values (and frames). Source: procinfo/fork.cpp."
