# shellcheck shell=bash
# Tour steps for shm: "进程的空间" (shared page frames) and the notes' map of IPC (共享内存区).
# Sourced by tour/tour.sh.
chapter "共享内存 · shared memory (multiprocess-ipc.md)"

step "进程的空间 · a shared memory object is a file in /dev/shm, and its pages are the same frames for every process" \
    'shm write note-$$ "hello from the tour" && ls -l /dev/shm/note-$$ && cat /dev/shm/note-$$ && echo && shm read note-$$; shm unlink note-$$' \
    "the writer and the reader print the same physical frame (as root; otherwise 'frame hidden'): the page belongs to the object, and every process that maps it uses that very frame."

step "进程的空间 · 进程的衍生 · one shared frame in two processes; a private page copied on write" \
    'shm demo' \
    "the shared page has two addresses but one frame, and the child's write reaches the parent; the private page keeps its address but gets a new frame when the child writes (procinfo fork)."
