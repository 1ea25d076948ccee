#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# msgqueue: POSIX message queues beside /dev/mqueue (ls, cat, rm), and the demo of what a pipe
# does not do. Every queue a test makes is named /ipckit-mq-<bats pid>-<test>-...; teardown
# removes them, and the last test checks that nothing of ours is left in /dev/mqueue.
load ../helpers/ipc

bats_require_minimum_version 1.5.0

# /dev/mqueue is where Linux shows the queues. A system without systemd may not mount it: as
# root, mount it (it is the usual place: mq_overview(7)); otherwise the tests that read it skip.
setup_file() {
    if ! mountpoint -q /dev/mqueue && [[ $(id -u) == 0 ]]; then
        mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue
    fi
    export PREFIX="ipckit-mq-$$"
}

setup() {
    cd "$BATS_TEST_TMPDIR" || return 1
    umask 022
    Q="/$PREFIX-$BATS_TEST_NUMBER"
}

teardown() {
    bg_stop_all
    local q
    for q in "$Q" "$Q-b"; do "$TOOL" unlink "$q" >/dev/null 2>&1 || true; done
}

need_dev_mqueue() {
    mountpoint -q /dev/mqueue || skip "/dev/mqueue is not mounted and we are not root to mount it"
}

# The value of FIELD (QSIZE, NOTIFY_PID...) in a status line like /dev/mqueue/NAME's.
field() { sed -nE "s/.*$1:([0-9]+).*/\\1/p" <<<"$2"; }

@test "create: the queue appears in /dev/mqueue with its mode, and info reads it back" {
    need_dev_mqueue
    run "$TOOL" create "$Q" --max-msgs 5 --msg-size 100 --mode 640
    assert_success
    assert_line "created $Q: it stays until msgqueue unlink $Q (or rm /dev/mqueue$Q) or a reboot"
    assert_line "$Q: 0 messages queued, at most 5 of at most 100 bytes each"
    assert_line "fstat: mode 0640, uid $(id -u), gid $(id -g)"
    assert_equal "$(stat -c '%A %u' "/dev/mqueue$Q")" "-rw-r----- $(id -u)"
    run "$TOOL" info "$Q"
    assert_line "mq_getattr: mq_maxmsg 5, mq_msgsize 100, mq_curmsgs 0, mq_flags 0"
}

@test "cat /dev/mqueue/NAME shows the QSIZE that info shows, and mq_curmsgs counts the messages" {
    need_dev_mqueue
    "$TOOL" create "$Q" >/dev/null
    run "$TOOL" send "$Q" hello --priority 3
    assert_output "sent 5 bytes with priority 3 to $Q"
    "$TOOL" send "$Q" "two words" >/dev/null
    local cat_line
    cat_line=$(cat "/dev/mqueue$Q")
    assert_equal "$(field QSIZE "$cat_line")" 14
    run "$TOOL" info "$Q"
    assert_success
    assert_line --regexp "^mq_getattr: mq_maxmsg [0-9]+, mq_msgsize [0-9]+, mq_curmsgs 2, mq_flags 0$"
    assert_line "status: QSIZE:14 NOTIFY:0 SIGNO:0 NOTIFY_PID:0   (what cat /dev/mqueue$Q shows)"
}

@test "receive: the highest priority first, the oldest first within one, each message whole" {
    "$TOOL" create "$Q" >/dev/null
    "$TOOL" send "$Q" low -p 0 >/dev/null
    "$TOOL" send "$Q" "high, with spaces" -p 9 >/dev/null
    "$TOOL" send "$Q" mid -p 5 >/dev/null
    "$TOOL" send "$Q" "high too" -p 9 >/dev/null
    "$TOOL" send "$Q" "" >/dev/null
    run "$TOOL" receive "$Q" --count 5
    assert_success
    assert_output "received \"high, with spaces\" (17 bytes, priority 9)
received \"high too\" (8 bytes, priority 9)
received \"mid\" (3 bytes, priority 5)
received \"low\" (3 bytes, priority 0)
received \"\" (0 bytes, priority 0)"
}

@test "receive blocks until another process sends, and the text comes out escaped" {
    "$TOOL" create "$Q" >/dev/null
    bg_start r "$TOOL" receive "$Q"
    local rpid=$BG_PID
    "$TOOL" send "$Q" $'two\nlines' >/dev/null
    wait_for_exit "$rpid" 30
    assert_equal "$BG_STATUS" 0
    assert_equal "$(cat "$(bg_out r)")" 'received "two\nlines" (9 bytes, priority 0)'
}

@test "receive --timeout gives up with ETIMEDOUT, --nonblock with EAGAIN at once: exit 1" {
    "$TOOL" create "$Q" >/dev/null
    run --separate-stderr "$TOOL" receive "$Q" --timeout 200ms
    assert_failure 1
    assert_equal "$stderr" "msgqueue: mq_timedreceive($Q, 200ms): Connection timed out (ETIMEDOUT)"
    run --separate-stderr "$TOOL" receive "$Q" --nonblock
    assert_failure 1
    assert_equal "$stderr" "msgqueue: mq_receive($Q): Resource temporarily unavailable (EAGAIN)"
    run "$TOOL" receive "$Q" --nonblock --timeout 1s
    assert_usage_error "--timeout excludes --nonblock"
}

@test "send to a full queue: EAGAIN with --nonblock, ETIMEDOUT with --timeout; nothing added" {
    "$TOOL" create "$Q" --max-msgs 1 --msg-size 16 >/dev/null
    "$TOOL" send "$Q" first >/dev/null
    run --separate-stderr "$TOOL" send "$Q" second --nonblock
    assert_failure 1
    assert_equal "$stderr" "msgqueue: mq_send($Q): Resource temporarily unavailable (EAGAIN)"
    run --separate-stderr "$TOOL" send "$Q" second --timeout 100ms
    assert_failure 1
    assert_equal "$stderr" "msgqueue: mq_timedsend($Q, 100ms): Connection timed out (ETIMEDOUT)"
    run "$TOOL" receive "$Q" --count 2 --nonblock
    assert_failure 1
    assert_line 'received "first" (5 bytes, priority 0)'
}

@test "a message longer than the queue's message size is refused whole (EMSGSIZE)" {
    "$TOOL" create "$Q" --msg-size 4 >/dev/null
    run --separate-stderr "$TOOL" send "$Q" hello
    assert_failure 1
    assert_equal "$stderr" "msgqueue: $Q takes messages of at most 4 bytes; this one has 5
msgqueue: mq_send($Q): Message too long (EMSGSIZE)"
}

@test "create on an existing queue keeps its attributes; --exclusive refuses it (EEXIST)" {
    "$TOOL" create "$Q" --max-msgs 3 >/dev/null
    run "$TOOL" create "$Q" --max-msgs 7
    assert_success
    assert_line "$Q exists already: its attributes and mode stay as they are"
    assert_line --regexp "^$Q: 0 messages queued, at most 3 of at most [0-9]+ bytes each$"
    run --separate-stderr "$TOOL" create "$Q" --exclusive
    assert_failure 1
    assert_equal "$stderr" "msgqueue: mq_open($Q, O_RDONLY|O_CREAT|O_EXCL, 0600, NULL): File exists (EEXIST)"
}

@test "create beyond /proc/sys/fs/mqueue/msg_max is EINVAL, and says which limit" {
    local capeff msg_max
    capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
    if (((16#$capeff >> 24) & 1)); then skip "CAP_SYS_RESOURCE lifts the limit for this process"; fi
    msg_max=$(cat /proc/sys/fs/mqueue/msg_max)
    run --separate-stderr "$TOOL" create "$Q" --max-msgs $((msg_max + 1))
    assert_failure 1
    assert_output ""
    assert_equal "${stderr%%$'\n'*}" "msgqueue: --max-msgs $((msg_max + 1)) is over /proc/sys/fs/mqueue/msg_max ($msg_max): only a process with CAP_SYS_RESOURCE may go beyond it"
    [[ $stderr == *"Invalid argument (EINVAL)" ]]
}

@test "unlink removes the name (so does rm /dev/mqueue/NAME); then mq_open fails with ENOENT" {
    "$TOOL" create "$Q" >/dev/null
    run "$TOOL" unlink "$Q"
    assert_success
    assert_output "unlinked $Q: the name is gone; a process that has it open keeps the queue until it closes it"
    run --separate-stderr "$TOOL" info "$Q"
    assert_failure 1
    assert_equal "$stderr" "msgqueue: mq_open($Q, O_RDONLY): No such file or directory (ENOENT)"
    need_dev_mqueue
    "$TOOL" create "$Q-b" >/dev/null
    rm "/dev/mqueue$Q-b"
    run "$TOOL" send "$Q-b" hi
    assert_failure 1
}

@test "unlink while a reader has the queue open: the name goes at once, the reader keeps waiting" {
    "$TOOL" create "$Q" >/dev/null
    "$TOOL" send "$Q" before >/dev/null
    bg_start r "$TOOL" receive "$Q" --count 2 -x
    wait_for_line "$(bg_err r)" 'mq_receive.*= 6, priority 0' 30
    "$TOOL" unlink "$Q" >/dev/null
    run "$TOOL" info "$Q"
    assert_failure 1
    assert_line --partial "No such file or directory (ENOENT)"
    # The reader still holds the queue, which nobody can open by name any more: it waits until
    # SIGTERM ends it (the default action: nothing of its own to clean up).
    bg_alive
    kill -TERM "$BG_PID"
    wait_for_exit "$BG_PID" 30
    assert_equal "$BG_STATUS" 143
}

@test "names follow the /name rules; a bad one is a usage error (exit 2)" {
    run "$TOOL" send q hi
    assert_usage_error "NAME: 'q' must start with '/', as in /q (mq_overview(7))"
    run "$TOOL" info /a/b
    assert_usage_error "NAME: '/a/b' must be one name after the '/': no other '/', not . or .."
    run "$TOOL" info /..
    assert_usage_error "must be one name after the '/'"
    run "$TOOL" info /
    assert_usage_error "NAME: '/' needs 1 to 255 characters after the '/'"
    run "$TOOL" info "/$(printf 'a%.0s' {1..256})"
    assert_usage_error "needs 1 to 255 characters after the '/'"
    run "$TOOL" send "$Q" hi --priority 32768
    assert_usage_error "--priority"
    run "$TOOL" create "$Q" --mode 8
    assert_usage_error "--mode: '8' is not an octal mode like 600"
    run "$TOOL" create "$Q" --msg-size 0
    assert_usage_error "--msg-size: must be at least 1 byte"
    run "$TOOL" create "$Q" --msg-size 17M
    assert_usage_error "--msg-size: at most 16M, the kernel's limit even for root"
    run "$TOOL" create "$Q" --msg-size 8589934592G
    assert_usage_error "--msg-size: at most 16M, the kernel's limit even for root"
    run "$TOOL" demo --block 0s
    assert_usage_error "--block: must be more than 0 and at most 1h"
    run "$TOOL"
    assert_usage_error "A subcommand is required"
}

@test "-x narrates mq_open, mq_send and mq_receive with the pid" {
    "$TOOL" create "$Q" >/dev/null
    run --separate-stderr "$TOOL" -x send "$Q" hi -p 2
    assert_success
    [[ $stderr == *"] mq_open($Q, O_WRONLY) = "* ]]
    [[ $stderr == *'] mq_send('*', "hi", 2 bytes, priority 2) = 0'* ]]
    run --separate-stderr "$TOOL" receive "$Q" -x
    [[ $stderr == *"] mq_receive("*" bytes of room) = 2, priority 2"* ]]
}

@test "demo: boundaries, priorities, a full queue, mq_notify and the limits, in one run" {
    run "$TOOL" demo --block 100ms
    assert_success
    local pid
    pid=$(sed -nE '1s|^queue /msgqueue-demo-([0-9]+) .*|\1|p' <<<"$output")
    [[ -n $pid ]]
    assert_line --partial 'one read(2) of 64 bytes = "onetwothree": a stream of bytes'
    assert_line --partial '3 times = "one" "two" "three": one whole message each'
    assert_line --partial 'mq_send of 65 bytes = -1 EMSGSIZE'
    assert_line --partial 'received "high" (9) "high too" (9) "mid" (5) "low" (0)'
    assert_line --regexp '^   mq_timedsend = -1 ETIMEDOUT after [0-9.]+s'
    assert_line --partial 'mq_send = -1 EAGAIN at once'
    assert_line --partial "(status: QSIZE:0 NOTIFY:0 SIGNO:10 NOTIFY_PID:$pid); a second mq_notify = -1 EBUSY"
    assert_line --regexp '^   the writer ([0-9]+) \(exited 0\) sent a message: SIGUSR1 came with si_code SI_MESGQ, si_pid \1, si_value 42; mq_receive = "wake up"$'
    assert_line "   the registration is used up: status now QSIZE:0 NOTIFY:0 SIGNO:0 NOTIFY_PID:0"
    assert_line --partial "msg_max $(cat /proc/sys/fs/mqueue/msg_max) messages and msgsize_max $(cat /proc/sys/fs/mqueue/msgsize_max) bytes"
    assert_line --partial "queues_max $(cat /proc/sys/fs/mqueue/queues_max) queues"
    assert_line --partial "RLIMIT_MSGQUEUE allows $(ulimit -q) bytes"
    if mountpoint -q /dev/mqueue; then
        assert_line --partial "/dev/mqueue/msgqueue-demo-$pid was there, then mq_unlink at once"
        [[ ! -e /dev/mqueue/msgqueue-demo-$pid ]]
    fi
}

# demo_stopped_by SIGNAL STATUS: the demo waits on its full queue for 30 s; SIGNAL ends it there
# (env --default-signal: a background job of a script starts with SIGINT ignored), and its queue
# must not be left in /dev/mqueue.
demo_stopped_by() {
    bg_start d env --default-signal="$1" "$TOOL" demo --block 30s
    local pid=$BG_PID
    wait_for_line "$(bg_out d)" 'mq_timedsend waits for room, at most 30s' 30
    kill -s "$1" "$pid"
    wait_for_exit "$pid" 30
    assert_equal "$BG_STATUS" "$2"
    [[ ! -e /dev/mqueue/msgqueue-demo-$pid ]]
    run "$BIN/msgqueue" info "/msgqueue-demo-$pid"
    assert_failure 1
}

@test "demo: SIGINT while it waits on the full queue leaves no queue behind" {
    demo_stopped_by INT 130
}

@test "demo: SIGTERM leaves no queue behind either" {
    demo_stopped_by TERM 143
}

@test "demo: a signal between mq_open and mq_unlink is held until the name is gone (SIGUSR1, SIGTERM)" {
    command -v strace >/dev/null || skip "strace is missing"
    mountpoint -q /dev/mqueue || skip "/dev/mqueue is not mounted"
    local sig status tool deadline
    for sig in USR1:138 TERM:143; do
        status=${sig#*:} sig=${sig%:*}
        # strace holds mq_unlink back 3 s: the window in which the queue has its name.
        bg_start "d$sig" strace -f -qq -o /dev/null -e trace=mq_unlink \
            -e inject=mq_unlink:delay_enter=3000000 "$TOOL" demo
        local strace_pid=$BG_PID
        tool="" deadline=$((SECONDS + 10))
        until [[ -n $tool && -e /dev/mqueue/msgqueue-demo-$tool ]]; do
            tool=$(pgrep -P "$strace_pid" -x msgqueue || true)
            ((SECONDS < deadline)) || fail "the demo's queue never appeared"
            sleep 0.02
        done
        kill -s "$sig" "$tool"
        wait_for_exit "$strace_pid" 30
        assert_equal "$BG_STATUS" "$status"
        [[ ! -e /dev/mqueue/msgqueue-demo-$tool ]]
    done
}

@test "demo: a writer whose mq_send fails ends the demo at once with its error, one line" {
    command -v strace >/dev/null || skip "strace is missing"
    # Only the writer's mq_send must fail, and strace counts calls per process: so strace
    # attaches (-p) while the demo waits on its full queue, after every send of its own that
    # must succeed, and fails each mq_timedsend from then on: the demo's last two (it prints
    # their errors and goes on) and the writer's. LeakSanitizer cannot run under ptrace: off.
    bg_start d env ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" "$TOOL" -x demo --block 30s
    local pid=$BG_PID
    wait_for_line "$(bg_out d)" 'mq_timedsend waits for room, at most 30s' 30
    bg_start strace strace -f -p "$pid" -o /dev/null -e trace=mq_timedsend \
        -e inject=mq_timedsend:error=EBADF
    if ! wait_for_line "$(bg_err strace)" "Process $pid attached|ptrace" 10 ||
        ! grep -q "Process $pid attached" "$(bg_err strace)"; then
        skip "strace cannot attach to the demo here: $(cat "$(bg_err strace)")"
    fi
    wait_for_exit "$pid" 40
    assert_equal "$BG_STATUS" 1
    local writer
    writer=$(sed -n 's/^\[[0-9]*\] fork() = \([0-9]*\): the writer$/\1/p' "$(bg_err d)")
    [[ -n $writer ]]
    run grep -v '^\[' "$(bg_err d)"
    assert_output "msgqueue: writer: mq_send: Bad file descriptor (EBADF)"
    run cat "$(bg_out d)"
    assert_line --partial "4. mq_notify: registered for SIGUSR1"
    refute_line --partial "sent a message"
    refute_line --partial "5. limits"
    run kill -0 "$writer" # reaped: no such process, not even a zombie
    assert_failure
    [[ ! -e /dev/mqueue/msgqueue-demo-$pid ]]
    run "$BIN/msgqueue" info "/msgqueue-demo-$pid"
    assert_failure 1
}

@test "EINTR injected (strace) into each blocking call of the demo changes nothing" {
    command -v strace >/dev/null || skip "strace is not installed"
    local want got call
    want=$("$TOOL" demo --block 100ms | sed -E 's/[0-9.]+/N/g')
    # when=1+2: the 1st, 3rd, 5th... call fails with EINTR, and the retry after each succeeds.
    for call in mq_timedsend mq_timedreceive rt_sigtimedwait wait4 write; do
        got=$(strace -f -o /dev/null -e trace="$call" -e inject="$call:error=EINTR:when=1+2" \
            "$TOOL" demo --block 100ms | sed -E 's/[0-9.]+/N/g')
        assert_equal "$got" "$want"
    done
}

@test "stdout full or closed: exit 1 and one line, --help included" {
    "$TOOL" create "$Q" >/dev/null
    local cmd
    for cmd in "info $Q" "demo --block 10ms" "--help" "--version" "send --help"; do
        # shellcheck disable=SC2086 # the words of cmd are meant to split
        run --separate-stderr bash -c '"$0" "$@" >/dev/full' "$TOOL" $cmd
        assert_failure 1
        assert_equal "$stderr" "msgqueue: write(stdout): No space left on device (ENOSPC)"
        # shellcheck disable=SC2086
        run --separate-stderr bash -c '"$0" "$@" >&-' "$TOOL" $cmd
        assert_failure 1
        assert_equal "$stderr" "msgqueue: write(stdout): Bad file descriptor (EBADF)"
    done
}

@test "nothing of these tests is left in /dev/mqueue" {
    need_dev_mqueue
    run bash -c 'ls /dev/mqueue | grep "^$PREFIX-"'
    assert_output ""
}
