# Tour steps for "一个例子" (signals-and-graceful-restart.md): batchlog, the log service that
# must not lose its partial batch when it is stopped. Sourced by tour/tour.sh.
chapter "一个例子 · a log service that loses nothing on SIGTERM (batchlog)"

step "一个例子 · batches of 200" \
    'rm -f log.txt; seq 1037 | batchlog --batch 200 --out log.txt; wc -l log.txt' \
    "five writes of 200 lines, and at end of input the 37 left over: 1037 lines in, 1037 out."

step "一个例子 · SIGTERM flushes the partial batch" \
    'rm -f term.txt; batchlog --generate 2000 --out term.txt & pid=$!; until [ -s term.txt ]; do sleep 0.01; done; kill -TERM $pid; wait $pid; echo "status $?"; n=$(wc -l <term.txt); seq "$n" | cmp - term.txt && echo "term.txt holds exactly 1..$n: none lost, none twice"' \
    "the signal is blocked and read from a signalfd in the same poll() as the input: it is handled between two steps, and the partial batch is written."

step "一个例子 · the bug the notes warn about" \
    'rm -f lost.txt; batchlog --generate 2000 --no-flush-on-signal --out lost.txt & pid=$!; until [ -s lost.txt ]; do sleep 0.01; done; kill -TERM $pid; wait $pid; echo "status $?"; wc -l <lost.txt' \
    "without the flush, the partial batch is gone (only full batches of 200 reached the file): batchlog at least says how many lines, and exits 1."

step "一个例子 · a sink that fails is never a silent loss" \
    'seq 100000 | batchlog --batch 10 | head -n 2' \
    "head exits after two lines (the lines written before went into the pipe, unread); SIGPIPE is ignored, so write(2) fails with EPIPE and batchlog counts what was not written."
