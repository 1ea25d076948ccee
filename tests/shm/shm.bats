#!/usr/bin/env bats
# shm: write, read and unlink a POSIX shared memory object beside ls, cat and od; the demo's
# shared and copied page frames; nothing left in /dev/shm on any exit path.
load ../helpers/ipc

setup() {
    NAME="ipckit-test-shm-$BASHPID-$RANDOM"
}

teardown() {
    bg_stop_all
    rm -f "/dev/shm/$NAME"
}

# refute_demo_left PID: fails if the demo run by process PID left its object in /dev/shm.
refute_demo_left() {
    assert [ ! -e "/dev/shm/ipckit-shm-demo-$1" ]
}

@test "write creates /dev/shm/NAME with the text's size; cat, od and read show the text" {
    run "$TOOL" write "$NAME" hello
    assert_success
    assert_line --index 0 --regexp "^/dev/shm/$NAME: created, 5 bytes, mapped at 0x[0-9a-f]+$"
    assert_line --index 1 --regexp '^page 0: frame (0x[0-9a-f]+|hidden .*)$'
    assert_line --index 2 "wrote 5 bytes: try  cat /dev/shm/$NAME   shm read $NAME   shm unlink $NAME"
    assert_equal "$(stat -c %s "/dev/shm/$NAME")" 5
    assert_equal "$(cat "/dev/shm/$NAME")" hello
    run "$TOOL" read "$NAME"
    assert_success
    assert_line --index 0 --regexp "^/dev/shm/$NAME: 5 bytes \(5 of text, then zeros\), mapped read-only at 0x"
    assert_line --index 2 hello
    run "$TOOL" unlink "/$NAME"
    assert_success
    assert_output "/$NAME removed: gone from /dev/shm; a process that still maps it keeps the memory"
    assert [ ! -e "/dev/shm/$NAME" ]
}

@test "as root, the writer and the reader see the same physical frame: the object's own page" {
    [[ $(id -u) == 0 ]] || skip "physical frames need root"
    "$TOOL" write "$NAME" hello >"$BATS_TEST_TMPDIR/w"
    local frame
    frame=$(sed -n 's/^page 0: //p' "$BATS_TEST_TMPDIR/w")
    [[ $frame == "frame 0x"* ]]
    run "$TOOL" read "$NAME"
    assert_line "page 0: $frame"
}

@test "--size makes a bigger object: ls -l shows the size, od the zeros after the text" {
    run "$TOOL" write "$NAME" hi --size 8K
    assert_success
    assert_line --index 0 --regexp "^/dev/shm/$NAME: created, 8192 bytes"
    run ls -l "/dev/shm/$NAME"
    assert_output --regexp "^-rw------- 1 [a-z0-9]+ [a-z0-9]+ 8192 "
    run od -A d -c "/dev/shm/$NAME"
    assert_line --index 0 '0000000   h   i  \0  \0  \0  \0  \0  \0  \0  \0  \0  \0  \0  \0  \0  \0'
    assert_line --index 2 '*'
    assert_line --index 3 '0008192'
    run "$TOOL" read "$NAME"
    assert_line --index 0 --partial "8192 bytes (2 of text, then zeros)"
    assert_line --index 2 hi
}

@test "write again replaces the content (O_TRUNC), as > does for a file" {
    "$TOOL" write "$NAME" "a longer text" >/dev/null
    run "$TOOL" write "$NAME" short
    assert_success
    assert_line --index 0 --partial "/dev/shm/$NAME: emptied, 5 bytes"
    assert_equal "$(cat "/dev/shm/$NAME")" short
}

@test "read sees what another program wrote into /dev/shm" {
    printf 'from printf' >"/dev/shm/$NAME"
    run "$TOOL" read "$NAME"
    assert_success
    assert_line --index 2 "from printf"
    printf '' >"/dev/shm/$NAME"
    run "$TOOL" read "$NAME"
    assert_output "/dev/shm/$NAME: 0 bytes: nothing to map"
}

@test "demo: one frame for the shared page in both processes, a copy for the private page" {
    run "$TOOL" demo
    assert_success
    local parent child shared
    parent=$(sed -n 's/^parent \([0-9]*\): shm_open.*/\1/p' <<<"$output")
    child=$(sed -n 's/^parent [0-9]*: fork() = \([0-9]*\);.*/\1/p' <<<"$output")
    assert_line --index 2 "parent $parent: fork() = $child; the child mapped /ipckit-shm-demo-$parent too, so shm_unlink removed the name"
    assert_line --regexp "^child  $child: shm_open\(/ipckit-shm-demo-$parent\), mmap: shared page at 0x[0-9a-f]+, .*, reads \"the parent's text\"$"
    assert_line "parent $parent: shared page reads \"written by the child $child\", $(sed -n 's/^parent [0-9]*: shm_open.*, \(frame .*\)$/\1/p' <<<"$output")"
    assert_line --regexp "^parent $parent: private page reads \"the parent's text\", "
    refute_demo_left "$parent"
    if [[ $(id -u) == 0 ]]; then
        shared=$(sed -n 's/^parent [0-9]*: shm_open.*, \(frame 0x[0-9a-f]*\)$/\1/p' <<<"$output")
        assert_line "shared page: $shared in parent and child: one page frame, two processes"
        assert_line --regexp "^private page: the parent's frame 0x[0-9a-f]+, the child's frame 0x[0-9a-f]+: copied on the child's write$"
        # The child's private frame before its write was the parent's: shared until written.
        local private
        private=$(sed -n 's/^parent [0-9]*: private page at [0-9a-fx]*, \(frame 0x[0-9a-f]*\)$/\1/p' <<<"$output")
        assert_line --regexp "^child  $child: private page at 0x[0-9a-f]+, $private, reads \"the parent's text\"$"
    fi
}

@test "demo without CAP_SYS_ADMIN says that the frames are hidden, and still shows the texts" {
    command -v setpriv >/dev/null || skip "setpriv (util-linux) is missing"
    [[ $(id -u) == 0 ]] || skip "needs root to become nobody"
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$TOOL" demo
    assert_success
    assert_line --regexp "^parent [0-9]+: private page at 0x[0-9a-f]+, frame hidden \(pagemap shows 0: not root\)$"
    assert_line --partial "frames hidden: /proc/self/pagemap shows frame numbers only to CAP_SYS_ADMIN (run as root)"
    assert_line --regexp '^parent [0-9]+: shared page reads "written by the child [0-9]+"'
}

@test "a missing object, a name of another user's: the project's errors, exit 1" {
    run "$TOOL" read "$NAME"
    assert_failure 1
    assert_output "shm: shm_open(/$NAME, O_RDONLY): No such file or directory (ENOENT)"
    run "$TOOL" unlink "$NAME"
    assert_failure 1
    assert_output "shm: shm_unlink(/$NAME): No such file or directory (ENOENT)"
    [[ $(id -u) == 0 ]] || return 0
    "$TOOL" write "$NAME" secret >/dev/null # mode 0600, root's
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$TOOL" read "$NAME"
    assert_failure 1
    assert_output "shm: shm_open(/$NAME, O_RDONLY): Permission denied (EACCES)"
}

@test "bad command lines are usage errors (exit 2)" {
    run "$TOOL" write a/b text
    assert_usage_error "NAME: 'a/b' is not a POSIX IPC name (no '/' after the first)"
    run "$TOOL" read ..
    assert_usage_error "NAME: '..' is not a POSIX IPC name (a name is needed)"
    run "$TOOL" write "$NAME" ""
    assert_usage_error "TEXT is empty: give --size for an object of zeros"
    run "$TOOL" write "$NAME" hello --size 3
    assert_usage_error "TEXT has 5 bytes: more than --size 3"
    run "$TOOL" write "$NAME" hello --size 2G
    assert_usage_error "--size: at most 1G, please"
    run "$TOOL" write "$NAME" hello --size 12Q
    assert_failure 2
    run "$TOOL"
    assert_failure 2
    assert [ ! -e "/dev/shm/$NAME" ]
}

@test "a failure after the object was created removes it (ftruncate made to fail)" {
    command -v strace >/dev/null || skip "strace is missing"
    # LeakSanitizer cannot run under ptrace: the dev preset's leak check is off for this run.
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" run strace -f -qq -o /dev/null \
        -e trace=ftruncate -e inject=ftruncate:error=EFBIG "$TOOL" write "$NAME" hello
    assert_failure 1
    assert_output "shm: ftruncate(5): File too large (EFBIG)"
    assert [ ! -e "/dev/shm/$NAME" ]
}

# in_window SIGNAL: runs the demo with its ftruncate (while the name exists) slowed down by strace,
# sends SIGNAL to the tool once its object appears, and checks that it died of it, name removed.
in_window() {
    command -v strace >/dev/null || skip "strace is missing"
    # A background job starts with SIGINT ignored: env puts the default action back.
    bg_start demo env --default-signal=INT strace -f -qq -o /dev/null -e trace=ftruncate \
        -e inject=ftruncate:delay_exit=3000000 "$TOOL" demo
    local strace_pid=$BG_PID tool="" deadline=$((SECONDS + 10))
    until [[ -n $tool && -e /dev/shm/ipckit-shm-demo-$tool ]]; do
        tool=$(pgrep -P "$strace_pid" -x shm || true)
        ((SECONDS < deadline)) || fail "the demo's object never appeared"
        sleep 0.02
    done
    kill "-$1" "$tool"
    wait_for_exit "$strace_pid"
    assert_equal "$BG_STATUS" "$2"
    refute_demo_left "$tool"
}

@test "SIGTERM while the demo's object has its name: the name is removed first, then it dies" {
    in_window TERM 143
}

@test "SIGINT while the demo's object has its name: the same" {
    in_window INT 130
}

@test "SIGUSR1 or SIGALRM in that window: held as well (every signal that can be blocked is)" {
    in_window USR1 138
    bg_stop_all
    in_window ALRM 142
}

# find_demo STRACE_PID: sets TOOL_PID to the demo under strace STRACE_PID and CHILD_PID to its
# forked child, waiting (10 s at most) until both exist.
find_demo() {
    local deadline=$((SECONDS + 10))
    TOOL_PID="" CHILD_PID=""
    until [[ -n $CHILD_PID ]]; do
        [[ -n $TOOL_PID ]] || TOOL_PID=$(pgrep -P "$1" -x shm || true)
        [[ -z $TOOL_PID ]] || CHILD_PID=$(pgrep -P "$TOOL_PID" -x shm || true)
        ((SECONDS < deadline)) || fail "the demo's child never appeared"
        sleep 0.02
    done
}

# The child starts with the parent's mask, every signal held, and must put the original one back:
# SIGTERM sent to the child while the parent holds its signals (the name exists) ends the child.
# The parent then removes the name, reaps the child and says how it ended: exit 1, nothing left.
# LeakSanitizer cannot run under ptrace: the dev preset's leak check is off for these runs.

@test "demo: SIGTERM to the child before it maps the object ends it; the demo says so" {
    command -v strace >/dev/null || skip "strace is missing"
    # strace holds each process's first openat for 3 s after it returns: the tool's is the
    # loader's, at start-up; the child's is its shm_open, before mmap and its byte to the parent.
    bg_start demo env ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -qq -o /dev/null \
        -e trace=openat -e inject=openat:delay_exit=3000000:when=1 "$TOOL" demo
    local strace_pid=$BG_PID
    find_demo "$strace_pid"
    assert [ -e "/dev/shm/ipckit-shm-demo-$TOOL_PID" ] # the window: the parent holds its signals
    kill -TERM "$CHILD_PID"
    wait_for_exit "$strace_pid"
    assert_equal "$BG_STATUS" 1
    assert_equal "$(cat "$(bg_err demo)")" \
        "shm: child $CHILD_PID killed by SIGTERM (143) before it mapped /ipckit-shm-demo-$TOOL_PID"
    assert_equal "$(cat "$(bg_out demo)")" ""
    refute_demo_left "$TOOL_PID"
    run kill -0 "$CHILD_PID" # reaped: no such process, not even a zombie
    assert_failure
}

@test "demo: SIGTERM to the child while it waits for the parent's go ends it as well" {
    command -v strace >/dev/null || skip "strace is missing"
    # strace (without -f: the parent alone) holds the parent's shm_unlink (unlink, or unlinkat
    # where there is no unlink) for 3 s before it runs. The child has mapped the object, sent its
    # byte and waits in read(2): sleeping (S) with the object in its maps.
    bg_start demo env ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -qq -o /dev/null \
        -e 'trace=/^unlink(at)?$' -e 'inject=/^unlink(at)?$:delay_enter=3000000' "$TOOL" demo
    local strace_pid=$BG_PID deadline=$((SECONDS + 10))
    find_demo "$strace_pid"
    until grep -q "/dev/shm/ipckit-shm-demo-$TOOL_PID" "/proc/$CHILD_PID/maps" 2>/dev/null &&
        [[ $(cut -d ' ' -f 3 "/proc/$CHILD_PID/stat" 2>/dev/null) == S ]]; do
        ((SECONDS < deadline)) || fail "the child never waited for the parent's go"
        sleep 0.02
    done
    assert [ -e "/dev/shm/ipckit-shm-demo-$TOOL_PID" ] # the window: the parent holds its signals
    kill -TERM "$CHILD_PID"
    wait_for_exit "$strace_pid"
    assert_equal "$BG_STATUS" 1
    assert_equal "$(cat "$(bg_err demo)")" "shm: child $CHILD_PID killed by SIGTERM (143)"
    run cat "$(bg_out demo)"
    assert_line --index 2 "parent $TOOL_PID: fork() = $CHILD_PID; the child mapped /ipckit-shm-demo-$TOOL_PID too, so shm_unlink removed the name"
    refute_line --partial "child  $CHILD_PID"
    refute_demo_left "$TOOL_PID"
    run kill -0 "$CHILD_PID"
    assert_failure
}

@test "stdout full or closed: exit 1 with one line; the demo leaves nothing" {
    local pid="$BATS_TEST_TMPDIR/pid" # exec keeps the pid: the demo's name is known
    run bash -c 'echo $$ >"$2"; exec "$1" demo >/dev/full' _ "$TOOL" "$pid"
    assert_failure 1
    assert_output "shm: write(stdout): No space left on device (ENOSPC)"
    refute_demo_left "$(cat "$pid")"
    run bash -c 'echo $$ >"$2"; exec "$1" demo >&-' _ "$TOOL" "$pid"
    assert_failure 1
    assert_output "shm: write(stdout): Bad file descriptor (EBADF)"
    refute_demo_left "$(cat "$pid")"
    run bash -c '"$1" read "$2" >/dev/full' _ "$TOOL" "$NAME"
    assert_failure 1
    run bash -c '"$1" --help >/dev/full' _ "$TOOL"
    assert_failure 1
    assert_output "shm: write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$1" --version >&-' _ "$TOOL"
    assert_failure 1
    assert_output "shm: write(stdout): Bad file descriptor (EBADF)"
}

@test "--explain narrates shm_open, ftruncate, mmap, fork and shm_unlink with pids" {
    run bash -c '"$1" demo -x 2>&1 >/dev/null' _ "$TOOL"
    assert_success
    assert_line --regexp '^\[[0-9]+\] shm_open\(/ipckit-shm-demo-[0-9]+, O_RDWR\|O_CREAT\|O_EXCL, 0600\) = [0-9]+$'
    assert_line --regexp '^\[[0-9]+\] ftruncate\([0-9]+, [0-9]+\) = 0$'
    assert_line --regexp '^\[[0-9]+\] mmap\([0-9]+, PROT_READ\|PROT_WRITE, MAP_SHARED, [0-9]+\) = 0x'
    assert_line --regexp '^\[[0-9]+\] fork\(\) = [0-9]+$'
    assert_line --regexp '^\[[0-9]+\] shm_unlink\(/ipckit-shm-demo-[0-9]+\) = 0$'
}
