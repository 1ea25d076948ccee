#!/usr/bin/env bats
# procinfo: the process views checked against ps(1), the bad-input contract, and the demos
# (states, orphan, fork) checked against /proc after they have run.
load ../helpers/ipc

# Starts `sleep 60` (or the program given) in the background and waits, bounded, until it has
# exec'd and sleeps: until then /proc shows the forked bash, not the program. Sets $PID.
start_sleeper() {
    local program=${1:-sleep} name
    bg_start sleeper "$program" 60
    PID=$BG_PID
    name=$(basename "$program")
    local deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        [[ $(ps -o stat=,comm= -p "$PID") == S*" ${name:0:15}" ]] && return 0
        sleep 0.02
    done
    echo "sleeper $PID did not start sleeping: $(ps -o stat=,comm= -p "$PID")" >&2
    return 1
}

# Waits (bounded) until ps(1) shows $PID in a state starting with $1: a signal is delivered
# asynchronously, so right after kill -STOP the process may still be on its way to T.
wait_for_state() {
    local deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        [[ $(ps -o stat= -p "$PID") == "$1"* ]] && return 0
        sleep 0.02
    done
    echo "$PID did not reach state $1: $(ps -o stat= -p "$PID")" >&2
    return 1
}

# Reads what ps(1) says of $PID into ps_pid ps_ppid ps_pgid ps_sid ps_uid ps_euid ps_state.
read_ps() {
    read -r ps_pid ps_ppid ps_pgid ps_sid ps_uid ps_euid ps_stat \
        < <(ps -o pid=,ppid=,pgid=,sid=,ruid=,euid=,stat= -p "$PID")
    ps_state=${ps_stat:0:1}
}

# The output of the last `run` must show every field as ps(1) shows it.
assert_matches_ps() {
    read_ps
    assert_line "pid      $ps_pid"
    assert_line --regexp "^ppid     $ps_ppid \\("
    assert_line "pgrp     $ps_pgid"
    assert_line "session  $ps_sid"
    assert_line "uid      $ps_uid (euid $ps_euid)"
    assert_line --regexp "^state    $ps_state \\("
}

@test "prints its own pid and its parent's" {
    run "$TOOL"
    assert_success
    assert_line --regexp '^pid      [0-9]+$'
    assert_line --regexp '^ppid     [0-9]+ \(.*\)$'
    assert_line --regexp '^session  [0-9]+$'
    assert_line "state    R (running or runnable)"
    assert_line "command  procinfo"
}

@test "--version prints the project version" {
    run "$TOOL" --version
    assert_success
    assert_output --regexp '^procinfo \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "an unknown option is a usage error" {
    run "$TOOL" --bogus
    assert_usage_error "--bogus"
}

@test "background helper: start, wait for a line, stop" {
    bg_start cat bash -c 'echo ready; exec sleep 30'
    wait_for_line "$(bg_out cat)" '^ready$' 5
    kill -TERM "$BG_PID"
    wait_for_exit "$BG_PID" 5
    assert_equal "$BG_STATUS" 143
}

@test "procinfo PID shows what ps shows for a sleeping process" {
    start_sleeper
    run "$TOOL" "$PID"
    assert_success
    assert_matches_ps
    assert_line "state    S (sleeping, interruptible)"
    assert_line "command  sleep"
    assert_line --regexp "^ppid     $BASHPID \\("
}

@test "a process stopped with kill -STOP shows T, then S after kill -CONT" {
    start_sleeper
    kill -STOP "$PID"
    wait_for_state T
    run "$TOOL" "$PID"
    assert_success
    assert_matches_ps
    assert_line "state    T (stopped by a signal)"
    kill -CONT "$PID"
    wait_for_state S
    run "$TOOL" "$PID"
    assert_line "state    S (sleeping, interruptible)"
}

@test "a command name with spaces and ')' is read whole" {
    cp "$(command -v sleep)" "$BATS_TEST_TMPDIR/a) b (c"
    start_sleeper "$BATS_TEST_TMPDIR/a) b (c"
    run "$TOOL" "$PID"
    assert_success
    assert_matches_ps
    assert_line "command  a) b (c"
    run "$TOOL" --json "$PID"
    assert_output --partial '"comm": "a) b (c"'
}

@test "--json prints one object with the same fields" {
    start_sleeper
    read_ps
    run "$TOOL" --json "$PID"
    assert_success
    assert_output "{\"pid\": $PID, \"ppid\": $ps_ppid, \"pgrp\": $ps_pgid, \"session\": $ps_sid, \"uid\": $ps_uid, \"euid\": $ps_euid, \"state\": \"S\", \"state_meaning\": \"sleeping, interruptible\", \"comm\": \"sleep\"}"
}

@test "--ancestors walks from the process up to the one whose parent is 0" {
    start_sleeper
    run "$TOOL" --ancestors "$PID"
    assert_success
    assert_line --index 0 --regexp '^ +PID +PPID +S +COMMAND$'
    assert_line --index 1 --regexp "^ +$PID +$BASHPID  S  sleep$"
    assert_line --index 2 --regexp "^ +$BASHPID +[0-9]+  [RS]  "
    assert_line --index $((${#lines[@]} - 1)) --regexp '^ +[0-9]+ +0  [A-Z]  '
    # Each row's PPID is the PID of the row below it.
    for ((i = 1; i < ${#lines[@]} - 1; i++)); do
        read -r _ ppid _ <<<"${lines[i]}"
        read -r pid _ <<<"${lines[i + 1]}"
        assert_equal "$ppid" "$pid"
    done
}

@test "--ancestors without a PID starts at procinfo itself; --json gives an array" {
    run "$TOOL" --ancestors
    assert_success
    assert_line --index 1 --regexp '^ +[0-9]+ +[0-9]+  R  procinfo$'
    run "$TOOL" --ancestors --json
    assert_success
    assert_output --regexp '^\[\{"pid": [0-9]+, .*"comm": "procinfo"\}, \{.*"ppid": 0, .*\}\]$'
}

@test "a pid that does not exist: no such process, exit 1" {
    local pid=99999
    while [[ -e /proc/$pid ]]; do pid=$((pid + 1)); done
    run "$TOOL" "$pid"
    assert_failure 1
    assert_output "procinfo: no such process: $pid"
    run "$TOOL" --ancestors "$pid"
    assert_failure 1
    assert_output "procinfo: no such process: $pid"
}

@test "a pid that is not a positive number is a usage error" {
    for bad in abc 12x -5 0 '' 99999999999 ' 7'; do
        run "$TOOL" "$bad"
        assert_usage_error "PID must be a positive number, not '$bad'"
    done
}

@test "a subcommand takes no PID, --ancestors or --json" {
    run "$TOOL" states 1
    assert_failure 2
    run "$TOOL" fork --json
    assert_usage_error "not a subcommand"
}

@test "a process that exits while being read is a clear error" {
    # strace stops procinfo (an injected SIGSTOP) at its second open under /proc/PID, after it
    # has opened the directory; we end the process meanwhile, and let procinfo go on.
    start_sleeper
    local target=$PID tool='' log=$BATS_TEST_TMPDIR/strace.log
    # LeakSanitizer cannot run under ptrace; the other tests check leaks.
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" bg_start traced strace -qq -o "$log" -P "/proc/$target" \
        -e trace=openat -e inject=openat:signal=STOP:when=2 "$TOOL" "$target"
    local tracer=$BG_PID
    # Stopped for good once strace logs the stop. (A ps state of "t" is not enough: a traced
    # process shows it at every openat strace looks at, and runs on a moment later.) Bounded by
    # time, not by a count of tries: under ASan and a loaded machine, strace and the tool take
    # seconds to start.
    local deadline=$((SECONDS + 30))
    until grep -qx -- '--- stopped by SIGSTOP ---' "$log" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "procinfo was not stopped at its second open in 30 s"
        sleep 0.02
    done
    tool=$(pgrep -P "$tracer")
    kill -KILL "$target"
    wait_for_exit "$target" 5
    kill -CONT "$tool"
    wait_for_exit "$tracer" 10
    assert_equal "$BG_STATUS" 1
    run cat "$(bg_err traced)"
    assert_output "procinfo: process $target exited while being read"
}

@test "-x narrates the opens of /proc files" {
    run "$TOOL" -x 1
    assert_success
    assert_line --regexp '^\[[0-9]+\] open\("/proc/1", O_DIRECTORY\) = [0-9]+$'
    assert_line --regexp '^\[[0-9]+\] openat\([0-9]+, "stat"\) \+ read\(\) = [0-9]+ bytes$'
    assert_line --regexp '^\[[0-9]+\] openat\([0-9]+, "status"\) \+ read\(\) = [0-9]+ bytes$'
}

@test "states: R, S, T, S, D, Z seen in /proc, X explained, every child reaped" {
    run "$TOOL" states
    assert_success
    assert_line --index 1 --regexp '^R  pid [0-9]+ +running or runnable +a busy loop'
    assert_line --index 2 --regexp '^S  pid [0-9]+ +sleeping, interruptible +blocked in read\(\)'
    assert_line --index 3 --regexp '^T  pid [0-9]+ +stopped by a signal +after kill\(SIGSTOP\)'
    assert_line --index 4 --regexp '^S  pid [0-9]+ +sleeping, interruptible +after kill\(SIGCONT\)'
    assert_line --index 5 --regexp '^D  pid [0-9]+ +disk sleep, uninterruptible +a vfork\(\) parent'
    assert_line --index 6 --regexp '^Z  pid [0-9]+ +zombie: exited, not yet reaped +exited with status 7'
    assert_line --index 7 --regexp '^-  pid [0-9]+ +reaped +waitpid\(\) took its status 7; /proc/[0-9]+ is gone$'
    assert_line --index 8 --regexp '^X  pid [0-9]+ +dead: being removed +not seen: /proc/[0-9]+ is already gone'
    assert_line "every child reaped: waitpid(-1, WNOHANG) = ECHILD, no child and no zombie left"
    # None of the children is left, as a zombie or otherwise.
    for pid in $(grep -oE '^[A-Z-]  pid [0-9]+' <<<"$output" | awk '{print $3}'); do
        [[ ! -e /proc/$pid ]] || [[ $(ps -o comm= -p "$pid") != procinfo ]]
    done
}

@test "states -x narrates fork, vfork, kill, waitpid and the pipes" {
    run "$TOOL" states -x
    assert_success
    for call in 'pipe\(\) = \[' 'fork\(\) = ' 'vfork\(\) = ' 'kill\([0-9]+, SIGSTOP\)' \
        'kill\([0-9]+, SIGCONT\)' 'waitpid\([0-9]+, WUNTRACED\)' 'waitid\([0-9]+, WEXITED\|WNOWAIT\)' \
        'sigaction\(SIGCHLD, SIG_IGN\)' 'read\(/proc/[0-9]+/stat\): state D'; do
        assert_line --regexp "^\\[[0-9]+\\] $call"
    done
}

@test "orphan: the grandchild's ppid changes to its adopter when its parent exits" {
    run "$TOOL" orphan
    assert_success
    local before after
    before=$(sed -nE 's/^grandchild [0-9]+: my ppid is ([0-9]+) \(my parent is alive\)$/\1/p' <<<"$output")
    after=$(sed -nE 's/^grandchild [0-9]+: my ppid is ([0-9]+) \(my parent has exited\)$/\1/p' <<<"$output")
    assert_line --regexp "^parent $before: exiting without waiting for my child [0-9]+$"
    [[ $after != "$before" ]]
    assert_line --regexp "^adopted by pid $after \\(.*\\): "
    if ((after == 1)); then
        assert_line --regexp '^adopted by pid 1 \(.*\): the init of this pid namespace$'
    fi
    assert_line --regexp "^pid $after (reaped it within [0-9]+ ms|has not reaped pid [0-9]+ in 5 s)"
}

@test "orphan --subreaper: the tool itself adopts and reaps the grandchild" {
    run "$TOOL" orphan --subreaper -x
    assert_success
    local tool
    tool=$(sed -nE 's/^tool ([0-9]+): a subreaper.*/\1/p' <<<"$output")
    assert_line "[$tool] prctl(PR_SET_CHILD_SUBREAPER, 1)"
    assert_line --regexp "^grandchild [0-9]+: my ppid is $tool \\(my parent has exited\\)$"
    assert_line "adopted by pid $tool (procinfo): this tool, the nearest subreaper"
    assert_line "tool $tool: reaped its adopted grandchild, status 0"
}

@test "fork: the child writes at the same address; the parent keeps its value" {
    run "$TOOL" fork
    assert_success
    local address
    address=$(sed -nE 's/^parent [0-9]+: value = 42 at (0x[0-9a-f]+).*/\1/p' <<<"$output" | head -1)
    [[ -n $address ]]
    assert_line --regexp "^child  [0-9]+: value = 42 at $address.* \\(the same address\\)$"
    assert_line --regexp "^child  [0-9]+: value = 99 at $address.* \\(after its write\\)$"
    assert_line --regexp "^parent [0-9]+: value = 42 at $address.*: the child's write went to its own copy$"
    # With CAP_SYS_ADMIN the frames show the copy: shared before the child's write, not after.
    if [[ ${lines[0]} == *"physical frame"* ]]; then
        local frame=${lines[0]##* }
        assert_line --index 1 --partial "physical frame $frame (the same address)"
        refute_line --index 2 --partial "physical frame $frame "
    else
        assert_line --partial "Physical frames are hidden"
    fi
}

@test "fork -x narrates mmap, the pagemap reads, fork, prctl and waitpid" {
    run "$TOOL" fork -x
    assert_success
    for call in 'mmap\(' 'pread\(/proc/self/pagemap, 8, offset 0x[0-9a-f]+\) = entry 0x' \
        'fork\(\) = [0-9]+' 'prctl\(PR_SET_PDEATHSIG, SIGKILL\)' 'waitpid\([0-9]+\) = [0-9]+, status 0x0'; do
        assert_line --regexp "^\\[[0-9]+\\] $call"
    done
}

@test "fork: a child that fails fails the demo (exit 1), not a success" {
    command -v strace >/dev/null || skip "strace is missing"
    # prctl(PR_SET_PDEATHSIG) is made by the child alone: strace makes it fail there (EPERM).
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" run timeout 60 strace -f -qq -o /dev/null \
        -e trace=prctl -e inject=prctl:error=EPERM "$TOOL" fork
    assert_failure 1
    assert_line 'procinfo: prctl(PR_SET_PDEATHSIG): Operation not permitted (EPERM)'
    assert_line --regexp '^procinfo: child [0-9]+ exited 1$'
    refute_line --partial "the child's write went to its own copy"
}

@test "stdout full or closed: exit 1 and one line, in every view, --help and --version too" {
    assert_stdout_failures
    assert_stdout_failures --json 1
    assert_stdout_failures --ancestors
    assert_stdout_failures states
    assert_stdout_failures orphan --subreaper
    assert_stdout_failures fork
    assert_stdout_failures --help
    assert_stdout_failures --version
}

@test "a reader that goes away (states | head -n 2): EPIPE, exit 1, one line" {
    run bash -c '"$1" states 2>"$2" | head -n 2; echo "status ${PIPESTATUS[0]}"' _ "$TOOL" "$BATS_TEST_TMPDIR/err"
    assert_line --index 1 --regexp '^R  pid [0-9]+ '
    assert_line 'status 1'
    run cat "$BATS_TEST_TMPDIR/err"
    assert_output 'procinfo: write(stdout): Broken pipe (EPIPE)'
}
