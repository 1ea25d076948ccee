# shellcheck shell=bash
# Tour steps for msgqueue: the message queues of the map that opens multiprocess-ipc.md, beside
# the pipes of "管道". Sourced by tour/tour.sh. Each step unlinks what it made, even if it fails.
chapter "管道 · msgqueue: POSIX message queues, the other kind of data transfer"

step "数据传送 · a queue keeps each message whole, highest priority first" \
    'q=/tour-$$; trap "msgqueue unlink $q >/dev/null 2>&1" EXIT
msgqueue create $q --max-msgs 5 --msg-size 64 >/dev/null
msgqueue send $q "one" -p 1; msgqueue send $q "two, urgent" -p 5; msgqueue send $q "three" -p 1
msgqueue info $q | tail -n 1
msgqueue receive $q -n 3' \
    "three sends, three receives, never merged as a pipe merges writes; the urgent one jumps the queue. The status line is what cat /dev/mqueue/NAME shows."

step "数据传送 · what a pipe does not do, in one run" \
    'msgqueue demo --block 300ms' \
    "1: a pipe's read got all three writes at once; 3: a full queue blocks (or EAGAIN); 4: mq_notify woke us with a signal from the writer's pid. The queue was unlinked at once: nothing is left in /dev/mqueue."
