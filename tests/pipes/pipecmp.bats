#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# pipecmp: pipe(2) next to mem_pipe. No timing is asserted (the benchmark that was `pipecmp
# bench` is `ipcbench pipe`, tests/bench/ipcbench.bats), and neither is tearing of pipe(2) writes
# above PIPE_BUF: a given run may tear none.
load ../helpers/ipc

bats_require_minimum_version 1.5.0

# --- atomic ---

@test "atomic: at PIPE_BUF neither pipe tears a record, and no byte is lost" {
    run "$TOOL" atomic --writers 4 --size 4K --rounds 200
    assert_success
    assert_line --partial "PIPE_BUF is 4096 bytes: pipe(2) writes this small are atomic"
    assert_line --regexp '^pipe\(2\), 4 processes +800 +0 +every record arrived in one piece$'
    assert_line --regexp '^mem_pipe, 4 threads +800 +0 +every record arrived in one piece$'
    assert_line "no byte was lost: each writer's bytes all arrived"
}

@test "atomic: above PIPE_BUF mem_pipe still never tears; pipe(2) reports a count" {
    run "$TOOL" atomic --writers 3 --size 64K --rounds 20
    assert_success
    assert_line --partial "pipe(2) may split writes this large"
    assert_line --regexp '^pipe\(2\), 3 processes +60 +[0-9]+ '
    assert_line --regexp '^mem_pipe, 3 threads +60 +0 +every record arrived in one piece$'
    assert_line "no byte was lost: each writer's bytes all arrived"
}

@test "atomic: records and reads of odd sizes still add up" {
    run "$TOOL" atomic --writers 2 --size 5000 --read 777 --rounds 30
    assert_success
    assert_line --regexp '^mem_pipe, 2 threads +60 +0 '
    assert_line "no byte was lost: each writer's bytes all arrived"
}

@test "atomic: the PIPE_BUF it prints is the one getconf reports" {
    run "$TOOL" atomic --writers 1 --size 1K --rounds 1
    assert_success
    assert_line --partial "PIPE_BUF is $(getconf PIPE_BUF /) bytes"
}

@test "atomic -x narrates the pipes, the forks and the reaping" {
    run "$TOOL" -x atomic --writers 2 --size 1K --rounds 2
    assert_success
    assert_line --regexp '^\[[0-9]+\] pipe\(\) = \[[0-9]+, [0-9]+\]$'
    assert_line --regexp "^\[[0-9]+\] fork\(\) = [0-9]+ \(writer 'B'\)$"
    assert_line --regexp '^\[[0-9]+\] waitpid\([0-9]+\) = [0-9]+, status 0$'
}

# --- close ---

@test "close: pipe(2) gives end of file, EPIPE, and death by SIGPIPE" {
    run "$TOOL" close
    assert_success
    assert_line "pipe(2):"
    assert_line --partial "writer closed: read() = 5 (the bytes still in the pipe), then read() = 0: end of file"
    assert_line --partial "reader closed: write() = -1, Broken pipe (EPIPE), with SIGPIPE ignored"
    assert_line --partial "is killed: status 141 (128 + SIGPIPE)"
    assert_line --partial "the other 6 are dropped, and the writer is never told"
}

@test "close: mem_pipe gives end of file, the closed-pipe error, or the error given" {
    run "$TOOL" close
    assert_success
    assert_line "mem_pipe:"
    assert_line --partial "writer close(): read() = 0, no error: end of file"
    assert_line --partial 'writer close_with_error(ECONNRESET): read() = 0, error "Connection reset by peer"'
    assert_line --partial 'reader close(): write() = 0, error "read/write on closed pipe" (mem_pipe:1); no signal'
    assert_line --partial 'reader close_with_error(ECANCELED): write() = 0, error "Operation canceled"'
    assert_line --partial 'the reader read 5 and closed: write() = 5, error "read/write on closed pipe"'
}

@test "close: a writer killed by SIGPIPE shows the status bash shows for yes | head" {
    run bash -c 'yes | head -c 1 >/dev/null; echo "${PIPESTATUS[0]}"'
    assert_output 141
    run "$TOOL" close
    assert_line --partial "is killed: status 141"
}

# --- usage errors ---

@test "no subcommand is a usage error" {
    run "$TOOL"
    assert_usage_error "subcommand"
}

@test "bad option values are usage errors" {
    run "$TOOL" atomic --size 0
    assert_usage_error "--size"
    run "$TOOL" atomic --size lots
    assert_usage_error "invalid size 'lots'"
    run "$TOOL" atomic --writers 0
    assert_usage_error "--writers"
    run "$TOOL" atomic --writers 27
    assert_usage_error "--writers"
    run "$TOOL" atomic --read 0
    assert_usage_error "--read"
    run "$TOOL" atomic --read 65M
    assert_usage_error "--read"
}

@test "bench has moved: a usage error that names ipcbench pipe, whatever follows it" {
    run "$TOOL" bench
    assert_usage_error "ipcbench pipe"
    run "$TOOL" bench --size 4M --wait all --json
    assert_usage_error "ipcbench pipe"
    run "$TOOL" bench --help
    assert_usage_error "ipcbench pipe"
}

@test "--help explains each subcommand, and where the benchmark went" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "atomic"
    assert_output --partial "close"
    assert_output --partial "bench"
    assert_output --partial "ipcbench pipe"
    run "$TOOL" atomic --help
    assert_success
    assert_output --partial "--writers"
    assert_output --partial "PIPE_BUF"
}

@test "stdout full or closed: exit 1 and one line on stderr (atomic, close, --help, --version)" {
    for args in "atomic --writers 2 --size 1K --rounds 2" close --help --version; do
        # shellcheck disable=SC2086 # $args is split into words on purpose
        run --separate-stderr bash -c '"$TOOL" '"$args"' >/dev/full'
        assert_failure 1
        assert_equal "$stderr" "pipecmp: write(stdout): No space left on device (ENOSPC)"
        run --separate-stderr bash -c '"$TOOL" '"$args"' >&-'
        assert_failure 1
        assert_equal "$stderr" "pipecmp: write(stdout): Bad file descriptor (EBADF)"
    done
}
