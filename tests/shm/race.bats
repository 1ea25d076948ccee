#!/usr/bin/env bats
# race: the lost updates of an unlocked counter in shared memory; none with a semaphore or an
# atomic; children that never outlive the tool; EINTR in sem_wait and waitpid retried.
load ../helpers/ipc

# lost_in ROUND EXPECTED: the round's line adds up (counter + lost = expected); prints lost.
lost_in() {
    local line counter lost
    line=$(grep "^$1 " <<<"$output") || fail "no line for $1 in: $output"
    read -r counter lost < <(sed -E 's/^.* counter +([0-9]+) +lost +([0-9]+) .*$/\1 \2/' <<<"$line")
    assert_equal "$((counter + lost))" "$2"
    echo "$lost"
}

@test "three rounds: the unlocked counter's losses are counted; none with a semaphore or an atomic" {
    run "$TOOL" --procs 3 --count 20000
    assert_success
    assert_line --index 0 "race: 3 processes add 1 to a counter in shared memory 20000 times each: expected 60000"
    assert_line --regexp '^no lock    counter +[0-9]+  lost +[0-9]+ \( *[0-9.]+%\) +[0-9.]+s$'
    assert_line --regexp '^semaphore  counter +60000  lost +0 \( 0\.0%\) +[0-9.]+s$'
    assert_line --regexp '^atomic     counter +60000  lost +0 \( 0\.0%\) +[0-9.]+s$'
    assert_line --regexp '^atomic was [0-9]+\.[0-9]x (faster|slower) than the semaphore \(one run on this machine: a lesson figure, not a benchmark\)$'
    lost_in "no lock" 60000 >/dev/null
}

@test "--lock picks one round; the semaphore and the atomic never lose one, however many processes" {
    run "$TOOL" --lock semaphore --procs 8 --count 5000
    assert_success
    assert_equal "${#lines[@]}" 2
    assert_line --regexp '^semaphore  counter +40000  lost +0 '
    run "$TOOL" --lock atomic --procs 8 --count 50000
    assert_line --regexp '^atomic     counter +400000  lost +0 '
    run "$TOOL" --lock none --procs 2 --count 1
    assert_success
    assert_line --regexp '^no lock    counter +[12]  lost +[01] '
}

@test "--interrupt: a process that gives the CPU away between load and store loses updates, but not in the critical section" {
    run "$TOOL" --interrupt --procs 3 --count 200
    assert_success
    local lost
    lost=$(lost_in "no lock" 600)
    assert [ "$lost" -gt 0 ]
    assert_line --regexp '^semaphore  counter +600  lost +0 '
    assert_line --regexp '^atomic     counter +600  lost +0 '
    refute_line --partial "faster than the semaphore" # the yields would make that figure meaningless
}

@test "the tool killed mid-round takes its children with it (PR_SET_PDEATHSIG)" {
    bg_start race "$TOOL" --lock semaphore --procs 3 --count 1000000000
    local tool=$BG_PID children="" deadline=$((SECONDS + 10))
    until [[ $(wc -w <<<"$children") == 3 ]]; do
        children=$(pgrep -P "$tool" || true)
        ((SECONDS < deadline)) || fail "the children never started: '$children'"
        sleep 0.02
    done
    kill -TERM "$tool"
    wait_for_exit "$tool"
    assert_equal "$BG_STATUS" 143
    local pid
    for pid in $children; do wait_for_exit "$pid"; done
}

@test "EINTR in the parent's waitpid is retried" {
    command -v strace >/dev/null || skip "strace is missing"
    # (Not futex: strace cannot tell sem_wait's FUTEX_WAIT from sem_post's FUTEX_WAKE, and glibc
    # aborts when a wake fails. semaphore.bats injects EINTR into a lone sem_wait.)
    # LeakSanitizer cannot run under ptrace: the dev preset's leak check is off for this run.
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" run strace -f -qq -o /dev/null \
        -e trace=wait4 -e inject=wait4:error=EINTR:when=1..2 \
        "$TOOL" --lock semaphore --procs 4 --count 20000
    assert_success
    assert_line --regexp '^semaphore  counter +80000  lost +0 '
}

@test "bad command lines are usage errors (exit 2)" {
    run "$TOOL" --procs 1
    assert_usage_error "--procs"
    run "$TOOL" --count 0
    assert_usage_error "--count"
    run "$TOOL" --lock mutex
    assert_usage_error "--lock"
    run "$TOOL" extra
    assert_failure 2
}

@test "stdout full or closed: exit 1 with one line, no child left" {
    run bash -c '"$1" --count 10 >/dev/full' _ "$TOOL"
    assert_failure 1
    assert_output "race: write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$1" --count 10 >&-' _ "$TOOL"
    assert_failure 1
    assert_output "race: write(stdout): Bad file descriptor (EBADF)"
    run bash -c '"$1" --help >/dev/full' _ "$TOOL"
    assert_failure 1
    assert_output "race: write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$1" --version >&-' _ "$TOOL"
    assert_failure 1
    assert_output "race: write(stdout): Bad file descriptor (EBADF)"
}

@test "--explain narrates the shared mapping, sem_init with pshared, and the forks" {
    run bash -c '"$1" --procs 2 --count 10 -x 2>&1 >/dev/null' _ "$TOOL"
    assert_success
    assert_line --regexp '^\[[0-9]+\] mmap\([0-9]+, PROT_READ\|PROT_WRITE, MAP_SHARED\|MAP_ANONYMOUS\) = 0x'
    assert_line --regexp '^\[[0-9]+\] sem_init\(0x[0-9a-f]+, pshared 1, value 1\) = 0$'
    assert_line --regexp '^\[[0-9]+\] fork\(\) x 2 = [0-9]+ \.\. [0-9]+$'
}
