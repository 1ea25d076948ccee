#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# cmdout: a command's stdout read through a pipe, whole, in chunks, or line by line.
load ../helpers/ipc

bats_require_minimum_version 1.5.0

@test "--chunk 5 shows the notes' reads of 5,5,5,5 bytes and then EOF" {
    run --separate-stderr "$TOOL" --chunk 5 -- echo -n "command from golang."
    assert_success
    assert_equal "${lines[0]}" 'read 1: 5 bytes "comma"'
    assert_equal "${lines[1]}" 'read 2: 5 bytes "nd fr"'
    assert_equal "${lines[2]}" 'read 3: 5 bytes "om go"'
    assert_equal "${lines[3]}" 'read 4: 5 bytes "lang."'
    assert_line --index 4 --regexp '^read 5: EOF'
    assert_equal "${#lines[@]}" 5
    assert_equal "$stderr" "cmdout: echo: 20 bytes in 4 reads; exited 0"
}

@test "--chunk escapes bytes that are not printable, as Go's %q does" {
    run --separate-stderr "$TOOL" --chunk 4 -- printf 'a\tb\n\001'
    assert_success
    assert_line --index 0 'read 1: 4 bytes "a\tb\n"'
    assert_line --index 1 'read 2: 1 bytes "\x01"'
}

@test "by default the output is copied through unchanged and the total goes to stderr" {
    run --separate-stderr "$TOOL" -- printf 'one\ntwo\n'
    assert_success
    assert_output $'one\ntwo'
    assert_equal "$stderr" "cmdout: printf: 8 bytes in 1 read; exited 0"
}

@test "10 MB from head -c 10M /dev/urandom arrives whole, with no deadlock" {
    local copy="$BATS_TEST_TMPDIR/src" got="$BATS_TEST_TMPDIR/got"
    # tee keeps what the command wrote, to compare with what came through the pipe.
    run timeout 60 bash -c '"$TOOL" -- sh -c "head -c 10M /dev/urandom | tee \"\$1\"" sh "$1" >"$2"' \
        _ "$copy" "$got"
    assert_success
    assert_equal "$(stat -c %s "$got")" 10485760
    assert_equal "$(sha256sum <"$got")" "$(sha256sum <"$copy")"
}

@test "--lines numbers the lines, as bufio.Reader.ReadLine hands them out" {
    run --separate-stderr "$TOOL" --lines -- printf 'alpha\nbeta\n\ngamma'
    assert_success
    assert_line --index 0 'line 1: alpha'
    assert_line --index 1 'line 2: beta'
    assert_line --index 2 'line 3: '
    assert_line --index 3 'line 4 (no newline): gamma'
    assert_equal "$stderr" "cmdout: printf: 4 lines, 17 bytes in 1 read; exited 0"
}

@test "--lines: a line longer than the buffer comes out in parts marked isPrefix, all of it" {
    run "$TOOL" --lines --buffer 8 -- printf 'abcdefghijklmnopqrstu\nxy\n'
    assert_success
    assert_line --index 0 'line 1 (isPrefix): abcdefgh'
    assert_line --index 1 'line 1 (isPrefix): ijklmnop'
    assert_line --index 2 'line 1: qrstu'
    assert_line --index 3 'line 2: xy'
}

@test "--lines with the default 4096-byte buffer: a 10000-byte line in parts of 4096, 4096, 1808" {
    run --separate-stderr "$TOOL" --lines -- sh -c 'head -c 10000 /dev/zero | tr "\0" x; echo'
    assert_success
    assert_equal "${#lines[@]}" 3
    [[ ${lines[0]} == "line 1 (isPrefix): "* && ${#lines[0]} -eq $((19 + 4096)) ]]
    [[ ${lines[1]} == "line 1 (isPrefix): "* && ${#lines[1]} -eq $((19 + 4096)) ]]
    [[ ${lines[2]} == "line 1: "* && ${#lines[2]} -eq $((8 + 1808)) ]]
}

@test "--lines over many reads keeps every line, in order" {
    run bash -c '"$TOOL" --lines -- seq 200000 2>/dev/null | sed -E "s/^line ([0-9]+): \1$/ok/" | sort | uniq -c'
    assert_success
    assert_output --regexp '^ *200000 ok$'
}

@test "exit status is the command's" {
    run "$TOOL" -- sh -c 'exit 3'
    assert_failure 3
}

@test "a command killed by a signal gives 128+n" {
    run --separate-stderr "$TOOL" -- sh -c 'echo before; kill -TERM $$'
    assert_failure 143
    assert_output before
    assert_equal "$stderr" "cmdout: sh: 7 bytes in 1 read; killed by SIGTERM (143)"
}

@test "a command not found: 127 and a clear message" {
    run -127 "$TOOL" -- no-such-command-xyz arg
    assert_output "cmdout: no-such-command-xyz: command not found"
}

@test "a path that does not exist: 127 and execvp's errno" {
    run -127 "$TOOL" -- "$BATS_TEST_TMPDIR/missing"
    assert_output "cmdout: execvp($BATS_TEST_TMPDIR/missing): No such file or directory (ENOENT)"
}

@test "a file that cannot be executed: 126 and execvp's errno" {
    touch "$BATS_TEST_TMPDIR/plain"
    run "$TOOL" -- "$BATS_TEST_TMPDIR/plain"
    assert_failure 126
    assert_output "cmdout: execvp($BATS_TEST_TMPDIR/plain): Permission denied (EACCES)"
}

@test "usage errors: no command, --chunk 0, --chunk with --lines, --buffer without --lines" {
    run "$TOOL"
    assert_usage_error "command is required"
    run "$TOOL" --chunk 0 -- true
    assert_usage_error "--chunk"
    run "$TOOL" --chunk 5 --lines -- true
    assert_usage_error "excludes"
    run "$TOOL" --buffer 8 -- true
    assert_usage_error "--buffer requires --lines"
    run "$TOOL" --chunk 1x -- true
    assert_usage_error "1x"
}

@test "the same bytes as running the command directly" {
    run bash -c 'cmp <("$TOOL" -- od -c "$TOOL" 2>/dev/null) <(od -c "$TOOL")'
    assert_success
}

@test "the command inherits stdin, and no descriptor of cmdout's pipes leaks into it" {
    run bash -c 'echo hi | "$TOOL" -- cat 2>/dev/null'
    assert_output hi
    # close-on-exec: the command sees the same descriptors as when bash runs it directly
    local direct through
    direct=$(sh -c 'ls /proc/$$/fd')
    through=$("$TOOL" -- sh -c 'ls /proc/$$/fd' 2>/dev/null)
    assert_equal "$through" "$direct"
}

@test "a reader that stops early: cmdout and the command end by SIGPIPE, nothing hangs" {
    run timeout 20 bash -c '"$TOOL" -- yes | head -n 3; echo "status ${PIPESTATUS[0]}"'
    assert_success
    assert_output $'y\ny\ny\nstatus 141'
}

@test "-x narrates pipe, fork, dup2 + execvp, every read and waitpid" {
    run --separate-stderr "$TOOL" -x --chunk 8 -- echo hi
    assert_success
    [[ $stderr =~ \]\ pipe\(\)\ =\ \[[0-9]+,\ [0-9]+\] ]]
    [[ $stderr =~ \]\ fork\(\)\ =\ [0-9]+ ]]
    [[ $stderr =~ \]\ dup2\([0-9]+,\ 1\)\;\ execvp\(\"echo\"\) ]]
    [[ $stderr =~ \]\ read\([0-9]+,\ 8\)\ =\ 3 ]]
    [[ $stderr =~ \]\ read\([0-9]+,\ 8\)\ =\ 0 ]]
    [[ $stderr =~ \]\ waitpid\([0-9]+\) ]]
}

@test "stdout full or closed: exit 1 and one line on stderr, never an abort (each mode, --help, --version)" {
    local args
    for args in "--chunk 100 -- seq 1 1000" "--lines -- seq 1 1000" "-- seq 1 100000" --help --version; do
        # shellcheck disable=SC2086 # $args is split into words on purpose
        run --separate-stderr bash -c '"$TOOL" '"$args"' >/dev/full'
        assert_failure 1
        assert_equal "$stderr" "cmdout: write(stdout): No space left on device (ENOSPC)"
        run --separate-stderr bash -c '"$TOOL" '"$args"' >&-'
        assert_failure 1
        assert_equal "$stderr" "cmdout: write(stdout): Bad file descriptor (EBADF)"
    done
}

@test "started with SIGPIPE ignored, a reader that stops early is EPIPE, reported, exit 1" {
    # (yes inherits the ignored SIGPIPE too: its own complaint goes to /dev/null.)
    run --separate-stderr bash -c 'trap "" PIPE; "$TOOL" -- sh -c "yes 2>/dev/null" | head -n 1; echo "status ${PIPESTATUS[0]}"'
    assert_output $'y\nstatus 1'
    assert_equal "$stderr" "cmdout: write(stdout): Broken pipe (EPIPE)"
}
