#!/usr/bin/env bats
# pipecmp: pipe(2) next to mem_pipe. No timing is asserted (benchmarks belong to tests/perf/),
# and neither is tearing of pipe(2) writes above PIPE_BUF: a given run may tear none.
load ../helpers/ipc

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

# --- bench ---

@test "bench: every path moves the bytes and the checksum matches" {
    run "$TOOL" bench --size 4M --chunk 64K
    assert_success
    assert_line --regexp '^4 MiB in 64 KiB chunks; cpu any; mem_pipe wait adaptive$'
    assert_line --regexp '^memcpy, 1 thread +[0-9.]+ +100% +[0-9]+  ok$'
    assert_line --regexp '^pipe\(2\), 2 processes +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
    assert_line --regexp '^pipe\(2\), 2 threads +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
    assert_line --regexp '^mem_pipe adaptive +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
    refute_line --partial "mem_pipe block"
}

@test "bench --wait all: one mem_pipe run per wait mode" {
    run "$TOOL" bench --size 4M --wait all
    assert_success
    assert_line --partial "mem_pipe wait all"
    assert_line --regexp '^mem_pipe block +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
    assert_line --regexp '^mem_pipe spin +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
    assert_line --regexp '^mem_pipe adaptive +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
}

@test "bench: a size that is not a multiple of the chunk, and tiny chunks" {
    run "$TOOL" bench --size 100001 --chunk 1000
    assert_success
    refute_output --partial MISMATCH
    run "$TOOL" bench --size 3333 --chunk 7 --wait block
    assert_success
    refute_output --partial MISMATCH
}

@test "bench: every wait mode and every CPU placement" {
    for wait in block spin adaptive; do
        run "$TOOL" bench --size 2M --wait "$wait" --cpu same
        assert_success
        assert_line --partial "cpu same; mem_pipe wait $wait"
        assert_line --regexp "^mem_pipe $wait .* ok\$"
    done
    if (($(nproc) >= 2)); then
        run "$TOOL" bench --size 2M --cpu split
        assert_success
        assert_line --regexp '^mem_pipe adaptive .* ok$'
    else
        run "$TOOL" bench --size 2M --cpu split
        assert_failure 1
        assert_output --partial "--cpu split needs two CPUs"
    fi
}

@test "bench --json prints one object with four checked results" {
    run "$TOOL" bench --size 2M --chunk 16K --json
    assert_success
    assert_output --regexp '^\{"size": 2097152, "chunk": 16384, "wait": "adaptive", "cpu": "any", "results": \[.*\]\}$'
    assert_equal "$(grep -o '"checksum_ok": true' <<<"$output" | wc -l)" 4
    assert_output --partial '"path": "mem_pipe adaptive"'
}

# --- usage errors ---

@test "no subcommand is a usage error" {
    run "$TOOL"
    assert_usage_error "subcommand"
}

@test "bad option values are usage errors" {
    run "$TOOL" bench --wait sometimes
    assert_usage_error "--wait"
    run "$TOOL" bench --cpu elsewhere
    assert_usage_error "--cpu"
    run "$TOOL" bench --chunk 0
    assert_usage_error "--chunk"
    run "$TOOL" bench --size 0
    assert_usage_error "--size"
    run "$TOOL" bench --size lots
    assert_usage_error "invalid size 'lots'"
    run "$TOOL" atomic --writers 0
    assert_usage_error "--writers"
    run "$TOOL" atomic --writers 27
    assert_usage_error "--writers"
    run "$TOOL" atomic --read 0
    assert_usage_error "--read"
}

@test "--help explains each subcommand" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "atomic"
    assert_output --partial "close"
    assert_output --partial "bench"
    run "$TOOL" bench --help
    assert_success
    assert_output --partial "--wait"
    assert_output --partial "sched_setaffinity"
}
