#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# fifodemo: the rules of FIFOs, each made to happen (also run as `fifo demo`, tests/pipes/fifo.bats).
load ../helpers/ipc

bats_require_minimum_version 1.5.0

setup() {
    cd "$BATS_TEST_TMPDIR" || return 1
    export IPC_TEST_MARK=$BATS_TEST_TMPDIR
}

# No process of a demo may outlive it: its children are forked, so they carry its command line
# (and this test's mark: a demo of another test running beside this one is not ours).
assert_no_demo_left() {
    run test_processes_with "$TOOL"
    assert_output ""
}

@test "each rule happens, one numbered line each, and the temp dir is removed" {
    run --separate-stderr env TMPDIR="$BATS_TEST_TMPDIR" timeout 120 "$TOOL"
    assert_success
    assert_line --index 0 --regexp "^demo dir: $BATS_TEST_TMPDIR/fifo-demo\.[A-Za-z0-9]{6} "
    assert_line --regexp '^1\. open\(O_RDONLY\) blocks until a writer opens: child [0-9]+ slept in open\(\) \(state S(, wchan [a-z_]+)?\); our open\(O_WRONLY\) = [0-9]+, then the child.s open returned [0-9]+$'
    assert_line --regexp '^2\. open\(O_WRONLY\) blocks until a reader opens: child [0-9]+ slept in open\(\) \(state S'
    assert_line --regexp '^3\. open\(O_RDONLY\|O_NONBLOCK\) returns at once: = [0-9]+ with no writer there, and read\(\) on it = 0 '
    assert_line --regexp '^4\. .*: = -1 ENXIO \(No such device or address\); with a reader open, the same call = [0-9]+$'
    assert_line --regexp '^5\. .*read\(\) = 1 \(its byte\), then -1 EAGAIN .*read\(\) = 0 \(EOF\)$'
    assert_line --regexp '^6\. .*SIGPIPE ignored: write\(\) = -1 EPIPE; SIGPIPE default: child [0-9]+ killed by SIGPIPE \(status 141\)$'
    # POSIX guarantees this one: it must be 0.
    assert_line --regexp '^7\. writes of at most PIPE_BUF \(4096\) bytes never interleave: 2 writers x 256 writes of 4096 bytes, read 4096 at a time: 0 of 512 torn$'
    # Tearing of larger writes depends on timing: the count is reported, never asserted.
    assert_line --regexp '^8\. larger writes can interleave: 2 writers x 256 writes of 65536 bytes into a pipe of [0-9]+, read 4096 at a time: [0-9]+ of 512 torn '
    assert_line --regexp "^removed $BATS_TEST_TMPDIR/fifo-demo\.[A-Za-z0-9]{6}$"
    assert_equal "$stderr" ""
    run compgen -G "$BATS_TEST_TMPDIR/fifo-demo.*"
    assert_failure
    assert_no_demo_left
}

@test "-x narrates the calls: mkfifo, open, what /proc shows, waitpid" {
    run --separate-stderr env TMPDIR="$BATS_TEST_TMPDIR" timeout 120 "$TOOL" -x --records 4
    assert_success
    [[ $stderr =~ \]\ mkfifo\(.*/demo\.fifo,\ 0600\)\ =\ 0 ]]
    [[ $stderr =~ \]\ open\(.*/demo\.fifo,\ O_WRONLY\|O_NONBLOCK\)\ =\ -1\ ENXIO ]]
    [[ $stderr =~ \]\ /proc/[0-9]+:\ state\ S ]]
    [[ $stderr =~ \]\ write\([0-9]+,\ 1\)\ =\ -1\ EPIPE ]]
    [[ $stderr =~ \]\ waitpid\([0-9]+\)\ =\ status ]]
}

@test "SIGINT mid-demo (paused after rule 3) stops it, and the temp dir is gone" {
    bg_start demo env TMPDIR="$BATS_TEST_TMPDIR" "$TOOL" --pause-after 3
    local pid=$BG_PID out
    out=$(bg_out demo)
    wait_for_line "$out" '^paused after rule 3' 60
    local dir
    dir=$(sed -n 's/^demo dir: \([^ ]*\) .*/\1/p' "$out")
    [[ -d $dir && -p $dir/demo.fifo ]]
    kill -INT "$pid"
    wait_for_exit "$pid" 10
    assert_equal "$BG_STATUS" 130
    [[ ! -e $dir ]]
    assert_equal "$(cat "$(bg_err demo)")" "fifodemo: demo stopped by SIGINT; removed $dir"
    assert_no_demo_left
}

@test "SIGTERM while the writers of rule 7 run kills them all, and the temp dir is gone" {
    # Many records make rule 7 take long enough for the signal to land in it.
    bg_start demo env TMPDIR="$BATS_TEST_TMPDIR" "$TOOL" --records 100000
    local pid=$BG_PID out
    out=$(bg_out demo)
    wait_for_line "$out" '^6\. ' 60
    local dir
    dir=$(sed -n 's/^demo dir: \([^ ]*\) .*/\1/p' "$out")
    kill -TERM "$pid"
    wait_for_exit "$pid" 10
    assert_equal "$BG_STATUS" 143
    run grep -c '^7\. ' "$out"
    assert_output 0
    [[ ! -e $dir ]]
    assert_no_demo_left
}

@test "a failure mid-demo still removes the temp dir: stdout full after the first line" {
    # The first line goes out; the next write fails (ENOSPC), and the exit cleans up.
    run --separate-stderr bash -c 'TMPDIR=$1 "$TOOL" --records 4 >/dev/full' _ "$BATS_TEST_TMPDIR"
    assert_failure 1
    assert_equal "$stderr" "fifodemo: write(stdout): No space left on device (ENOSPC)"
    run compgen -G "$BATS_TEST_TMPDIR/fifo-demo.*"
    assert_failure
    assert_no_demo_left
}

# Waits (bounded) until the strace log $log shows $1 processes stopped by SIGSTOP; their pids,
# in the order they stopped, go to the array `stopped`.
wait_for_stops() {
    local deadline=$((SECONDS + 30))
    for (( ; ; )); do
        mapfile -t stopped < <(sed -nE 's/^([0-9]+) +--- stopped by SIGSTOP ---$/\1/p' "$log")
        ((${#stopped[@]} >= $1)) && return 0
        if ((SECONDS >= deadline)); then
            echo "timed out waiting for $1 stops by SIGSTOP; the strace log holds:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.02
    done
}

@test "a writer of rule 6 that dies before it is ready: exit 1, no hang, the temp dir removed" {
    command -v strace >/dev/null || skip "strace is missing"
    # strace stops (SIGSTOP) every process at its 4th rt_sigaction: fifodemo itself as it starts
    # (let go at once), and only the two writers of rule 6 (spawn's 3 signal() calls, then
    # SIGPIPE's). One is killed there; the other says "ready" and waits for "go".
    local log=$BATS_TEST_TMPDIR/strace.log stopped=()
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" bg_start demo \
        env TMPDIR="$BATS_TEST_TMPDIR" strace -f -qq -o "$log" -e trace=rt_sigaction \
        -e inject=rt_sigaction:signal=SIGSTOP:when=4 "$TOOL" --records 4
    local pid=$BG_PID
    wait_for_stops 1
    # fifodemo itself: stopped by teardown too (strace's TERM may leave it running).
    echo "${stopped[0]} $(start_time "${stopped[0]}")" >>"$BATS_TEST_TMPDIR/bg.pids"
    kill -CONT "${stopped[0]}"
    wait_for_stops 3
    kill -KILL "${stopped[1]}"
    kill -CONT "${stopped[2]}"
    wait_for_exit "$pid" 30
    assert_equal "$BG_STATUS" 1
    assert_equal "$(cat "$(bg_err demo)")" "fifodemo: a writer died before open()"
    run grep -c '^[6-8]\. ' "$(bg_out demo)"
    assert_output 0
    run compgen -G "$BATS_TEST_TMPDIR/fifo-demo.*"
    assert_failure
    assert_no_demo_left
}

@test "stdout full or closed: exit 1 and one line on stderr, --help and --version too" {
    for args in "" --help --version; do
        # shellcheck disable=SC2086 # $args is empty or one word
        run --separate-stderr bash -c 'TMPDIR=$1 "$TOOL" '"$args"' >/dev/full' _ "$BATS_TEST_TMPDIR"
        assert_failure 1
        assert_equal "$stderr" "fifodemo: write(stdout): No space left on device (ENOSPC)"
        run --separate-stderr bash -c 'TMPDIR=$1 "$TOOL" '"$args"' >&-' _ "$BATS_TEST_TMPDIR"
        assert_failure 1
        assert_equal "$stderr" "fifodemo: write(stdout): Bad file descriptor (EBADF)"
    done
    run compgen -G "$BATS_TEST_TMPDIR/fifo-demo.*"
    assert_failure
}

@test "usage errors: options out of range" {
    run "$TOOL" --pause-after 9
    assert_usage_error "--pause-after"
    run "$TOOL" --records 0
    assert_usage_error "--records"
    run "$TOOL" --read-size 0
    assert_usage_error "--read-size"
    run "$TOOL" --read-size 2M
    assert_usage_error "--read-size"
}

@test "--help lists the rules; --version prints the project version" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "8 larger writes can interleave"
    assert_output --partial "--pause-after"
    run "$TOOL" --version
    assert_output --regexp '^fifodemo \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}
