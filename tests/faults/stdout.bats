#!/usr/bin/env bats
# Every tool in $BIN with its stdout full (>/dev/full) and closed (>&-): --help, --version and
# its main path each exit 1 with one line on stderr, "tool: write(stdout): strerror (ENOSPC)"
# (or EBADF), never an abort, never a silent 0, never a hang (issue 10, CONVENTIONS "Output").
# The tools are every executable in $BIN, so a new tool is checked as soon as it is built: give
# it a main path in main_path() below (the test says so until it has one).
#
# Run by hand:  BIN=build/bin bats tests/faults/stdout.bats

: "${BIN:?BIN must be the folder of the tools (CTest sets it)}"

# What each tool does when run as its docs show it, bounded, printing on stdout. Sets MAIN.
# Returns 1 for a tool it does not know.
main_path() {
    local tmp=$BATS_FILE_TMPDIR
    case $1 in
        procinfo) MAIN=(1) ;;
        cmdout) MAIN=(--chunk 100 -- seq 1 1000) ;;
        pipeline) MAIN=(-- seq 1 1000) ;;
        fifo) MAIN=(make "$(mktemp -u "$tmp/fifo.XXXXXX")") ;;
        pipecmp) MAIN=(close) ;;
        siglist) MAIN=() ;;
        sigrecv) MAIN=() ;;
        sigsend) MAIN=(-0 $$) ;;
        batchlog) MAIN=(--generate 0 --count 10) ;;
        fifodemo) MAIN=(--records 16) ;;
        graceful | echoserver | echoloop | echodgram) MAIN=(--listen 127.0.0.1:0) ;;
        echoclient) MAIN=(--connect "$(cat "$tmp/peer.addr")" hello) ;;
        msgqueue) MAIN=(demo --block 10ms) ;;
        fdpass) MAIN=(demo) ;;
        shm) MAIN=(demo) ;;
        semaphore) MAIN=(wait "$(cat "$tmp/sem.name")" --timeout 1s) ;;
        race) MAIN=(--procs 2 --count 1000) ;;
        robust) MAIN=(--timeout 100ms) ;;
        ipcbench) MAIN=(pipe --size 1M) ;;
        *) return 1 ;;
    esac
}

# The one line a tool may print instead of its own "tool: write(stdout): ...": pipeline's stage
# writes the output, and the stage's own message is what a shell pipeline shows too.
accepted_line() {
    case $1/$2 in
        pipeline/main) echo '^(pipeline: write\(stdout\)|seq: write error): ' ;;
        *) echo "^$1: write\\(stdout\\): [^()]+ \\((ENOSPC|EBADF)\\)" ;;
    esac
}

# Failures known today (issue 10), "tool/mode/path reason". A tool's owner fixes it and removes
# the line; a line whose check passes fails this test until it is removed.
known_failures='
'

setup_file() {
    # echoclient's peer: an echo server that stays up for the whole file.
    if [[ -x $BIN/echoserver ]]; then
        "$BIN/echoserver" --listen 127.0.0.1:0 >"$BATS_FILE_TMPDIR/peer.out" 2>&1 3>&- &
        echo $! >"$BATS_FILE_TMPDIR/peer.pid"
        local i
        for ((i = 0; i < 500; i++)); do
            grep -q 'listening on' "$BATS_FILE_TMPDIR/peer.out" 2>/dev/null && break
            sleep 0.02
        done
        sed -nE 's/.*listening on [a-z0-9]+ //p' "$BATS_FILE_TMPDIR/peer.out" | head -n 1 >"$BATS_FILE_TMPDIR/peer.addr"
    fi
    # semaphore's: one of this file's own, posted once (so a wait would not block), unlinked at
    # the end.
    if [[ -x $BIN/semaphore ]]; then
        echo "ipckit-stdout-$$" >"$BATS_FILE_TMPDIR/sem.name"
        "$BIN/semaphore" post "ipckit-stdout-$$" >/dev/null
    fi
}

teardown_file() {
    if [[ -f $BATS_FILE_TMPDIR/sem.name ]]; then
        "$BIN/semaphore" unlink "$(cat "$BATS_FILE_TMPDIR/sem.name")" >/dev/null || true
    fi
    if [[ -f $BATS_FILE_TMPDIR/peer.pid ]]; then
        kill "$(cat "$BATS_FILE_TMPDIR/peer.pid")" 2>/dev/null || true
        wait 2>/dev/null || true
    fi
}

# The tools: every executable file in $BIN.
tools() {
    local f
    for f in "$BIN"/*; do
        [[ -f $f && -x $f ]] && basename "$f"
    done
}

# check TOOL MODE PATH ARGS...: runs TOOL ARGS with stdout full or closed (MODE), bounded to
# 5 s; prints what is wrong, or nothing.
check() {
    local tool=$1 mode=$2 path=$3 err status=0 lines
    shift 3
    err="$BATS_TEST_TMPDIR/$tool.$mode.$path.err"
    if [[ $mode == full ]]; then
        timeout -k 1 5 "$BIN/$tool" "$@" </dev/null >/dev/full 2>"$err" 3>&- || status=$?
    else
        timeout -k 1 5 "$BIN/$tool" "$@" </dev/null >&- 2>"$err" 3>&- || status=$?
    fi
    lines=$(wc -l <"$err")
    if ((status == 124 || status == 137)); then
        echo "did not exit within 5 s (killed)"
    elif ((status > 128)); then
        echo "killed by signal $((status - 128)) (exit $status): $(head -c 200 "$err" | tr '\n' '|')"
    elif ((status != 1)); then
        echo "exit $status, want 1; stderr: $(head -c 200 "$err" | tr '\n' '|')"
    elif ((lines != 1)); then
        echo "$lines lines on stderr, want 1: $(head -c 300 "$err" | tr '\n' '|')"
    elif ! grep -E -q -- "$(accepted_line "$tool" "$path")" "$err"; then
        echo "says \"$(head -c 200 "$err")\", not \"$tool: write(stdout): ... (ENOSPC|EBADF)\""
    fi
}

# run_checks PATH: every tool, both modes, PATH = help | version | main; fails listing every
# unexpected result, each on a line of its own.
run_checks() {
    local path=$1 tool mode what key known unexpected=() expected=0
    for tool in $(tools); do
        if [[ $path == main ]] && ! main_path "$tool"; then
            unexpected+=("$tool: no main path in tests/faults/stdout.bats: add one to main_path()")
            continue
        fi
        for mode in full closed; do
            local -a args
            case $path in
                help) args=(--help) ;;
                version) args=(--version) ;;
                main) main_path "$tool" && args=("${MAIN[@]}") ;;
            esac
            what=$(check "$tool" "$mode" "$path" "${args[@]}")
            key="$tool/$mode/$path"
            known=$(grep -F -- "$key " <<<"$known_failures" || true)
            if [[ -n $what && -n $known ]]; then
                expected=$((expected + 1))
                echo "# known failure: $key: $what" >&3
            elif [[ -n $what ]]; then
                unexpected+=("$key: $what")
            elif [[ -n $known ]]; then
                unexpected+=("$key: passes now: remove it from known_failures in stdout.bats")
            fi
        done
    done
    if ((${#unexpected[@]} > 0)); then
        printf '%s\n' "${unexpected[@]}"
        return 1
    fi
    echo "# $expected known failures (issue 10)" >&3
}

@test "--help with stdout full or closed: exit 1, one line, every tool" {
    run_checks help
}

@test "--version with stdout full or closed: exit 1, one line, every tool" {
    run_checks version
}

@test "the main path with stdout full or closed: exit 1, one line, never an abort or a hang" {
    run_checks main
}
