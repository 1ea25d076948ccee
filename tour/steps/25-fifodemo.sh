# shellcheck shell=bash
# Tour steps for fifodemo: the rules of the named pipes of the "管道" part of multiprocess-ipc.md,
# each made to happen. Sourced by tour/tour.sh.
chapter "管道 · fifodemo: the rules of FIFOs, each one happening (multiprocess-ipc.md)"

step "管道 · the rules of FIFOs, each one happening" \
    'fifodemo' \
    "1-2: an open sleeps (seen in /proc) until the other end comes; 6: EPIPE, or death by SIGPIPE; 7-8: only writes up to PIPE_BUF are atomic."

step "管道 · tearing depends on the reader" \
    "fifo demo --read-size 64K | grep '^8\\.'" \
    "fifo demo runs fifodemo. A reader that empties the 64 KiB pipe in one read lets 64 KiB writes in whole (in these runs); compare rule 8 above."

step "管道 · stopped midway, nothing left behind" \
    ": >out; TMPDIR=\$PWD fifodemo --pause-after 1 >out & until grep -q '^paused' out; do sleep 0.1; done; cat out; kill -TERM \$!; wait \$!; echo \"status \$?\"; ls -d fifo-demo.* 2>/dev/null | wc -l" \
    "SIGTERM: its handler killed and reaped the demo's children and removed the temp dir (0 left), then the signal's default action ended it: 143."
