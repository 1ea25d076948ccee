#!/usr/bin/env bats
# batchlog: batches, the flush on a stop signal, a failing sink, and the soak that checks that
# every line read is written exactly once, in order, whenever the signal comes.
# shellcheck disable=SC2154 # $stderr is set by run --separate-stderr
load ../helpers/ipc
bats_require_minimum_version 1.5.0

setup() {
    cd "$BATS_TEST_TMPDIR" || return 1
}

# True once PID has blocked SIGHUP, SIGINT, SIGQUIT and SIGTERM (SigBlk bits 0, 1, 2 and 14):
# batchlog does that first, so from then on a stop signal cannot be lost.
signals_blocked() {
    local blk
    blk=$(awk '/^SigBlk:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $blk ]] && (((16#$blk & 0x4007) == 0x4007))
}
export -f signals_blocked

# wait_until SECONDS CMD...: runs CMD every 10 ms until it succeeds; fails after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        if ((SECONDS >= deadline)); then
            echo "timed out waiting for: $*" >&2
            return 1
        fi
        sleep 0.01
    done
}

wait_signals_blocked() { wait_until 10 signals_blocked "$1"; }

# Waits (bounded) until FILE holds at least BYTES bytes, or PID has ended.
wait_for_size_or_exit() {
    local file=$1 bytes=$2 pid=$3 deadline=$((SECONDS + ${4:-20}))
    while (($(stat -c %s "$file" 2>/dev/null || echo 0) < bytes)) && kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "timed out waiting for $file to reach $bytes bytes" >&2
            return 1
        fi
        sleep 0.01
    done
}

# bg_start with stdin from FILE, or from descriptor N for "&N": a background job of a
# non-interactive shell gets /dev/null as stdin unless the command itself redirects it.
bg_start_stdin() {
    local name=$1 from=$2
    shift 2
    if [[ $from == \&* ]]; then
        bg_start "$name" bash -c 'exec "${@:2}" <&"$1"' _ "${from#&}" "$@"
    else
        bg_start "$name" bash -c 'exec "${@:2}" <"$1"' _ "$from" "$@"
    fi
}

# True once PID has blocked its stop signals, or has ended.
blocked_or_gone() { signals_blocked "$1" || [[ $(ps -o stat= -p "$1" 2>/dev/null) == Z* || ! -e /proc/$1 ]]; }

# The number in "N lines written in all" of a batchlog stderr file.
written_in_all() { grep -oE '[0-9]+ lines written in all' "$1" | grep -oE '^[0-9]+'; }

# Starts batchlog (with the given options) reading a fifo fed with FILE by a process that then
# keeps the fifo open (so batchlog sees no end of input), and waits until batchlog is ready.
start_fed_from() {
    local file=$1
    shift
    mkfifo in
    bg_start feeder bash -c 'exec >in; cat "$1"; exec sleep 60' _ "$file"
    bg_start_stdin bl in "$TOOL" "$@"
    wait_signals_blocked "$BG_PID"
}

@test "lines from stdin come out unchanged; the end of input flushes the partial batch" {
    seq 1037 >input
    run --separate-stderr "$TOOL" --batch 200 <input
    assert_success
    assert_output "$(cat input)"
    assert_equal "$stderr" "batchlog: end of input: flushed 37 pending lines; 1037 lines written in all"
}

@test "a last line with no newline is written as it came, and said so" {
    printf '1\n2\n3' >input
    "$TOOL" --out out <input 2>err
    cmp input out
    assert_equal "$(cat err)" "batchlog: end of input: flushed 2 pending lines; 2 lines written in all
batchlog: the last line had no newline yet: its 1 bytes were written as they came"
}

@test "--out appends (O_APPEND) and keeps what the file held" {
    echo "already here" >out
    seq 3 | "$TOOL" --out out
    seq 3 | "$TOOL" --out out
    assert_equal "$(cat out)" "$(printf 'already here\n1\n2\n3\n1\n2\n3')"
}

@test "each batch is one write(2): strace counts them" {
    strace -o /dev/null true 2>/dev/null || skip "strace cannot trace here (ptrace not permitted)"
    seq 1037 >input
    # LeakSanitizer cannot run under ptrace: leave it out of this one run.
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -o trace -e trace=openat,write,close "$TOOL" --batch 200 --out out <input 2>/dev/null
    fd=$(grep -E '^openat\(.*"out", .*O_APPEND' trace | grep -oE '= [0-9]+$' | grep -oE '[0-9]+')
    [[ -n $fd ]]
    # Five full batches of 200 lines, then the 37 left at the end of input: six writes.
    run awk -v fd="$fd" '/"out", .*O_APPEND/ {on = 1} on && $0 ~ "^write\\(" fd ", " {n++}
        on && $0 ~ "^close\\(" fd "\\)" {on = 0} END {print n}' trace
    assert_output 6
    cmp input out
}

@test "-x narrates the setup, each read and each batch's write" {
    seq 450 | "$TOOL" -x --batch 200 --out out 2>err
    run cat err
    assert_line --regexp '^\[[0-9]+\] sigprocmask\(SIG_BLOCK, \{SIGINT, SIGTERM, SIGHUP, SIGQUIT\}\) = 0$'
    assert_line --regexp '^\[[0-9]+\] signalfd\(-1, .*\) = [0-9]+$'
    assert_line --regexp '^\[[0-9]+\] sigaction\(SIGPIPE, SIG_IGN\) = 0$'
    assert_line --regexp '^\[[0-9]+\] open\(out, O_WRONLY\|O_APPEND\|O_CREAT\) = [0-9]+$'
    assert_line --regexp '^\[[0-9]+\] read\(0, 131072\) = [0-9]+$'
    assert_line --regexp '^\[[0-9]+\] write\([0-9]+, 200 lines, 692 bytes\) = 692$'
    assert_line --regexp '^\[[0-9]+\] write\([0-9]+, 50 lines, 200 bytes\) = 200$'
}

@test "SIGTERM writes the partial batch: 'flushed 37 pending lines on SIGTERM', exit 0" {
    seq 237 >input # 840 bytes: one write into the pipe, so one read takes them all
    start_fed_from input --batch 200 --out out
    wait_for_line out '^200$'
    kill -TERM "$BG_PID"
    wait_for_exit "$BG_PID"
    assert_equal "$BG_STATUS" 0
    run cat "$(bg_err bl)"
    assert_output --regexp "^batchlog: flushed 37 pending lines on SIGTERM \(from pid [0-9]+\); 237 lines written in all$"
    cmp input out
}

@test "SIGINT, SIGHUP and SIGQUIT flush the same way" {
    seq 237 >input
    for sig in INT HUP QUIT; do
        rm -f in out
        start_fed_from input --batch 200 --out out
        wait_for_line out '^200$'
        kill -s "$sig" "$BG_PID"
        wait_for_exit "$BG_PID"
        assert_equal "$BG_STATUS" 0
        run cat "$(bg_err bl)"
        assert_output --regexp "^batchlog: flushed 37 pending lines on SIG$sig \(from pid [0-9]+\); 237 lines written in all$"
        cmp input out
        bg_stop_all
    done
}

@test "an unfinished line held when the signal comes is written as it came" {
    printf '1\n2\n3' >input
    start_fed_from input -x --out out
    wait_for_line "$(bg_err bl)" '^\[[0-9]+\] read\(0, 131072\) = 5$'
    kill -TERM "$BG_PID"
    wait_for_exit "$BG_PID"
    assert_equal "$BG_STATUS" 0
    run grep -v '^\[' "$(bg_err bl)"
    assert_line --index 0 --regexp '^batchlog: flushed 2 pending lines on SIGTERM \(from pid [0-9]+\); 2 lines written in all$'
    assert_line --index 1 'batchlog: the last line had no newline yet: its 1 bytes were written as they came'
    cmp input out
}

@test "--no-flush-on-signal shows the notes' bug: it reports the lines lost and exits 1" {
    seq 237 >input
    start_fed_from input --batch 200 --out out --no-flush-on-signal
    wait_for_line out '^200$'
    kill -TERM "$BG_PID"
    wait_for_exit "$BG_PID"
    assert_equal "$BG_STATUS" 1
    run cat "$(bg_err bl)"
    assert_output --regexp "^batchlog: lost 37 pending lines on SIGTERM \(from pid [0-9]+\): read, never written \(--no-flush-on-signal\); 200 lines written in all$"
    assert_equal "$(wc -l <out)" 200
}

@test "a signal during a blocked write waits for the write, then the rest is flushed" {
    seq 100037 >input
    mkfifo sink go
    # The sink's reader holds the pipe open but reads nothing until told to.
    bg_start reader bash -c 'exec <sink; read -r _ <go; exec cat'
    reader=$BG_PID
    # 100000 lines (588 KB) in one batch: more than a pipe holds, so write(2) blocks.
    bg_start_stdin bl input "$TOOL" --batch 100000 --out sink
    wait_until 20 grep -q pipe_write "/proc/$BG_PID/wchan"
    kill -TERM "$BG_PID"
    # The signal is blocked: it waits, pending, and the write goes on.
    grep -q pipe_write "/proc/$BG_PID/wchan"
    grep -qE '^ShdPnd:\s+0*4000$' "/proc/$BG_PID/status"
    timeout 10 bash -c 'echo go >go'
    wait_for_exit "$BG_PID" 30
    assert_equal "$BG_STATUS" 0
    run cat "$(bg_err bl)"
    assert_output --regexp "^batchlog: flushed 37 pending lines on SIGTERM \(from pid [0-9]+\); 100037 lines written in all$"
    wait_for_exit "$reader"
    cmp input "$(bg_out reader)"
}

@test "a stop signal the parent left ignored still reaches batchlog (it is blocked, not ignored)" {
    bg_start bl bash -c "trap '' TERM INT; exec \"\$TOOL\" --generate 0 --batch 10 --out out"
    wait_signals_blocked "$BG_PID"
    # SigIgn has SIGTERM's bit (14): the parent's trap '' TERM, kept across exec.
    ign=$(awk '/^SigIgn:/ {print $2}' "/proc/$BG_PID/status")
    (((16#$ign >> 14) & 1))
    wait_for_line out '^10$'
    kill -TERM "$BG_PID"
    wait_for_exit "$BG_PID"
    assert_equal "$BG_STATUS" 0
    n=$(wc -l <out)
    seq "$n" | cmp - out
    assert_equal "$(written_in_all "$(bg_err bl)")" "$n"
}

@test "a stop signal while --out FIFO waits for its reader ends batchlog (nothing read yet)" {
    mkfifo sink
    bg_start_stdin bl /dev/null "$TOOL" --out sink
    # open(2) of a FIFO for writing sleeps until a reader comes: nobody will.
    wait_until 10 grep -qx wait_for_partner "/proc/$BG_PID/wchan"
    kill -TERM "$BG_PID"
    # Were the stop signals blocked already, SIGTERM would wait for a reader that never comes.
    wait_for_exit "$BG_PID" 10
    assert_equal "$BG_STATUS" 143
}

@test "coreutils kill and timeout stop it cleanly" {
    bg_start bl "$TOOL" --generate 500 --batch 10 --out out
    wait_for_line out '^10$'
    /bin/kill -s HUP "$BG_PID"
    wait_for_exit "$BG_PID"
    assert_equal "$BG_STATUS" 0
    seq "$(wc -l <out)" | cmp - out
    run timeout --preserve-status -s INT 2 "$TOOL" --generate 500 --batch 10 --out out2
    assert_success
    assert_output --regexp '^batchlog: flushed [0-9]+ pending lines on SIGINT \(from pid [0-9]+\); [0-9]+ lines written in all$'
    seq "$(wc -l <out2)" | cmp - out2
}

@test "--generate 0 --count N makes exactly seq N" {
    run --separate-stderr "$TOOL" --generate 0 --count 100000 --batch 7 --out out
    assert_success
    seq 100000 | cmp - out
    assert_equal "$stderr" "batchlog: end of input: flushed 5 pending lines; 100000 lines written in all"
}

@test "--generate with a huge RATE is as fast as possible, and still stops at --count" {
    # elapsed x 1e25 lines is past 2^64 at once: converted to an integer, it made no more lines.
    run timeout -s KILL 60 "$TOOL" --generate 1e25 --count 100000 --batch 1000 --out out
    assert_success
    seq 100000 | cmp - out
}

@test "--fsync syncs each batch of a file" {
    seq 450 | "$TOOL" -x --fsync --batch 200 --out out 2>err
    seq 450 | cmp - out
    run grep -c 'fsync(' err
    assert_output 3
}

@test "a full sink (/dev/full) is an error saying how many lines were not written, exit 1" {
    seq 1000 >input
    run "$TOOL" --out /dev/full <input
    assert_failure 1
    assert_output "batchlog: write(/dev/full): No space left on device (ENOSPC): 1000 lines not written (0 lines written before)"
}

@test "a closed pipe (SIGPIPE ignored, EPIPE) is an error saying how many lines were not written" {
    seq 100000 >input
    run bash -c '"$TOOL" --batch 10 <input 2>err | head -n 1; echo "status ${PIPESTATUS[0]}"'
    assert_line 1
    assert_line 'status 1'
    run cat err
    assert_output --regexp '^batchlog: write\(stdout\): Broken pipe \(EPIPE\): [0-9]+ lines (and the [0-9]+ bytes of an unfinished line )?not written \([0-9]+ lines written before\)$'
}

@test "a failing read (stdin is a directory) is exit 1 with the call and errno" {
    run "$TOOL" </
    assert_failure 1
    assert_output "batchlog: read(stdin): Is a directory (EISDIR): the 0 lines read before were written"
}

@test "--max-line: a longer line stops batchlog after the lines before it are written" {
    {
        seq 5
        head -c 1025 /dev/zero | tr '\0' a
        echo
        seq 5
    } >input
    run --separate-stderr "$TOOL" --max-line 1K --out out <input
    assert_failure 1
    assert_equal "$stderr" "batchlog: line 6 is longer than --max-line (1 KiB): stopped after writing the 5 lines before it; the 1036 bytes read from its start on are not written"
    seq 5 | cmp - out
    # A line of exactly --max-line bytes is accepted.
    head -c 1024 /dev/zero | tr '\0' a >exact
    echo >>exact
    "$TOOL" --max-line 1K --out out2 <exact
    cmp exact out2
}

@test "--max-line: a 20 MB line is an error, not a crash, and not held in memory" {
    run bash -c 'head -c 20M /dev/zero | "$TOOL" --out out; echo "status ${PIPESTATUS[1]}"'
    assert_line 'status 1'
    assert_line --regexp '^batchlog: line 1 is longer than --max-line \(1 MiB\): stopped after writing the 0 lines before it; the [0-9]+ bytes read from its start on are not written$'
    assert_equal "$(stat -c %s out)" 0
}

@test "usage errors exit 2" {
    run "$TOOL" --batch 0
    assert_usage_error "--batch: must be at least 1 line"
    run "$TOOL" --batch -1
    assert_usage_error "--batch: must be at least 1 line"
    run "$TOOL" --generate -1
    assert_usage_error "--generate: RATE must be"
    run "$TOOL" --count 5
    assert_usage_error "--count requires --generate"
    run "$TOOL" --generate 1 --count 0
    assert_usage_error "--count: must be at least 1"
    run "$TOOL" --max-line 0
    assert_usage_error "--max-line: must be at least 1 byte"
    run bash -c 'set -o pipefail; echo x | "$TOOL" --fsync | cat'
    assert_usage_error "--fsync: stdout is not a file"
    run "$TOOL" --bogus
    assert_usage_error "--bogus"
}

@test "an --out that cannot be opened is exit 1 with the call and errno" {
    run "$TOOL" --out "$BATS_TEST_TMPDIR/no/such/dir/log" </dev/null
    assert_failure 1
    assert_output --regexp '^batchlog: open\(.*/no/such/dir/log\): No such file or directory \(ENOENT\)$'
}

# The soak. Each round checks the guarantee from outside: the sink holds a byte-for-byte prefix
# of the input (so no line is lost from the middle, duplicated or reordered), batchlog's own
# count agrees with the sink, and exit 0. Seed: BATCHLOG_SOAK_SEED to replay a failing run.

@test "soak: 100,000 lines through a pipe, a signal sent at a random line, many rounds" {
    RANDOM=${BATCHLOG_SOAK_SEED:-$$}
    echo "seed $RANDOM"
    seq 100000 >input
    sigs=(INT TERM HUP QUIT)
    batches=(1 7 200 200 4096)
    for round in $(seq 1 12); do
        rm -f in out pid
        at=$(((RANDOM * 32768 + RANDOM) % 100000 + 1))
        sig=${sigs[RANDOM % 4]}
        batch=${batches[RANDOM % 5]}
        sync=()
        ((batch >= 4096 && RANDOM % 2)) && sync=(--fsync)
        echo "round $round: signal $sig after line $at, --batch $batch ${sync[*]}"
        mkfifo in
        # The producer waits until batchlog is ready, writes `at` lines, sends the signal, then
        # goes on writing: the signal lands while batchlog is reading, batching or writing.
        bg_start producer bash -c '
            exec >in
            until [[ -s pid ]] && signals_blocked "$(<pid)"; do sleep 0.01; done
            head -n "$1" input
            kill -s "$2" "$(<pid)"
            exec tail -n +"$(($1 + 1))" input' _ "$at" "$sig"
        producer=$BG_PID
        bg_start_stdin bl in "$TOOL" --batch "$batch" "${sync[@]}" --out out
        echo "$BG_PID" >pid.tmp && mv pid.tmp pid
        wait_for_exit "$BG_PID" 30
        assert_equal "$BG_STATUS" 0
        wait_for_exit "$producer" 30 # SIGPIPE once batchlog is gone
        err=$(bg_err bl)
        size=$(stat -c %s out)
        cmp -n "$size" out input
        written=$(written_in_all "$err")
        assert_equal "$written" "$(wc -l <out)"
        pending=$(grep -oE "flushed [0-9]+ pending lines on SIG$sig " "$err" | grep -oE '[0-9]+')
        [[ -n $pending ]]
        # Everything but the flush went out in full batches.
        assert_equal $(((written - pending) % batch)) 0
        echo "  read and wrote $written lines ($size bytes), $pending in the last flush"
        bg_stop_all
    done
}

@test "soak: input from a file, signal at a random moment; the file offset shows every byte read was written" {
    RANDOM=${BATCHLOG_SOAK_SEED:-$$}
    echo "seed $RANDOM"
    seq 100000 >input
    total=$(stat -c %s input)
    sigs=(INT TERM HUP QUIT)
    batches=(1 1 3 17)
    for round in $(seq 1 8); do
        rm -f out
        sig=${sigs[RANDOM % 4]}
        batch=${batches[RANDOM % 4]}
        at=$(((RANDOM * 32768 + RANDOM) % total))
        echo "round $round: signal $sig once the sink holds $at bytes, --batch $batch"
        # batchlog shares this open file (and its offset) with the test: after it ends, the
        # offset says exactly how many bytes it read.
        exec {fd}<input
        bg_start_stdin bl "&$fd" "$TOOL" --batch "$batch" --out out
        wait_until 10 blocked_or_gone "$BG_PID"
        wait_for_size_or_exit out "$at" "$BG_PID"
        kill -s "$sig" "$BG_PID" 2>/dev/null || echo "  (it had already reached the end of input)"
        wait_for_exit "$BG_PID" 30
        assert_equal "$BG_STATUS" 0
        offset=$(awk '/^pos:/ {print $2}' "/proc/$BASHPID/fdinfo/$fd")
        exec {fd}<&-
        size=$(stat -c %s out)
        assert_equal "$size" "$offset"
        cmp -n "$size" out input
        assert_equal "$(written_in_all "$(bg_err bl)")" "$(wc -l <out)"
        echo "  read $offset bytes, wrote $size: $(tail -n 1 "$(bg_err bl)")"
        bg_stop_all
    done
}

@test "soak: --generate as fast as possible, a signal at a random moment" {
    RANDOM=${BATCHLOG_SOAK_SEED:-$$}
    echo "seed $RANDOM"
    sigs=(INT TERM HUP QUIT)
    batches=(1 7 200 1000)
    for round in $(seq 1 6); do
        rm -f out
        sig=${sigs[RANDOM % 4]}
        batch=${batches[RANDOM % 4]}
        at=$((RANDOM % 200000))
        echo "round $round: signal $sig once the sink holds $at bytes, --batch $batch"
        bg_start bl "$TOOL" --generate 0 --batch "$batch" --out out
        wait_signals_blocked "$BG_PID"
        wait_for_size_or_exit out "$at" "$BG_PID"
        kill -s "$sig" "$BG_PID"
        wait_for_exit "$BG_PID" 30
        assert_equal "$BG_STATUS" 0
        n=$(wc -l <out)
        seq "$n" | cmp - out
        assert_equal "$(written_in_all "$(bg_err bl)")" "$n"
        bg_stop_all
    done
}

@test "stdout full or closed: exit 1 and one line, write(stdout) and what was not written" {
    run bash -c 'seq 10 | "$1" >/dev/full' _ "$TOOL"
    assert_failure 1
    assert_output 'batchlog: write(stdout): No space left on device (ENOSPC): 10 lines not written (0 lines written before)'
    run bash -c 'seq 10 | "$1" >&-' _ "$TOOL"
    assert_failure 1
    assert_output 'batchlog: write(stdout): Bad file descriptor (EBADF): 10 lines not written (0 lines written before)'
    # With fd 1 closed, no descriptor batchlog opens (its signalfd first) may land on it.
    run bash -c '"$1" --generate 1000 >&-' _ "$TOOL"
    assert_failure 1
    assert_output --regexp '^batchlog: write\(stdout\): Bad file descriptor \(EBADF\): [0-9]+ lines not written \(0 lines written before\)$'
    assert_stdout_failures --help
    assert_stdout_failures --version
}
