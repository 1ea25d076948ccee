# shellcheck shell=bash
# Tour steps for pipecmp: the end of the "管道" part of multiprocess-ipc.md, os.Pipe versus
# io.Pipe. Sourced by tour/tour.sh.
chapter "管道 · os.Pipe (pipe(2)) next to io.Pipe (mem_pipe) (multiprocess-ipc.md)"

step "管道 · several writers on one pipe" \
    'pipecmp atomic --writers 4 --size 64K --rounds 50' \
    "pipe(2) may mix the bytes of writes larger than PIPE_BUF (the count varies, 0 is possible); mem_pipe never mixes two writes."

step "管道 · PIPE_BUF" \
    'pipecmp atomic --writers 4 --size 4K --rounds 200' \
    "at PIPE_BUF bytes or less, every pipe(2) write arrives whole: the kernel promises it."

step "管道 · Close and CloseWithError" \
    'pipecmp close' \
    "pipe(2) speaks in end of file, EPIPE and SIGPIPE (status 141); mem_pipe in return values: EOF, closed pipe, or the error you chose."
