#!/usr/bin/env bats
# semaphore: a named semaphore between unrelated processes: post, wait (with and without a
# timeout), value, unlink; /dev/shm/sem.NAME beside ls; signals and EINTR while waiting.
load ../helpers/ipc

setup() {
    NAME="ipckit-test-sem-$BASHPID-$RANDOM"
}

teardown() {
    bg_stop_all
    rm -f "/dev/shm/sem.$NAME"
}

# start_wait: `semaphore wait NAME` in the background, once it says that it waits.
start_wait() {
    bg_start wait "$TOOL" wait "$NAME"
    wait_for_line "$(bg_out wait)" "^/$NAME: value [0-9]+: waiting"
}

@test "post creates the semaphore (/dev/shm/sem.NAME), value reads it, wait takes one, unlink removes it" {
    run "$TOOL" post "$NAME"
    assert_success
    assert_output "/$NAME: posted, value now 1 (a waiter may already have taken it)"
    assert [ -f "/dev/shm/sem.$NAME" ]
    run "$TOOL" value "$NAME"
    assert_output "/$NAME: value 1 (/dev/shm/sem.$NAME)"
    run "$TOOL" wait "$NAME"
    assert_success
    assert_line --index 0 "/$NAME: value 1: waiting (from another terminal: semaphore post $NAME)"
    assert_line --index 1 --regexp "^/$NAME: took one (at once|after [0-9.]+[mun]?s), value now 0$"
    run "$TOOL" unlink "/$NAME"
    assert_success
    assert_output "/$NAME removed: /dev/shm/sem.$NAME is gone; a process that has it open keeps using it"
    assert [ ! -e "/dev/shm/sem.$NAME" ]
}

@test "a waiter in one process is woken by a post from another" {
    start_wait
    assert bg_alive
    run "$TOOL" post "$NAME"
    assert_success
    wait_for_exit "$BG_PID"
    assert_equal "$BG_STATUS" 0
    run cat "$(bg_out wait)"
    assert_line --index 0 "/$NAME: value 0: waiting (from another terminal: semaphore post $NAME)"
    assert_line --index 1 --regexp "^/$NAME: took one (at once|after [0-9.]+[mun]?s), value now 0$"
}

@test "it counts: --initial 2 and two posts let four waits through, the fifth times out" {
    "$TOOL" post "$NAME" --initial 2 >/dev/null
    "$TOOL" post "$NAME" >/dev/null
    run "$TOOL" value "$NAME"
    assert_output "/$NAME: value 4 (/dev/shm/sem.$NAME)"
    for _ in 1 2 3 4; do "$TOOL" wait "$NAME" --timeout 5s >/dev/null; done
    run "$TOOL" wait "$NAME" --timeout 100ms
    assert_failure 1
    assert_line --index 0 "/$NAME: value 0: waiting at most 100ms (from another terminal: semaphore post $NAME)"
    assert_line --index 1 "semaphore: sem_timedwait(/$NAME, 100ms): nobody posted in time: Connection timed out (ETIMEDOUT)"
}

@test "SIGTERM or SIGINT ends a waiter (128+n); the semaphore is the user's and stays until unlink" {
    start_wait
    kill -TERM "$BG_PID"
    wait_for_exit "$BG_PID"
    assert_equal "$BG_STATUS" 143
    # A background job starts with SIGINT ignored: env puts the default action back.
    bg_start wait env --default-signal=INT "$TOOL" wait "$NAME"
    wait_for_line "$(bg_out wait)" "^/$NAME: value 0: waiting"
    kill -INT "$BG_PID"
    wait_for_exit "$BG_PID"
    assert_equal "$BG_STATUS" 130
    run "$TOOL" value "$NAME"
    assert_output "/$NAME: value 0 (/dev/shm/sem.$NAME)"
    "$TOOL" unlink "$NAME" >/dev/null
    assert [ ! -e "/dev/shm/sem.$NAME" ]
}

@test "EINTR in sem_wait and sem_timedwait (futex) is retried; a timed wait still ends at its deadline" {
    command -v strace >/dev/null || skip "strace is missing"
    [[ -z ${IPC_SANITIZE:-} ]] || skip "the sanitizer runtime makes futex calls of its own"
    # The futex call in which sem_wait sleeps returns EINTR, three times, as if a signal
    # handler had run; then it really sleeps until another process posts. (Call 1 is the C++
    # runtime's FUTEX_WAKE at start-up, which glibc does not expect to fail: calls 2 to 4.)
    bg_start wait strace -qq -o /dev/null -e trace=futex -e inject=futex:error=EINTR:when=2..4 \
        "$TOOL" wait "$NAME" -x
    wait_for_line "$(bg_err wait)" '^\[[0-9]+\] sem_wait = -1 EINTR: retried$'
    "$TOOL" post "$NAME" >/dev/null
    wait_for_exit "$BG_PID"
    assert_equal "$BG_STATUS" 0
    run grep -c 'sem_wait = -1 EINTR: retried' "$(bg_err wait)"
    assert_output 3
    run strace -qq -o /dev/null -e trace=futex -e inject=futex:error=EINTR:when=2..4 \
        "$TOOL" wait "$NAME" --timeout 300ms -x
    assert_failure 1
    assert_line --regexp '^\[[0-9]+\] sem_timedwait = -1 EINTR: retried$'
    assert_line "semaphore: sem_timedwait(/$NAME, 300ms): nobody posted in time: Connection timed out (ETIMEDOUT)"
}

@test "a missing semaphore, a bad name, a bad value: the project's errors" {
    run "$TOOL" value "$NAME"
    assert_failure 1
    assert_output "semaphore: sem_open(/$NAME): No such file or directory (ENOENT)"
    run "$TOOL" unlink "$NAME"
    assert_failure 1
    assert_output "semaphore: sem_unlink(/$NAME): No such file or directory (ENOENT)"
    run "$TOOL" post a/b
    assert_usage_error "NAME: 'a/b' is not a POSIX IPC name (no '/' after the first)"
    run "$TOOL" post "$(printf 'x%.0s' {1..252})"
    assert_usage_error "is not a POSIX IPC name (too long): one file name of at most 251 bytes"
    run "$TOOL" post "$NAME" --initial -1
    assert_failure 2
    run "$TOOL" wait "$NAME" --timeout 5
    assert_usage_error "--timeout"
    run "$TOOL" value "$NAME" --initial 3
    assert_failure 2
    run "$TOOL"
    assert_failure 2
    assert [ ! -e "/dev/shm/sem.$NAME" ]
}

@test "stdout full or closed: exit 1 with one line" {
    run bash -c '"$1" post "$2" >/dev/full' _ "$TOOL" "$NAME"
    assert_failure 1
    assert_output "semaphore: write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$1" value "$2" >&-' _ "$TOOL" "$NAME"
    assert_failure 1
    assert_output "semaphore: write(stdout): Bad file descriptor (EBADF)"
    run bash -c '"$1" --help >/dev/full' _ "$TOOL"
    assert_failure 1
    assert_output "semaphore: write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$1" --version >&-' _ "$TOOL"
    assert_failure 1
    assert_output "semaphore: write(stdout): Bad file descriptor (EBADF)"
}

@test "--explain narrates sem_open, sem_post, sem_getvalue, sem_close" {
    run bash -c '"$1" post "$2" -x 2>&1 >/dev/null' _ "$TOOL" "$NAME"
    assert_success
    assert_line --regexp "^\[[0-9]+\] sem_open\(/$NAME, O_CREAT, 0600, 0\) = 0x[0-9a-f]+$"
    assert_line --regexp "^\[[0-9]+\] sem_post\(/$NAME\) = 0$"
    assert_line --regexp '^\[[0-9]+\] sem_getvalue\(\) = 1$'
    assert_line --regexp '^\[[0-9]+\] sem_close\(\) = 0$'
}
