#!/usr/bin/env bats
# robust: a holder killed inside its critical section: the semaphore stays taken (ETIMEDOUT), the
# robust mutex reports EOWNERDEAD and is repaired, or ENOTRECOVERABLE without the repair.
load ../helpers/ipc

@test "the semaphore stays taken; the robust mutex comes back with EOWNERDEAD and is repaired" {
    run "$TOOL" --timeout 200ms
    assert_success
    local -a want=(
        '^1\. an unnamed semaphore \(sem_init, pshared 1, value 1\) whose holder is killed$'
        '^child  [0-9]+: sem_wait\(\) = 0: it holds the semaphore$'
        '^parent [0-9]+: kill\([0-9]+, SIGKILL\), waitpid: killed by SIGKILL \(137\): it never unlocked$'
        '^parent [0-9]+: sem_getvalue\(\) = 0: the kernel does not know who took it$'
        '^parent [0-9]+: sem_timedwait\(200ms\) = -1 ETIMEDOUT: taken for good \(sem_wait would block for ever\)$'
        '^2\. a robust mutex \(PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST\) whose holder is killed in the middle of an update$'
        '^child  [0-9]+: pthread_mutex_lock\(\) = 0, took 10 from account 0 \(accounts 90 \+ 0\)$'
        '^parent [0-9]+: kill\([0-9]+, SIGKILL\), waitpid: killed by SIGKILL \(137\): it never unlocked$'
        '^parent [0-9]+: pthread_mutex_lock\(\) = EOWNERDEAD: locked, but accounts 90 \+ 0 = 90, not 100: the holder died half-way$'
        '^parent [0-9]+: repaired \(accounts 90 \+ 10\), pthread_mutex_consistent\(\) = 0$'
        '^parent [0-9]+: pthread_mutex_lock\(\) = 0: the mutex works again$')
    assert_equal "${#lines[@]}" "${#want[@]}"
    local i
    for i in "${!want[@]}"; do assert_line --index "$i" --regexp "${want[$i]}"; done
}

@test "--no-consistent: unlocked without the repair, the mutex is unusable for good" {
    run "$TOOL" --timeout 50ms --no-consistent
    assert_success
    assert_line --regexp '^parent [0-9]+: unlocks without pthread_mutex_consistent \(--no-consistent\)$'
    assert_line --regexp '^parent [0-9]+: pthread_mutex_lock\(\) = ENOTRECOVERABLE: nobody can ever lock it again$'
}

@test "EINTR in sem_timedwait (futex) and waitpid is retried; the wait still ends at its deadline" {
    command -v strace >/dev/null || skip "strace is missing"
    [[ -z ${IPC_SANITIZE:-} ]] || skip "the sanitizer runtime makes futex calls of its own"
    # Call 1 is the C++ runtime's FUTEX_WAKE at start-up: calls 2 to 4 are sem_timedwait's.
    run strace -qq -o /dev/null -e trace=futex,wait4 -e inject=futex:error=EINTR:when=2..4 \
        -e inject=wait4:error=EINTR:when=1 "$TOOL" --timeout 100ms
    assert_success
    assert_line --regexp '^parent [0-9]+: sem_timedwait\(100ms\) = -1 ETIMEDOUT: taken for good'
    assert_line --regexp '^parent [0-9]+: pthread_mutex_lock\(\) = 0: the mutex works again$'
}

@test "bad command lines are usage errors (exit 2)" {
    run "$TOOL" --timeout 0s
    assert_usage_error "--timeout: must be more than 0"
    run "$TOOL" --timeout 1
    assert_usage_error "--timeout"
    run "$TOOL" --consistent
    assert_failure 2
}

@test "stdout full or closed: exit 1 with one line" {
    run bash -c '"$1" >/dev/full' _ "$TOOL"
    assert_failure 1
    assert_output "robust: write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$1" >&-' _ "$TOOL"
    assert_failure 1
    assert_output "robust: write(stdout): Bad file descriptor (EBADF)"
    run bash -c '"$1" --help >/dev/full' _ "$TOOL"
    assert_failure 1
    assert_output "robust: write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$1" --version >&-' _ "$TOOL"
    assert_failure 1
    assert_output "robust: write(stdout): Bad file descriptor (EBADF)"
}

@test "--explain narrates the shared mapping, the mutex attributes and the locks" {
    run bash -c '"$1" --timeout 10ms -x 2>&1 >/dev/null' _ "$TOOL"
    assert_success
    assert_line --regexp '^\[[0-9]+\] mmap\([0-9]+, MAP_SHARED\|MAP_ANONYMOUS\) = 0x'
    assert_line --regexp '^\[[0-9]+\] pthread_mutex_init\(PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST\) = 0$'
    assert_line --regexp '^\[[0-9]+\] pthread_mutex_lock\(\) = EOWNERDEAD$'
    assert_line --regexp '^\[[0-9]+\] fork\(\) = [0-9]+$'
}
