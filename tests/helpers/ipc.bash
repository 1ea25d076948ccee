# Shared by every tests/<chapter>/<tool>.bats:   load ../helpers/ipc
#
# CTest runs each .bats file with TOOL=<path of the tool under test> and BIN=<folder of all
# tools>. To run one by hand:  TOOL=build/bin/procinfo bats tests/procinfo/procinfo.bats
#
#   bg_start NAME CMD...      start CMD in the background; its stdout goes to $(bg_out NAME),
#                             its stderr to $(bg_err NAME); $BG_PID is its pid
#   wait_for_line FILE REGEX [SECONDS]   wait (bounded, default 10 s) until FILE has a line
#                             matching the extended REGEX; fails showing FILE on timeout
#   wait_for_exit PID [SECONDS]  wait until a background process ends; sets $BG_STATUS
#   bg_stop_all               TERM, then KILL after 5 s, every process bg_start started and
#                             that is still that process (pid + start time: never a reused pid);
#                             the default teardown() calls it, so nothing outlives a test
#   bg_alive                  true while the last process bg_start started still runs

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

: "${TOOL:?TOOL must be the path of the tool under test (CTest sets it)}"
: "${BIN:=$(dirname "$TOOL")}"
export TOOL BIN

# Pids of the live processes this test started whose command line holds WORD: what a test may
# not leave behind. Each process the test starts carries IPC_TEST_MARK in its environment (a
# setup() that needs this exports it, e.g. as $BATS_TEST_TMPDIR), so another test's processes,
# running at the same time under ctest -j, are never taken for ours (pgrep -f would).
test_processes_with() {
    local env pid
    for env in $(grep -l -s -a -z -x "IPC_TEST_MARK=${IPC_TEST_MARK:?export it in setup}" /proc/[0-9]*/environ); do
        pid=${env#/proc/}
        pid=${pid%/environ}
        [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *"$1"* ]] && echo "$pid"
    done
    return 0
}

bg_out() { printf '%s/%s.out\n' "$BATS_TEST_TMPDIR" "$1"; }
bg_err() { printf '%s/%s.err\n' "$BATS_TEST_TMPDIR" "$1"; }

# The start time of process PID (field 22 of /proc/PID/stat, in clock ticks since boot). A pid
# and its start time name one process for good: once it is reaped, the kernel may give the pid
# to another process (another test's, running in parallel), which must never be signalled.
start_time() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -r -a fields <<<"${stat##*) }" # after the command name, which may hold spaces
    echo "${fields[19]}"
}

bg_start() {
    local name=$1
    shift
    # fd 3 is bats' own: a background process that keeps it open makes bats wait forever.
    "$@" >"$(bg_out "$name")" 2>"$(bg_err "$name")" 3>&- &
    BG_PID=$!
    echo "$BG_PID $(start_time "$BG_PID")" >>"$BATS_TEST_TMPDIR/bg.pids"
}

wait_for_line() {
    local file=$1 regex=$2 seconds=${3:-10}
    local deadline=$((SECONDS + seconds))
    until grep -E -q -- "$regex" "$file" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "timed out after ${seconds}s waiting for /$regex/ in $file; it holds:" >&2
            cat "$file" >&2 2>/dev/null
            return 1
        fi
        sleep 0.02
    done
}

# shellcheck disable=SC2034  # BG_STATUS is set for the test that called us
wait_for_exit() {
    local pid=$1 seconds=${2:-10}
    local deadline=$((SECONDS + seconds))
    while kill -0 "$pid" 2>/dev/null; do
        # A zombie child of this shell still answers kill -0: ask wait once it is a zombie.
        if [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]]; then break; fi
        if ((SECONDS >= deadline)); then
            echo "timed out after ${seconds}s waiting for pid $pid to exit" >&2
            return 1
        fi
        sleep 0.02
    done
    BG_STATUS=0
    wait "$pid" 2>/dev/null || BG_STATUS=$?
}

bg_stop_all() {
    local pid started live=()
    [[ -f "$BATS_TEST_TMPDIR/bg.pids" ]] || return 0
    while read -r pid started; do
        # Only the very process we started: a reaped one's pid may belong to someone else now.
        [[ $(start_time "$pid") == "$started" ]] && live+=("$pid")
    done <"$BATS_TEST_TMPDIR/bg.pids"
    for pid in "${live[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${live[@]}"; do
        if ! wait_for_exit "$pid" 5 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$BATS_TEST_TMPDIR/bg.pids"
}

# True while the last process bg_start started is still that process (not reaped, pid not reused).
bg_alive() {
    local pid started
    read -r pid started < <(tail -n 1 "$BATS_TEST_TMPDIR/bg.pids" 2>/dev/null) || return 1
    [[ $(start_time "$pid") == "$started" ]]
}

teardown() { bg_stop_all; }

# The usage-error contract of CONVENTIONS.md: exit 2, the message, then the hint.
assert_usage_error() {
    assert_failure 2
    assert_line --partial "$1"
    assert_line "Run with --help for more."
}

# The output contract of CONVENTIONS.md: with stdout full (/dev/full), then with stdout closed
# (>&-), `$TOOL ARGS...` exits 1 with exactly one line on stderr: "tool: write(stdout): ...".
assert_stdout_failures() {
    local name=${TOOL##*/}
    run bash -c '"$@" >/dev/full' _ "$TOOL" "$@"
    assert_failure 1
    assert_output "$name: write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$@" >&-' _ "$TOOL" "$@"
    assert_failure 1
    assert_output "$name: write(stdout): Bad file descriptor (EBADF)"
}
