#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# fifo: named pipes: make, read, write beside coreutils; `fifo demo` runs fifodemo (whose own
# tests are tests/pipes/fifodemo.bats).
load ../helpers/ipc

bats_require_minimum_version 1.5.0

setup() {
    cd "$BATS_TEST_TMPDIR" || return 1
    export IPC_TEST_MARK=$BATS_TEST_TMPDIR
    umask 022
}

teardown() {
    bg_stop_all
    if [[ -n ${PERM_BASE:-} ]]; then rm -rf "$PERM_BASE"; fi
}

# No process of a demo may outlive it: its children are forked, so they carry its command line
# (and this test's mark: a demo of another test running beside this one is not ours).
assert_no_demo_left() {
    run test_processes_with "$BIN/fifodemo"
    assert_output ""
}

@test "make: a FIFO, mode 0666 minus the umask, as mkfifo(2) does" {
    run "$TOOL" make p
    assert_success
    assert_output "p: FIFO made, mode 0644 (asked for 0666; the umask took away 0022)"
    [[ -p p ]]
    assert_equal "$(stat -c %A p)" "prw-r--r--"
}

@test "make --mode is octal, and the umask still applies" {
    run "$TOOL" make q --mode 600
    assert_success
    assert_equal "$(stat -c %a q)" 600
    run bash -c 'umask 077 && "$TOOL" make r --mode 666'
    assert_success
    assert_output "r: FIFO made, mode 0600 (asked for 0666; the umask took away 0066)"
}

@test "interop: mkfifo p; fifo read p & echo hi > p" {
    mkfifo p
    bg_start reader "$TOOL" read p
    timeout 10 bash -c 'echo hi > p'
    wait_for_exit "$BG_PID" 10
    assert_equal "$BG_STATUS" 0
    assert_equal "$(cat "$(bg_out reader)")" hi
}

@test "interop: fifo make p; cat p & fifo write p hello" {
    run "$TOOL" make p
    assert_success
    bg_start cat cat p
    run timeout 10 "$TOOL" write p hello
    assert_success
    wait_for_exit "$BG_PID" 10
    assert_equal "$BG_STATUS" 0
    assert_equal "$(cat "$(bg_out cat)")" hello
}

@test "write joins TEXT with spaces and ends it with a newline; -- passes words that start with -" {
    mkfifo p
    bg_start cat cat p
    run timeout 10 "$TOOL" write p -- -n two words
    assert_success
    wait_for_exit "$BG_PID" 10
    run cmp "$(bg_out cat)" <(printf -- '-n two words\n')
    assert_success
}

@test "write with no TEXT copies stdin; read copies to stdout; 1 MB arrives whole" {
    head -c 1M /dev/urandom >src
    "$TOOL" make p
    bg_start reader "$TOOL" read p
    run timeout 20 "$TOOL" write p <src
    assert_success
    wait_for_exit "$BG_PID" 10
    assert_equal "$BG_STATUS" 0
    assert_equal "$(sha256sum <"$(bg_out reader)")" "$(sha256sum <src)"
}

@test "read sees EOF only when the last writer closes" {
    mkfifo p
    bg_start reader "$TOOL" read p
    # The first writer opens and holds the FIFO; a second writes and closes; then the first closes.
    timeout 10 bash -c 'exec 5>p; echo one >&5; "$TOOL" write p two; echo three >&5'
    wait_for_exit "$BG_PID" 10
    assert_equal "$BG_STATUS" 0
    assert_equal "$(cat "$(bg_out reader)")" $'one\ntwo\nthree'
}

@test "write: a reader that goes away gives EPIPE, reported, exit 1" {
    mkfifo p
    bg_start head head -c 1 p
    run timeout 20 bash -c 'head -c 1M /dev/zero | "$TOOL" write p'
    assert_failure 1
    assert_output "fifo: write(p): Broken pipe (EPIPE)"
}

@test "a path that is not a FIFO: 'not a FIFO', exit 1, the file untouched (make, read, write)" {
    echo keep >file
    touch -d '2001-02-03 04:05:06' file
    local before
    before=$(stat -c '%s %Y %a' file)
    for sub in make read write; do
        run timeout 10 "$TOOL" "$sub" file
        assert_failure 1
        assert_output "fifo: file: not a FIFO"
    done
    run timeout 10 "$TOOL" write file some text
    assert_output "fifo: file: not a FIFO"
    assert_equal "$(cat file)" keep
    assert_equal "$(stat -c '%s %Y %a' file)" "$before"
    mkdir dir
    run timeout 10 "$TOOL" write dir x
    assert_failure 1
    assert_output "fifo: dir: not a FIFO"
}

@test "make on an existing FIFO: EEXIST, exit 1" {
    mkfifo p
    run "$TOOL" make p
    assert_failure 1
    assert_output "fifo: mkfifo(p, 0666): File exists (EEXIST)"
}

@test "a missing directory: the errno in the message, exit 1" {
    run "$TOOL" make nodir/p
    assert_failure 1
    assert_output "fifo: mkfifo(nodir/p, 0666): No such file or directory (ENOENT)"
    run "$TOOL" read nodir/p
    assert_failure 1
    assert_output "fifo: stat(nodir/p): No such file or directory (ENOENT)"
    run "$TOOL" write nodir/p x
    assert_failure 1
    assert_output "fifo: stat(nodir/p): No such file or directory (ENOENT)"
}

@test "no permission: EACCES in the message, exit 1 (as nobody, since the tests run as root)" {
    local as=()
    if ((EUID == 0)); then
        command -v setpriv >/dev/null || skip "root can open anything, and setpriv is not installed"
        as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    fi
    # Under /tmp, not the bats dir: the user must be able to reach the files we deny it.
    PERM_BASE=$(mktemp -d /tmp/fifo-perm.XXXXXX)
    chmod 755 "$PERM_BASE"
    mkdir -m 555 "$PERM_BASE/locked"
    mkfifo -m 600 "$PERM_BASE/mine"
    if ((EUID != 0)); then chmod 000 "$PERM_BASE/mine"; fi
    run "${as[@]}" "$TOOL" make "$PERM_BASE/locked/p"
    assert_failure 1
    assert_output "fifo: mkfifo($PERM_BASE/locked/p, 0666): Permission denied (EACCES)"
    run timeout 10 "${as[@]}" "$TOOL" read "$PERM_BASE/mine"
    assert_failure 1
    assert_output "fifo: open($PERM_BASE/mine, O_RDONLY): Permission denied (EACCES)"
    run timeout 10 "${as[@]}" "$TOOL" write "$PERM_BASE/mine" x
    assert_failure 1
    assert_output "fifo: open($PERM_BASE/mine, O_WRONLY): Permission denied (EACCES)"
}

@test "usage errors: no subcommand, bad --mode, missing PATH, demo options out of range" {
    run "$TOOL"
    assert_usage_error "subcommand"
    run "$TOOL" make p --mode 9
    assert_usage_error "--mode: '9' is not an octal mode like 600"
    run "$TOOL" make p --mode 1777
    assert_usage_error "--mode: 1777 has bits beyond 0777"
    run "$TOOL" read
    assert_usage_error "path"
    run "$TOOL" demo --pause-after 9
    assert_usage_error "--pause-after"
    run "$TOOL" demo --records 0
    assert_usage_error "--records"
    run "$TOOL" demo --read-size 0
    assert_usage_error "--read-size"
    [[ ! -e p ]]
}

@test "demo runs fifodemo in our place (same pid), with the arguments that follow" {
    run --separate-stderr env TMPDIR="$BATS_TEST_TMPDIR" timeout 120 "$TOOL" demo --records 4
    assert_success
    assert_line --index 0 --regexp "^demo dir: $BATS_TEST_TMPDIR/fifo-demo\.[A-Za-z0-9]{6} "
    assert_line --regexp '^1\. open\(O_RDONLY\) blocks until a writer opens: '
    assert_line --regexp '^7\. writes of at most PIPE_BUF \(4096\) bytes never interleave: 2 writers x 4 writes of 4096 bytes, read 4096 at a time: 0 of 8 torn$'
    assert_line --regexp '^8\. larger writes can interleave: '
    assert_line --regexp "^removed $BATS_TEST_TMPDIR/fifo-demo\.[A-Za-z0-9]{6}$"
    assert_equal "$stderr" ""
    # -x before or after `demo`: both narrate, and the pid that execs is the demo's.
    run --separate-stderr env TMPDIR="$BATS_TEST_TMPDIR" timeout 120 "$TOOL" -x demo --records 2
    assert_success
    local pid
    pid=$(sed -n 's/^\[\([0-9]*\)\] execv(".*\/fifodemo")$/\1/p' <<<"$stderr")
    [[ -n $pid ]]
    grep -q "^\[$pid\] mkfifo(" <<<"$stderr"
    run --separate-stderr env TMPDIR="$BATS_TEST_TMPDIR" timeout 120 "$TOOL" demo -x --records 2
    [[ $stderr == *"] mkfifo("* ]]
    run "$TOOL" demo --help
    assert_success
    assert_output --partial "8 larger writes can interleave"
    run compgen -G "$BATS_TEST_TMPDIR/fifo-demo.*"
    assert_failure
    assert_no_demo_left
}

@test "demo: SIGINT to the pid we started stops the demo, and the temp dir is gone" {
    bg_start demo env TMPDIR="$BATS_TEST_TMPDIR" "$TOOL" demo --pause-after 3
    local pid=$BG_PID out
    out=$(bg_out demo)
    wait_for_line "$out" '^paused after rule 3' 60
    local dir
    dir=$(sed -n 's/^demo dir: \([^ ]*\) .*/\1/p' "$out")
    kill -INT "$pid"
    wait_for_exit "$pid" 10
    assert_equal "$BG_STATUS" 130
    [[ ! -e $dir ]]
    assert_equal "$(cat "$(bg_err demo)")" "fifodemo: demo stopped by SIGINT; removed $dir"
    assert_no_demo_left
}

@test "stdout full or closed: exit 1 and one line on stderr (make, read, --help, --version)" {
    mkfifo p
    local args
    for args in "make q" "read p" --help --version "make --help"; do
        rm -f q
        # A writer for `read p`, which waits for one: it closes at once, and read sees EOF.
        if [[ $args == "read p" ]]; then bg_start writer bash -c 'printf hi >p'; fi
        # shellcheck disable=SC2086 # $args is split into words on purpose
        run --separate-stderr timeout 10 bash -c '"$TOOL" '"$args"' >/dev/full'
        assert_failure 1
        assert_equal "$stderr" "fifo: write(stdout): No space left on device (ENOSPC)"
        rm -f q
        if [[ $args == "read p" ]]; then bg_start writer bash -c 'printf hi >p'; fi
        run --separate-stderr timeout 10 bash -c '"$TOOL" '"$args"' >&-'
        assert_failure 1
        assert_equal "$stderr" "fifo: write(stdout): Bad file descriptor (EBADF)"
    done
}

@test "read: a reader of our stdout that goes is EPIPE, reported, exit 1" {
    mkfifo p
    bg_start writer bash -c 'head -c 1M /dev/zero >p'
    run --separate-stderr timeout 20 bash -c '"$TOOL" read p | head -c 1 >/dev/null; echo "status ${PIPESTATUS[0]}"'
    assert_output "status 1"
    assert_equal "$stderr" "fifo: write(stdout): Broken pipe (EPIPE)"
}
