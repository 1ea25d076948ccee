#!/usr/bin/env bash
# tests/faults/inject.sh: each tool's main path with EINTR (or EAGAIN) injected into the blocking
# calls it makes, compared byte for byte with a run without injection.
#
# Usage: tests/faults/inject.sh [--bin DIR] [--list] [--keep] [--markdown] [PATTERN...]
#   --bin DIR    the tools to test (default: $BIN, else build/bin of this checkout)
#   --list       print the entries that would run, and stop
#   --keep       keep the work directory (outputs, strace logs) and say where it is
#   --markdown   also print the results as a Markdown table (for docs/bad-inputs.md)
#   --twice      no injection: run each scenario's baseline twice and compare, to check that a
#                new scenario (and its normaliser) gives the same output every time
#   PATTERN      run only the entries whose "scenario syscall error" matches this glob,
#                e.g. 'cmdout.*'  'echoserver.* accept4 *'  '* futex *'
# Exit status: 0 when every entry passed (or failed as the table expects), 1 otherwise.
#
# What one entry of tests/faults/faults.table does:
#   1. Baseline: the scenario (tests/faults/scenarios.bash) runs once under strace with no
#      injection (`strace -e trace=none`): its stdout, stderr, exit status and any file it
#      makes (a client's copy of the echo, a log) are kept. One baseline per scenario.
#   2. The same scenario runs again under
#        strace -qq [-f -b execve] -e trace=SYSCALL -e inject=SYSCALL:error=ERR:when=N+K
#      (the table's "when" column: +K, every K-th call from the first after start-up; @M, the
#      M-th call after start-up only; M+K, every K-th from the M-th). Those calls fail with ERR
#      without reaching the kernel, as an interrupted call does.
#   3. Both runs are normalised (normalise_<scenario> in scenarios.bash: pids, ports, times and
#      nothing else) and must be identical, byte for byte; and the strace log must show at
#      least one "(INJECTED)" call, or the entry tested nothing and fails.
#
# Start-up and the dynamic loader. ld.so reads each shared library with read(2) (and opens it
# with openat) before main, and gives up on EINTR ("error while loading shared libraries"):
# those calls must never be injected. strace counts calls per syscall and per tracee (thread or
# process), from the moment it first sees it. So, per tool and syscall, N is computed once by a
# calibration run: `strace -e trace=SYSCALL,set_robust_list TOOL --version` counts the calls of
# SYSCALL made before glibc's first set_robust_list(2), which glibc makes once every library is
# loaded and relocated, before any constructor or main runs; N is that count + 1 (1 for the
# calls ld.so never makes: write, poll, accept4, ...). Consequences, by design:
#   - the tool's own process is injected from its first call after start-up;
#   - a thread or forked child counts from its own birth: its first N-1 calls are not injected
#     (only read and openat have N > 1; a thread that reads less than N times is not covered);
#   - with -f, `-b execve` detaches from a child at its execve: the commands a tool runs (seq,
#     cat, a re-executed copy of itself) are never injected, and their loader is left alone;
#   - the table's "follow" column is "f" (-f -b execve: threads and forked children too) or "1"
#     (the first process only: e.g. procinfo states, whose children must not be ptrace-stopped).
# K >= 2 always: with K = 1 every retry would fail too, which no kernel does.
#
# futex: strace cannot tell FUTEX_WAIT from FUTEX_WAKE, and an EINTR injected into a wake loses
# the wake-up (glibc ignores its result), a hang no kernel can cause. So futex entries inject a
# signal instead (error column "SIGPIPE": `inject=futex:signal=SIGPIPE`): a real signal arrives
# on entering futex, its handler (ipc::start's no-op SIGPIPE handler) runs, and a wait returns
# EINTR or is restarted exactly as the kernel does it for a real signal. For those, N counts the
# calls made before ipc::start installs that handler (rt_sigaction(SIGPIPE) in the calibration
# run); a tool without the handler is killed by the first injected SIGPIPE.
#
# Bounded: every run is under timeout(1) (FAULTS_TIMEOUT, default 20 s), every background
# process is started in a session of its own and its whole process group is killed at the end
# of the entry, also when the entry fails. A run that times out is reported as a hang.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
table="$here/faults.table"
bin=${BIN:-$root/build/bin}
list_only=0 keep=0 markdown=0 twice=0
patterns=()
while (($# > 0)); do
    case $1 in
        --bin) bin=$2; shift 2 ;;
        --list) list_only=1; shift ;;
        --keep) keep=1; shift ;;
        --markdown) markdown=1; shift ;;
        --twice) twice=1; shift ;;
        -h | --help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "inject.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) patterns+=("$1"); shift ;;
    esac
done
bin=$(cd "$bin" 2>/dev/null && pwd) || { echo "inject.sh: no such directory: $bin" >&2; exit 2; }
FAULTS_TIMEOUT=${FAULTS_TIMEOUT:-20}
export BIN=$bin FAULTS_TIMEOUT
for cmd in strace timeout setsid socat curl; do
    command -v "$cmd" >/dev/null || { echo "inject.sh: $cmd is missing (scripts/deps.sh installs it)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/faults.XXXXXX")
# shellcheck disable=SC2329,SC2317  # invoked by the trap
cleanup() {
    stop_all
    if ((keep)); then echo "inject.sh: outputs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- What a scenario may call (see scenarios.bash) ----
# $D: the directory of this run; files put there are compared. $TRACE: the strace command line
# (an array) to put before the tool. $DATA: input files shared by every run.
DATA="$work/data"
mkdir -p "$DATA"
seq 1 1000 >"$DATA/seq1000"
seq 1 5000 >"$DATA/seq5000"
seq 1 20000 >"$DATA/seq20000"

# run_main TOOL ARGS...: the tool in the foreground under $TRACE, bounded; stdout, stderr and
# the exit status go to $D/stdout, $D/stderr, $D/status (124: it did not end in time).
run_main() {
    local tool=$1
    shift
    timeout -k 2 "$FAULTS_TIMEOUT" "${TRACE[@]}" "$BIN/$tool" "$@" >"$D/stdout" 2>"$D/stderr"
    echo $? >"$D/status"
}

# tool_child PID TOOL: the pid of TOOL among the descendants of PID (timeout, then strace,
# which also forks short-lived children of its own at start-up to probe ptrace); empty if none.
tool_child() {
    local pid comm depth=${3:-0}
    ((depth > 3)) && return 0
    for pid in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null)
        if [[ $comm == "${2:0:15}" ]]; then
            echo "$pid"
            return 0
        fi
        tool_child "$pid" "$2" $((depth + 1)) | grep . && return 0
    done
    return 0
}

# start_bg NAME TOOL ARGS...: the tool under $TRACE in the background, in a session of its own
# (so its whole group can be stopped); output in $D/NAME.out and $D/NAME.err. Sets BG_PID to
# the tool's own pid (strace's child), for signals.
start_bg() {
    local name=$1 tool=$2
    shift 2
    # timeout: a bound even if this script is killed before it can stop the group itself.
    setsid timeout -k 5 $((FAULTS_TIMEOUT * 6)) "${TRACE[@]}" "$BIN/$tool" "$@" \
        >"$D/$name.out" 2>"$D/$name.err" </dev/null &
    local spid=$!
    echo "$spid" >>"$work/groups"
    echo "$name $spid $tool" >>"$D/.bg"
    eval "BG_STRACE_$name=$spid BG_TOOL_$name=$tool"
    BG_PID=""
    local i
    for ((i = 0; i < 1000; i++)); do
        BG_PID=$(tool_child "$spid" "$tool")
        [[ -n $BG_PID ]] && return 0
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.01
    done
    echo "start_bg: $tool did not start" >&2
    return 1
}

# wait_line FILE REGEX [COUNT] [SECONDS]: until COUNT (1) lines of FILE match; 1 on timeout.
wait_line() {
    local file=$1 regex=$2 count=${3:-1} seconds=${4:-$FAULTS_TIMEOUT}
    local deadline=$((SECONDS + seconds)) have
    for (( ; ; )); do
        have=$(grep -E -c -- "$regex" "$file" 2>/dev/null) || true
        ((${have:-0} >= count)) && return 0
        if ((SECONDS >= deadline)); then
            echo "wait_line: timed out after ${seconds}s waiting for $count x /$regex/ in ${file##*/}" >>"$D/scenario.log"
            return 1
        fi
        sleep 0.02
    done
}

# stop_bg NAME [SIGNAL]: sends SIGNAL (TERM) to the tool started as NAME, waits (bounded) for it
# and its strace to end; its exit status goes to $D/NAME.status ("hang" if it did not end).
stop_bg() {
    local name=$1 sig=${2:-TERM} spid_var="BG_STRACE_$1" tool_var="BG_TOOL_$1"
    local spid=${!spid_var} tool_pid
    tool_pid=$(tool_child "$spid" "${!tool_var}")
    [[ -n $tool_pid ]] && kill -"$sig" "$tool_pid" 2>/dev/null
    wait_bg "$name"
}

# wait_bg NAME: waits (bounded) for the tool started as NAME to end by itself.
wait_bg() {
    local name=$1 spid_var="BG_STRACE_$1"
    local spid=${!spid_var} deadline=$((SECONDS + FAULTS_TIMEOUT)) status=0
    while kill -0 "$spid" 2>/dev/null && [[ $(ps -o stat= -p "$spid" 2>/dev/null) != Z* ]]; do
        if ((SECONDS >= deadline)); then
            echo hang >"$D/$name.status"
            kill -KILL -- "-$spid" 2>/dev/null
            wait "$spid" 2>/dev/null
            return 1
        fi
        sleep 0.02
    done
    wait "$spid" 2>/dev/null || status=$?
    echo "$status" >"$D/$name.status"
}

# Every process group a scenario started (setsid: the group of strace, the tool and its
# children), killed at the end of each run, whatever happened.
stop_all() {
    local g
    [[ -f $work/groups ]] || return 0
    while read -r g; do kill -KILL -- "-$g" 2>/dev/null; done <"$work/groups"
    while read -r g; do wait "$g" 2>/dev/null; done <"$work/groups"
    rm -f "$work/groups"
}

# shellcheck source=tests/faults/scenarios.bash
source "$here/scenarios.bash"

# ---- Calibration: the calls of SYSCALL that TOOL makes before main (see the header) ----
# calibrate TOOL SYSCALL [signal]: with "signal", the calls made before the tool installs its
# SIGPIPE handler (ipc::start), so that an injected SIGPIPE never meets the default action;
# without such a handler, every call of a `TOOL --version` run.
calibrate() {
    local tool=$1 syscall=$2 mode=${3:-loader} cache="$work/cal.$1.$2.${3:-loader}"
    if [[ ! -f $cache ]]; then
        strace -qq -o "$cache.log" -e trace="$syscall,set_robust_list,rt_sigaction" \
            -e signal=none "$BIN/$tool" --version >/dev/null 2>&1
        awk -v s="$syscall(" -v mode="$mode" '
            mode == "loader" && index($0, "set_robust_list(") == 1 { exit }
            mode == "signal" && index($0, "rt_sigaction(SIGPIPE, {sa_handler=0x") == 1 { exit }
            index($0, s) == 1 { n++ }
            END { print n + 1 }' "$cache.log" >"$cache"
    fi
    cat "$cache"
}

# ---- One run of a scenario ----
# run_scenario SCENARIO DIR FOLLOW [SYSCALL ERROR WHEN]: without SYSCALL, the baseline.
run_scenario() {
    local scenario=$1 dir=$2 follow=$3 syscall=${4:-} error=${5:-} when=${6:-}
    mkdir -p "$dir"
    TRACE=(strace -qq -o "$dir/strace.log")
    [[ $follow == f ]] && TRACE+=(-f -b execve)
    if [[ -z $syscall ]]; then
        TRACE+=(-e trace=none)
    elif [[ $error == SIG* ]]; then
        TRACE+=(-e "trace=$syscall" -e "inject=$syscall:signal=$error:when=$when")
    else
        TRACE+=(-e "trace=$syscall" -e "inject=$syscall:error=$error:when=$when")
    fi
    D=$dir
    (cd "$dir" && "scenario_${scenario//[.-]/_}") </dev/null >>"$dir/scenario.log" 2>&1
    # A background tool the scenario gave up on (a line that never came) has no status yet.
    local name spid
    while read -r name spid _; do
        [[ -f $dir/$name.status ]] && continue
        if kill -0 "$spid" 2>/dev/null; then
            echo "hang" >"$dir/$name.status"
        else
            echo "ended early" >"$dir/$name.status"
        fi
    done < <(cat "$dir/.bg" 2>/dev/null)
    stop_all
    local f norm="normalise_${scenario//[.-]/_}"
    declare -F "$norm" >/dev/null || norm=as_is
    mkdir -p "$dir/cmp"
    for f in "$dir"/*; do
        [[ -f $f ]] || continue
        case ${f##*/} in strace.log | scenario.log) continue ;; esac
        "$norm" "${f##*/}" <"$f" >"$dir/cmp/${f##*/}"
    done
}

# The normaliser of a scenario that has none: every byte counts.
as_is() { cat; }

# What went wrong, in a few words: the exit status first (abort, hang, killed), then output.
classify() {
    local base=$1 run=$2 f want got
    for f in "$run"/cmp/*status; do
        want=$(cat "$base/cmp/${f##*/}" 2>/dev/null) got=$(cat "$f")
        [[ $want == "$got" ]] && continue
        case $got in
            hang | 124 | 137) echo "hang (${f##*/}: no end within ${FAULTS_TIMEOUT}s)" ;;
            134) echo "abort (${f##*/} 134, want $want)" ;;
            13[0-9] | 14[0-9]) echo "killed by signal $((got - 128)) (${f##*/} $got, want $want)" ;;
            *) echo "exit status ${f##*/} $got, want $want" ;;
        esac
        return
    done
    echo "wrong output"
}

# ---- The table ----
entries=()
while read -r scenario syscall error when follow expect; do
    [[ -z $scenario || $scenario == \#* ]] && continue
    key="$scenario $syscall $error"
    if ((${#patterns[@]} > 0)); then
        match=0
        for p in "${patterns[@]}"; do
            # shellcheck disable=SC2053  # a glob, on purpose
            [[ $key == $p ]] && match=1
        done
        ((match)) || continue
    fi
    entries+=("$scenario|$syscall|$error|$when|$follow|$expect")
done <"$table"

if ((list_only)); then
    printf '%s\n' "${entries[@]}" | tr '|' '\t'
    exit 0
fi
if ((${#entries[@]} == 0)); then
    echo "inject.sh: no entry matches ${patterns[*]}" >&2
    exit 2
fi

if ((twice)); then
    bad=0
    for entry in "${entries[@]}"; do
        IFS='|' read -r scenario syscall error when follow expect <<<"$entry"
        [[ -d $work/$scenario.a.$follow ]] && continue
        run_scenario "$scenario" "$work/$scenario.a.$follow" "$follow"
        run_scenario "$scenario" "$work/$scenario.b.$follow" "$follow"
        if diff -r -u "$work/$scenario.a.$follow/cmp" "$work/$scenario.b.$follow/cmp" >"$work/$scenario.diff"; then
            echo "same  $scenario (follow=$follow): $(cat "$work/$scenario.a.$follow"/cmp/* | wc -c) bytes compared"
        else
            bad=$((bad + 1))
            echo "DIFF  $scenario (follow=$follow): two runs without injection differ"
            head -n 30 "$work/$scenario.diff" | cut -c1-200 | sed 's/^/    | /'
        fi
    done
    exit $((bad > 0))
fi

passed=0 failed=0 xfailed=0 xpassed=0
md_rows=()
start=$SECONDS
for entry in "${entries[@]}"; do
    IFS='|' read -r scenario syscall error when follow expect <<<"$entry"
    tool=${scenario%%.*}
    declare -F "scenario_${scenario//[.-]/_}" >/dev/null || {
        echo "FAIL  $scenario: no scenario_${scenario//[.-]/_} in scenarios.bash"
        failed=$((failed + 1))
        continue
    }
    base="$work/$scenario.base.$follow"
    [[ -d $base ]] || run_scenario "$scenario" "$base" "$follow"
    # A scenario that does not even run without a fault tests nothing.
    if grep -l -E '^(hang|ended early|124|137)$' "$base"/cmp/*status >/dev/null 2>&1; then
        echo "FAIL  $scenario: broken without any fault ($(grep -l -E '^(hang|ended early|124|137)$' "$base"/cmp/*status | xargs -n1 basename | tr '\n' ' ')); its log:"
        tail -n 5 "$base/scenario.log" | sed 's/^/    | /'
        failed=$((failed + 1))
        continue
    fi

    if [[ $error == SIG* ]]; then n=$(calibrate "$tool" "$syscall" signal); else n=$(calibrate "$tool" "$syscall"); fi
    case $when in
        +[0-9]*) spec="$n$when" ;;                                  # +2: N, N+2, N+4...
        @[0-9]*) spec=$((n + ${when#@} - 1)) ;;                     # @3: the 3rd call only
        [0-9]*+[0-9]*) spec="$((n + ${when%+*} - 1))+${when#*+}" ;; # 3+2: the 3rd, 5th...
        *) echo "inject.sh: bad when '$when' for $scenario $syscall" >&2; exit 2 ;;
    esac
    run="$work/$scenario.$syscall.$error"
    run_scenario "$scenario" "$run" "$follow" "$syscall" "$error" "$spec"

    if [[ $error == SIG* ]]; then
        injected=$(grep -c -- "--- $error {si_signo=$error, si_code=SI_KERNEL}" "$run/strace.log" 2>/dev/null)
    else
        injected=$(grep -c 'INJECTED' "$run/strace.log" 2>/dev/null)
    fi
    injected=${injected:-0}
    label=$(printf '%-24s %-16s %-7s when=%-6s' "$scenario" "$syscall" "$error" "$spec")
    what=""
    if ! diff -r -q "$base/cmp" "$run/cmp" >/dev/null 2>&1; then
        what=$(classify "$base" "$run")
    elif ((injected == 0)); then
        what="nothing injected: the scenario makes no $syscall call past start-up (call $n)"
    fi

    if [[ -z $what && $expect == ok ]]; then
        passed=$((passed + 1))
        echo "ok    $label ($injected injected)"
        md_rows+=("| $tool | \`${scenario#*.}\` | $syscall | $error | $injected | same output |")
        continue
    fi
    if [[ -z $what ]]; then
        xpassed=$((xpassed + 1))
        echo "XPASS $label ($injected injected): passes now; remove 'xfail' from faults.table"
        md_rows+=("| $tool | \`${scenario#*.}\` | $syscall | $error | $injected | same output (still marked xfail) |")
        continue
    fi
    if [[ $expect == xfail* ]]; then
        xfailed=$((xfailed + 1))
        echo "xfail $label ($injected injected): $what [expected: ${expect#xfail:}]"
        md_rows+=("| $tool | \`${scenario#*.}\` | $syscall | $error | $injected | **known failure**: $what |")
        continue
    fi
    failed=$((failed + 1))
    echo "FAIL  $label ($injected injected): $what"
    md_rows+=("| $tool | \`${scenario#*.}\` | $syscall | $error | $injected | **FAILS**: $what |")
    diff -r -u "$base/cmp" "$run/cmp" | head -n 30 | cut -c1-200 | sed "s/^/    | /"
    if [[ -s $run/scenario.log ]]; then
        echo "    scenario log:"
        tail -n 5 "$run/scenario.log" | sed 's/^/    | /'
    fi
    echo "    strace tail ($run/strace.log):"
    tail -n 8 "$run/strace.log" | cut -c1-160 | sed 's/^/    | /'
done

echo "inject.sh: $passed passed, $failed failed, $xfailed expected failures, $xpassed unexpectedly passed ($((SECONDS - start)) s)"
if ((markdown)); then
    echo
    echo "| tool | scenario | call | fault | injected | result |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${md_rows[@]}"
fi
((failed + xpassed == 0))
