# shellcheck shell=bash
# Tour steps for cmdout: the anonymous pipe of the "管道" part of multiprocess-ipc.md.
# Sourced by tour/tour.sh.
chapter "管道 · cmdout: a command's output through a pipe (multiprocess-ipc.md)"

step "管道 · exec.Command, StdoutPipe, Read in 5-byte chunks" \
    'cmdout --chunk 5 -- echo -n "command from golang."' \
    "each read(2) returns at most the 5 bytes asked for; the read that returns 0 is Go's io.EOF."

step "管道 · bufio.Reader.ReadLine and isPrefix" \
    "cmdout --lines --buffer 8 -- printf 'abcdefghijklmnopqrstu\\nxy\\n'" \
    "a line longer than the reader's buffer comes out in parts marked isPrefix, as ReadLine returns it."

step "管道 · more than the pipe holds" \
    'cmdout -- head -c 10M /dev/zero | wc -c' \
    "10 MiB through a 64 KiB pipe: head sleeps while the pipe is full and we read as it writes, so no deadlock."

step "管道 · starting a command that does not exist" \
    'cmdout -x -- grepp go || echo "exit status $?"' \
    "execvp's errno comes back through a close-on-exec pipe; 127, as a shell says."
