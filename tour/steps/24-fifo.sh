# shellcheck shell=bash
# Tour steps for fifo: the named pipes of the "管道" part of multiprocess-ipc.md.
# Sourced by tour/tour.sh.
chapter "管道 · fifo: named pipes (multiprocess-ipc.md)"

step "管道 · 命名管道: mkfifo, a reader, a writer" \
    'fifo make myfifo --mode 644 && ls -l myfifo && { cat myfifo & fifo write myfifo hello through a FIFO; wait; }' \
    "type p, size 0: no data on disk. cat's open() waited until fifo write opened the other end."

step "管道 · the notes' tee example" \
    'printf "12345\n" >src.log && mkfifo -m 644 notes.fifo && { tee dst.log <notes.fifo & fifo write notes.fifo <src.log; wait; } && cat dst.log' \
    "tee copies what came through the FIFO to dst.log and to its stdout: the data moved only once both ends were open."
