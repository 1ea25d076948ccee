#!/usr/bin/env bats
# sigsend: to a bash process with a trap, to sigrecv, by name; safety rules; errors; a full queue.
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
load ../helpers/ipc
bats_require_minimum_version 1.5.0

# A bash peer that says which signal it trapped, then exits 0.
start_trap_peer() {
    bg_start peer bash -c 'trap "echo got TERM; exit 0" TERM; trap "echo got USR1" USR1
        echo ready; while :; do sleep 0.1; done'
    PEER=$BG_PID
    wait_for_line "$(bg_out peer)" '^ready$'
}

# start_sigrecv NAME [ARGS...]: sigrecv in the background, ready to receive; sets $RPID.
start_sigrecv() {
    local name=$1
    shift
    bg_start "$name" "$BIN/sigrecv" "$@"
    RPID=$BG_PID
    wait_for_line "$(bg_out "$name")" '^sigrecv: pid [0-9]+ waiting for '
}

# A pid that cannot exist: above the kernel's pid_max.
no_such_pid() { echo $(($(cat /proc/sys/kernel/pid_max) + 1)); }

@test "sigsend TERM PID: a bash trap runs, and the send is reported" {
    start_trap_peer
    run "$TOOL" USR1 "$PEER"
    assert_success
    assert_output "sent SIGUSR1 to $PEER (bash)"
    wait_for_line "$(bg_out peer)" '^got USR1$'
    run "$TOOL" term "$PEER"
    assert_success
    assert_output "sent SIGTERM to $PEER (bash)"
    wait_for_exit "$PEER"
    assert_equal "$BG_STATUS" 0
    run cat "$(bg_out peer)"
    assert_line "got TERM"
}

@test "sigrecv sees sigsend as the sender: kill, then sigqueue with --value" {
    start_sigrecv r --signals USR1,TERM
    run "$TOOL" SIGUSR1 "$RPID"
    assert_output "sent SIGUSR1 to $RPID (sigrecv)"
    wait_for_line "$(bg_out r)" "^SIGUSR1 \\(10\\) from pid [0-9]+ uid $(id -u) via kill$"
    run "$TOOL" 10 "$RPID" --value 99
    assert_output "sent SIGUSR1 to $RPID (sigrecv) with sigqueue value 99"
    wait_for_line "$(bg_out r)" '^SIGUSR1 \(10\) from pid [0-9]+ uid [0-9]+ via sigqueue value 99$'
}

@test "a real-time signal goes by sigqueue; --count N carries values V..V+N-1 in order" {
    start_sigrecv r --signals RTMIN+3,TERM
    run "$TOOL" RTMIN+3 "$RPID" --count 4 --value 10
    assert_success
    assert_output "sent SIGRTMIN+3 to $RPID (sigrecv) 4 times with sigqueue values 10..13"
    wait_for_line "$(bg_out r)" 'value 13$'
    run grep -o 'via sigqueue value [0-9]*' "$(bg_out r)"
    assert_output "$(printf 'via sigqueue value %d\n' 10 11 12 13)"
}

@test "--count N ends at the largest int, never past it (values V..V+N-1 must fit sival_int)" {
    start_sigrecv r --signals RTMIN+3,TERM
    run "$TOOL" RTMIN+3 "$RPID" --count 2 --value 2147483647
    assert_usage_error "--value 2147483647 --count 2 would go past the largest int (2147483647)"
    run "$TOOL" RTMIN+3 "$RPID" --count 2 --value 2147483646
    assert_success
    assert_output "sent SIGRTMIN+3 to $RPID (sigrecv) 2 times with sigqueue values 2147483646..2147483647"
    wait_for_line "$(bg_out r)" 'value 2147483647$'
    run grep -o 'via sigqueue value [0-9-]*' "$(bg_out r)"
    assert_output "$(printf 'via sigqueue value %d\n' 2147483646 2147483647)"
}

@test "several targets: goes on past a missing one, exits 1" {
    start_trap_peer
    local gone
    gone=$(no_such_pid)
    run --separate-stderr "$TOOL" USR1 "$gone" "$PEER"
    assert_failure 1
    assert_output "sent SIGUSR1 to $PEER (bash)"
    [[ $stderr == "sigsend: kill($gone, SIGUSR1): No such process (ESRCH): there is no process $gone (it may have exited)" ]]
    wait_for_line "$(bg_out peer)" '^got USR1$'
}

@test "EPERM has its own message (sent as user nobody to a process of ours)" {
    command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
    [[ $(id -u) == 0 ]] || skip "needs root to become nobody; as a user, try a root process"
    start_trap_peer
    run --separate-stderr setpriv --reuid=nobody --regid=nogroup --clear-groups "$TOOL" TERM "$PEER"
    assert_failure 1
    [[ $stderr == "sigsend: kill($PEER, SIGTERM): Operation not permitted (EPERM): $PEER (bash) exists but belongs to uid 0; only its owner or root may signal it" ]]
    run cat "$(bg_out peer)"
    refute_line "got TERM"
}

@test "-0: exists / no such process / exists but not permitted" {
    start_trap_peer
    run "$TOOL" -0 "$PEER"
    assert_success
    assert_output "$PEER (bash) exists and may be signalled"
    run "$TOOL" 0 "$PEER"
    assert_success
    local gone
    gone=$(no_such_pid)
    run "$TOOL" -0 "$gone"
    assert_failure 1
    assert_output --partial "kill($gone, 0): No such process (ESRCH)"
    if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
        run setpriv --reuid=nobody --regid=nogroup --clear-groups "$TOOL" -0 "$PEER"
        assert_failure 1
        assert_output --partial "kill($PEER, 0): Operation not permitted (EPERM): $PEER (bash) exists but belongs to uid 0"
    fi
    run cat "$(bg_out peer)"
    refute_output --partial "got"
}

@test "--name matches the process name exactly, never a mere mention, nor itself or its parent" {
    # A name of our own (comm comes from the file name), so no other test's sigrecv is touched.
    local name="sr$$x$RANDOM"
    ln -s "$(realpath "$BIN/sigrecv")" "$BATS_TEST_TMPDIR/$name"
    bg_start r "$BATS_TEST_TMPDIR/$name" --signals USR1,TERM
    RPID=$BG_PID
    wait_for_line "$(bg_out r)" '^sigrecv: pid'
    # A decoy whose command line mentions the name: `ps aux | grep NAME` would find it.
    bg_start decoy bash -c 'echo ready; while :; do sleep 0.1; done' "$name"
    wait_for_line "$(bg_out decoy)" '^ready$'
    # The parent shell's command line holds the name too (and "; true" keeps bash from exec'ing).
    run bash -c '"$1" USR1 --name "$2"; true' _ "$TOOL" "$name"
    assert_output "sent SIGUSR1 to $RPID ($name)"
    wait_for_line "$(bg_out r)" '^SIGUSR1 \(10\) from pid [0-9]+ uid [0-9]+ via kill$'
    # --full matches anywhere in the command line: now the decoy too, still not the parent.
    run bash -c '"$1" USR1 --full --name "$2"; true' _ "$TOOL" "$name"
    assert_line "sent SIGUSR1 to $RPID ($name)"
    assert_line "sent SIGUSR1 to $BG_PID (bash)"
    assert_equal "${#lines[@]}" 2
}

@test "--name with no match: exit 1, saying so" {
    run "$TOOL" TERM --name "no-such-name-$$"
    assert_failure 1
    assert_output "sigsend: no process matches 'no-such-name-$$' (never sigsend itself nor its parent)"
}

@test "safety: pid 0 and -PGID need --group, -1 is refused, pid 1 needs --force" {
    run "$TOOL" TERM 0
    assert_usage_error "pid 0 is a process group (sigsend's own"
    run "$TOOL" TERM -- -4242
    assert_usage_error "pid -4242 is a process group (the group whose leader is 4242); add --group"
    run "$TOOL" TERM --group -- -1
    assert_usage_error "pid -1 means every process you may signal"
    run "$TOOL" TERM 1
    assert_usage_error "pid 1 is init"
    # With --force, only the harmless check: signal 0 to init.
    run "$TOOL" -0 --force 1
    assert_success
    assert_output --regexp '^1 \(.*\) exists and may be signalled$'
    run "$TOOL" TERM --group --value 1 -- -4242
    assert_usage_error "--value needs sigqueue(3), which sends to one process"
}

@test "pid -2147483648 (whose negation overflows an int) is reported, not a crash" {
    run "$TOOL" TERM -- -2147483648
    assert_usage_error "pid -2147483648 is a process group (the group whose leader is 2147483648); add --group"
    # kill(2) refuses INT_MIN with ESRCH rather than negate it.
    run "$TOOL" TERM --group -- -2147483648
    assert_failure 1
    assert_output "sigsend: kill(-2147483648, SIGTERM): No such process (ESRCH): there is no process group 2147483648"
}

@test "--group signals a whole process group" {
    bg_start grp setsid bash -c 'trap "echo got TERM; exit 0" TERM; echo ready; while :; do sleep 0.1; done'
    wait_for_line "$(bg_out grp)" '^ready$'
    local pgid
    pgid=$(ps -o pgid= -p "$BG_PID" | tr -d ' ')
    assert_equal "$pgid" "$BG_PID"
    run "$TOOL" TERM --group -- "-$pgid"
    assert_success
    assert_output "sent SIGTERM to process group $pgid"
    wait_for_exit "$BG_PID"
    run cat "$(bg_out grp)"
    assert_line "got TERM"
}

@test "usage errors: bad signal name, no target, bad pid, -0 with --count" {
    run "$TOOL" TREM 1234
    assert_usage_error "'TREM' is not a signal name or number"
    run "$TOOL" TERM
    assert_usage_error "no PID and no --name"
    run "$TOOL" TERM 12ab
    assert_usage_error "'12ab' is not a pid"
    run "$TOOL" RTMIN+2147483647 1234 # RTMIN + that overflowed an int
    assert_usage_error "'RTMIN+2147483647' is not a signal name or number"
    run "$TOOL" -0 1234 --count 2
    assert_usage_error "-0 (signal 0) sends nothing"
    run "$TOOL" USR1 1234 --count 0
    assert_usage_error "--count"
}

@test "a full real-time queue (ulimit -i 20, receiver stopped): EAGAIN, wait, retry, none lost" {
    # RLIMIT_SIGPENDING is the receiver's: lower it there. SIGSTOP keeps it from draining.
    bg_start r bash -c 'ulimit -i 20 && exec "$1" --signals RTMIN+1,TERM' _ "$BIN/sigrecv"
    RPID=$BG_PID
    wait_for_line "$(bg_out r)" '^sigrecv: pid'
    kill -STOP "$RPID"
    bg_start s "$TOOL" RTMIN+1 "$RPID" --count 100 --value 1
    local spid=$BG_PID
    wait_for_line "$(bg_err s)" "signal queue is full \\(EAGAIN: RLIMIT_SIGPENDING"
    kill -CONT "$RPID"
    wait_for_exit "$spid" 30
    assert_equal "$BG_STATUS" 0
    run cat "$(bg_out s)"
    assert_output "sent SIGRTMIN+1 to $RPID (sigrecv) 100 times with sigqueue values 1..100"
    run cat "$(bg_err s)"
    assert_line --regexp '^sigsend: the queue was full [0-9]+ times; waited .* in all and retried: none lost$'
    wait_for_line "$(bg_out r)" 'value 100$'
    run grep -o 'via sigqueue value [0-9]*' "$(bg_out r)"
    assert_output "$(printf 'via sigqueue value %d\n' $(seq 1 100))"
}

@test "--help says how --name differs from ps aux | grep; --version" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "ps aux | grep NAME | grep -v grep"
    assert_output --partial "pidfd"
    run "$TOOL" --version
    assert_output --regexp '^sigsend \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "-x narrates each call" {
    start_trap_peer
    run "$TOOL" -x USR1 "$PEER"
    assert_line --regexp "^\\[[0-9]+\\] kill\\($PEER, SIGUSR1\\) = 0$"
}

@test "stdout full or closed: exit 1 and one line (a send, -0, --help, --version)" {
    start_trap_peer
    assert_stdout_failures USR1 "$PEER"
    assert_stdout_failures -0 "$PEER"
    assert_stdout_failures --help
    assert_stdout_failures --version
    # The signals were sent before the report failed: the report is what was lost.
    wait_for_line "$(bg_out peer)" '^got USR1$'
}
