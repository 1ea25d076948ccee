#!/usr/bin/env bats
# sigrecv: receive signals from bash's kill, procps' /bin/kill and pkill, sigsend, a terminal.
load ../helpers/ipc

# start_sigrecv NAME [ARGS...]: starts sigrecv in the background, waits for its first line
# (printed only once the signals are blocked, so sending is safe from then on), sets $RPID.
start_sigrecv() {
    local name=$1
    shift
    bg_start "$name" "$TOOL" "$@"
    RPID=$BG_PID
    wait_for_line "$(bg_out "$name")" '^sigrecv: pid [0-9]+ waiting for '
}

# stop_and_check NAME: SIGTERM, then it must exit 0 after printing its summary.
stop_and_check() {
    kill -TERM "$RPID"
    wait_for_exit "$RPID"
    assert_equal "$BG_STATUS" 0
    run cat "$(bg_out "$1")"
    assert_line "sigrecv: SIGTERM received: exiting"
}

@test "first line names the pid, the default set and a kill to try" {
    start_sigrecv r
    run head -n 1 "$(bg_out r)"
    assert_output "sigrecv: pid $RPID waiting for SIGINT SIGQUIT SIGHUP SIGUSR1 SIGUSR2 SIGTERM (try: kill -USR1 $RPID)"
    run grep -c 'SIGKILL and SIGSTOP cannot be caught' "$(bg_out r)"
    assert_output 1
}

@test "bash's kill -USR1 arrives with the sender's pid and uid, via kill; kill ends it with a summary" {
    start_sigrecv r
    bash -c 'echo $$ >"$1"; exec kill -USR1 "$2"' _ "$BATS_TEST_TMPDIR/sender" "$RPID"
    wait_for_line "$(bg_out r)" '^SIGUSR1 \(10\)'
    run grep '^SIGUSR1' "$(bg_out r)"
    assert_output "SIGUSR1 (10) from pid $(cat "$BATS_TEST_TMPDIR/sender") uid $(id -u) via kill"
    stop_and_check r
    assert_line "SIGTERM (15) from pid $$ uid $(id -u) via kill"
    assert_line "  SIGUSR1 (10): 1"
    assert_line "  SIGTERM (15): 1"
    assert_line --regexp '^sigrecv: received 2 signals in ([0-9.]+s first to last|one read)$'
}

@test "procps /bin/kill and pkill reach it too" {
    start_sigrecv r
    /bin/kill -s HUP "$RPID"
    wait_for_line "$(bg_out r)" '^SIGHUP \(1\) from pid [0-9]+ uid [0-9]+ via kill$'
    # -P: only our own children, -x: the exact name, so no other test's sigrecv is touched.
    pkill -USR2 -P "$BASHPID" -x sigrecv
    wait_for_line "$(bg_out r)" '^SIGUSR2 \(12\) from pid [0-9]+ uid [0-9]+ via kill$'
    /bin/kill -s QUIT "$RPID"
    wait_for_line "$(bg_out r)" '^SIGQUIT \(3\)'
    stop_and_check r
    assert_line "  SIGHUP (1): 1"
    assert_line "  SIGUSR2 (12): 1"
    assert_line "  SIGQUIT (3): 1"
}

@test "SIGINT ends it too, although a background job inherits SIGINT ignored" {
    start_sigrecv r
    kill -INT "$RPID"
    wait_for_exit "$RPID"
    assert_equal "$BG_STATUS" 0
    run cat "$(bg_out r)"
    assert_line --regexp '^SIGINT \(2\) from pid [0-9]+ uid [0-9]+ via kill$'
    assert_line "sigrecv: SIGINT received: exiting"
}

@test "sigsend --value arrives via sigqueue with its value" {
    start_sigrecv r --signals RTMIN+1,TERM
    "$BIN/sigsend" RTMIN+1 "$RPID" --value 42
    wait_for_line "$(bg_out r)" '^SIGRTMIN\+1 \(35\) from pid [0-9]+ uid [0-9]+ via sigqueue value 42$'
    "$BIN/sigsend" USR1 "$RPID" --value 7 || true # USR1 is not in the set: default action
    wait_for_exit "$RPID"
    assert_equal "$BG_STATUS" $((128 + 10))
}

# on_tty NAME ARGS...: runs sigrecv on a pseudo-terminal of its own (socat, as its controlling
# terminal), so that typing Ctrl-C (\003) or Ctrl-\ (\034) into $TTY_IN makes the kernel's
# terminal driver send the signal, as when a student presses the keys.
on_tty() {
    local name=$1
    shift
    mkfifo "$BATS_TEST_TMPDIR/tty.in"
    exec 4<>"$BATS_TEST_TMPDIR/tty.in"
    bg_start "$name" bash -c 'exec socat -t 5 - EXEC:"$*",pty,setsid,ctty,stderr <"$0"' \
        "$BATS_TEST_TMPDIR/tty.in" "$TOOL" "$@"
    wait_for_line "$(bg_out "$name")" '^sigrecv: pid [0-9]+ waiting for '
}

@test "Ctrl-C and Ctrl-\\ on its terminal arrive from the kernel's tty driver" {
    on_tty t --signals QUIT INT
    printf '\034' >&4
    wait_for_line "$(bg_out t)" 'SIGQUIT \(3\) from pid 0 uid 0 via tty/kernel'
    printf '\003' >&4
    wait_for_line "$(bg_out t)" 'sigrecv: SIGINT received: exiting'
    exec 4>&-
    wait_for_exit "$BG_PID"
    run cat "$(bg_out t)"
    assert_line --partial "SIGINT (2) from pid 0 uid 0 via tty/kernel"
}

@test "--signals takes any spelling, comma or space separated; others keep their default action" {
    start_sigrecv r --signals "usr1,SIGUSR2 12" rtmin+2 34
    run head -n 1 "$(bg_out r)"
    assert_output "sigrecv: pid $RPID waiting for SIGUSR1 SIGUSR2 SIGRTMIN+2 SIGRTMIN (try: kill -USR1 $RPID)"
    kill -s RTMIN+2 "$RPID"
    wait_for_line "$(bg_out r)" '^SIGRTMIN\+2 \(36\) from pid'
    kill -TERM "$RPID" # not in the set: the default action ends it
    wait_for_exit "$RPID"
    assert_equal "$BG_STATUS" 143
}

@test "--all takes every catchable signal, real-time ones included" {
    start_sigrecv r --all
    run head -n 1 "$(bg_out r)"
    assert_output --partial "SIGHUP SIGINT SIGQUIT"
    assert_output --partial "SIGCHLD SIGCONT SIGTSTP"
    assert_output --partial "SIGRTMAX-1 SIGRTMAX (try: kill -USR1 $RPID)"
    refute_output --partial "SIGKILL"
    refute_output --partial "SIGSTOP"
    kill -s WINCH "$RPID"
    wait_for_line "$(bg_out r)" '^SIGWINCH \(28\)'
    kill -s RTMAX "$RPID"
    wait_for_line "$(bg_out r)" '^SIGRTMAX \(64\)'
    stop_and_check r
}

@test "--signals KILL or STOP is a usage error that says why" {
    run "$TOOL" --signals USR1,KILL
    assert_usage_error "SIGKILL cannot be caught, blocked or ignored"
    run "$TOOL" --signals sigstop
    assert_usage_error "SIGSTOP cannot be caught, blocked or ignored"
    run "$TOOL" --signals 9
    assert_usage_error "SIGKILL cannot be caught"
}

@test "bad --signals, --all with --signals, bad numbers: usage errors" {
    run "$TOOL" --signals USR3
    assert_usage_error "--signals: 'USR3' is not a signal"
    run "$TOOL" --signals 32
    assert_usage_error "'32' is not a signal"
    run "$TOOL" --all --signals USR1
    assert_usage_error "excludes"
    run "$TOOL" --stop-after 0
    assert_usage_error "--stop-after"
    run "$TOOL" --watchers 0
    assert_usage_error "--watchers"
    run "$TOOL" --block 5
    assert_usage_error "invalid duration '5'"
}

@test "lines reach a pipe at once, not when a buffer fills" {
    bg_start p bash -c '"$1" | cat' _ "$TOOL"
    wait_for_line "$(bg_out p)" '^sigrecv: pid [0-9]+ waiting'
    RPID=$(sed -n '1s/^sigrecv: pid \([0-9]*\) .*/\1/p' "$(bg_out p)")
    kill -USR1 "$RPID"
    wait_for_line "$(bg_out p)" '^SIGUSR1 \(10\)'
    kill -TERM "$RPID"
    wait_for_line "$(bg_out p)" '^sigrecv: received 2 signals'
}

@test "--stop-after N: after N deliveries the default actions are back; SIGTERM then ends it (143)" {
    start_sigrecv r --stop-after 2
    kill -USR1 "$RPID"
    wait_for_line "$(bg_out r)" '^SIGUSR1'
    kill -USR2 "$RPID"
    wait_for_line "$(bg_out r)" '^sigrecv: stopped after 2 deliveries'
    wait_for_line "$(bg_out r)" '^  SIGUSR2 \(12\): 1$'
    kill -TERM "$RPID"
    wait_for_exit "$RPID"
    assert_equal "$BG_STATUS" 143
    run grep -c '^SIGTERM' "$(bg_out r)"
    assert_output 0
}

@test "--stop-after restores SIG_DFL even for a SIGINT the shell handed down ignored (130)" {
    start_sigrecv r --stop-after 1
    kill -USR1 "$RPID"
    wait_for_line "$(bg_out r)" '^sigrecv: stopped after 1 deliveries'
    wait_for_line "$(bg_out r)" '^  SIGUSR1 \(10\): 1$'
    kill -INT "$RPID"
    wait_for_exit "$RPID"
    assert_equal "$BG_STATUS" 130
}

@test "--block: a standard signal sent 5 times arrives once, a real-time one 5 times in order" {
    start_sigrecv r --block 3s --signals USR1,RTMIN+1,TERM
    for _ in 1 2 3 4 5; do kill -USR1 "$RPID"; done
    run "$BIN/sigsend" RTMIN+1 "$RPID" --count 5 --value 1
    assert_success
    wait_for_line "$(bg_out r)" '^sigrecv: pending after 3s: SIGUSR1 SIGRTMIN\+1;' 15
    wait_for_line "$(bg_out r)" 'value 5$'
    stop_and_check r
    assert_line "  SIGUSR1 (10): 1"
    assert_line "  SIGRTMIN+1 (35): 5"
    run grep -o 'via sigqueue value [0-9]*' "$(bg_out r)"
    assert_output "$(printf 'via sigqueue value %d\n' 1 2 3 4 5)"
}

@test "--watchers 3: every watcher receives every delivery" {
    start_sigrecv r --watchers 3
    kill -USR1 "$RPID"
    kill -HUP "$RPID"
    for w in 1 2 3; do
        wait_for_line "$(bg_out r)" "^watcher $w got SIGUSR1 \\(10\\) from pid $$ "
        wait_for_line "$(bg_out r)" "^watcher $w got SIGHUP \\(1\\) from pid $$ "
    done
    stop_and_check r
    for w in 1 2 3; do
        assert_line "watcher $w got SIGTERM (15) from pid $$ uid $(id -u) via kill"
        assert_line "watcher $w: channel closed after 3 deliveries"
    done
}

@test "--quiet prints no line per delivery, only the summary, with a rate" {
    start_sigrecv r --quiet --signals RTMIN,TERM --stop-after 50
    run "$BIN/sigsend" RTMIN "$RPID" --count 50
    assert_success
    wait_for_line "$(bg_out r)" '^  SIGRTMIN \(34\): 50$'
    run cat "$(bg_out r)"
    refute_line --partial "via sigqueue"
    # Timed first to last; if all 50 were queued before the first read, one read took them.
    assert_line --regexp '^sigrecv: received 50 signals in ([0-9.]+s first to last \([0-9]+/s\)|one read)$'
    kill -TERM "$RPID"
    wait_for_exit "$RPID"
    assert_equal "$BG_STATUS" 143
}

@test "--help explains; --version prints the project version" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "signalfd"
    assert_output --partial "--stop-after"
    run "$TOOL" --version
    assert_output --regexp '^sigrecv \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "-x narrates sigprocmask, signalfd and each read" {
    bg_start r "$TOOL" -x --signals USR1,TERM
    RPID=$BG_PID
    wait_for_line "$(bg_out r)" '^sigrecv: pid'
    kill -USR1 "$RPID"
    wait_for_line "$(bg_err r)" "^\\[$RPID\\] read\\(signalfd\\) = 1 deliveries"
    run cat "$(bg_err r)"
    assert_line "[$RPID] sigprocmask(SIG_BLOCK, {SIGUSR1 SIGTERM}) = 0"
    assert_line --regexp "^\\[$RPID\\] signalfd\\(-1, \\{2 signals\\}, SFD_CLOEXEC\\) = [0-9]+$"
}

@test "SIGPIPE not taken keeps its default action: kill -PIPE ends it (141); taken, it is received" {
    start_sigrecv r
    kill -PIPE "$RPID"
    wait_for_exit "$RPID"
    assert_equal "$BG_STATUS" 141
    start_sigrecv r2 --signals PIPE,TERM
    kill -PIPE "$RPID"
    wait_for_line "$(bg_out r2)" "^SIGPIPE \\(13\\) from pid $$ uid $(id -u) via kill$"
    stop_and_check r2
}

@test "a reader that goes away: the next line's write gets SIGPIPE's default action (141)" {
    local status=$BATS_TEST_TMPDIR/status
    bg_start p bash -c '"$1" | head -n 2; echo "${PIPESTATUS[0]}" >"$2"' _ "$TOOL" "$status"
    wait_for_line "$(bg_out p)" '^sigrecv: SIGKILL and SIGSTOP'
    RPID=$(sed -n '1s/^sigrecv: pid \([0-9]*\) .*/\1/p' "$(bg_out p)")
    # Until head has exited, a line still fits in the pipe: signal again until sigrecv is gone.
    for _ in $(seq 200); do
        [[ -s $status ]] && break
        kill -USR1 "$RPID" 2>/dev/null || true
        sleep 0.05
    done
    wait_for_exit "$BG_PID"
    assert_equal "$(cat "$status")" 141
}

@test "stdout full or closed: exit 1 and one line (--all, --watchers, --help, --version too)" {
    assert_stdout_failures
    assert_stdout_failures --all --watchers 2
    assert_stdout_failures --help
    assert_stdout_failures --version
}
