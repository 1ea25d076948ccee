#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# pipeline: stages joined by pipes, checked against bash running the same pipeline.
load ../helpers/ipc
bats_require_minimum_version 1.5.0

setup() {
    input=$BATS_TEST_TMPDIR/input
    printf 'banana\napple\ncherry\napple\ngolang\n' >"$input"
}

# A pipeline killed by bg_stop_all leaves its stages running, as a killed shell would: end the
# stages of the last one started (by their parent's pid) before the default teardown.
teardown() {
    # bg_alive: never the children of a process that merely got the pid after ours was reaped.
    if [[ -n ${BG_PID:-} ]] && bg_alive; then pkill -TERM -P "$BG_PID" 2>/dev/null || true; fi
    bg_stop_all
}

# Each call of the tool is bounded: a pipeline that hangs fails the test instead of the suite.
pl() { timeout -k 5 60 "$TOOL" "$@"; }

# Runs CMD with only descriptors 0, 1 and 2 open (bats keeps several others open, and a
# pipeline passes what it inherits on to its stages, as a shell does).
std_fds_only() {
    # shellcheck disable=SC2016 # $$ and $fd belong to the inner bash
    bash -c 'for fd in /proc/$$/fd/*; do fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-"; done
             exec "$@"' _ "$@"
}

# same_as_bash [OPTIONS...] -- WORDS...: runs WORDS with `pipeline OPTIONS -- WORDS` and as a
# bash pipeline (each '|' word a pipe, `set -o pipefail` when --pipefail is among OPTIONS), both
# reading $input, and checks that stdout is the same bytes and the status the same number.
same_as_bash() {
    local opts=() pipefail="" script="" word
    while [[ $1 != -- ]]; do
        opts+=("$1")
        [[ $1 == --pipefail ]] && pipefail="set -o pipefail;"
        shift
    done
    shift
    for word in "$@"; do
        if [[ $word == "|" ]]; then script+=" |"; else script+=" $(printf '%q' "$word")"; fi
    done
    local bash_status=0 tool_status=0
    timeout -k 5 60 bash -c "$pipefail $script" <"$input" >"$BATS_TEST_TMPDIR/bash.out" \
        2>/dev/null || bash_status=$?
    pl "${opts[@]}" -- "$@" <"$input" >"$BATS_TEST_TMPDIR/tool.out" \
        2>"$BATS_TEST_TMPDIR/tool.err" || tool_status=$?
    if ! cmp "$BATS_TEST_TMPDIR/bash.out" "$BATS_TEST_TMPDIR/tool.out"; then
        echo "stdout differs for: pipeline ${opts[*]} -- $*" >&2
        return 1
    fi
    if ((bash_status != tool_status)); then
        echo "status: bash $bash_status, pipeline $tool_status for: pipeline ${opts[*]} -- $*" >&2
        cat "$BATS_TEST_TMPDIR/tool.err" >&2
        return 1
    fi
}

# Every comparison in each mode: pipes between the stages, and the parent relaying the bytes
# with read/write or with splice.
same_as_bash_all_modes() {
    same_as_bash "$@"
    same_as_bash --relay "$@"
    same_as_bash --splice "$@"
}

@test "no command: runs the notes' ps aux | grep go" {
    bg_start gopher bash -c 'exec -a gopher-sleeper sleep 60'
    run --separate-stderr pl -v
    assert_success
    assert_line --partial "gopher-sleeper 60"
    while IFS= read -r line; do [[ $line == *go* ]]; done <<<"$output"
    [[ $stderr == *"stage 1: ps: exited 0"* ]]
    [[ $stderr == *"stage 2: grep: exited 0"* ]]
}

@test "same bytes and status as bash: one, two and three stages" {
    same_as_bash_all_modes -- sort
    same_as_bash_all_modes -- sort '|' uniq -c
    same_as_bash_all_modes -- sort '|' uniq -c '|' sort -rn
    same_as_bash_all_modes -- cat '|' tr a-z A-Z '|' rev
    same_as_bash_all_modes -- printf '%s\0' 'with NUL' '|' cat
}

@test "a failing middle stage: the last stage's status, or with --pipefail the failure" {
    same_as_bash_all_modes -- cat '|' grep zzz '|' wc -l
    same_as_bash_all_modes --pipefail -- cat '|' grep zzz '|' wc -l
    run pl --pipefail -- cat '|' grep zzz '|' wc -l <"$input"
    assert_failure 1
    assert_output "0"
}

@test "--pipefail takes the rightmost failing stage, as bash does" {
    same_as_bash_all_modes --pipefail -- sh -c 'exit 3' '|' sh -c 'exit 4' '|' true
    same_as_bash_all_modes --pipefail -- sh -c 'exit 3' '|' true '|' true
    same_as_bash_all_modes --pipefail -- true '|' true
    run pl --pipefail -- sh -c 'exit 3' '|' sh -c 'exit 4' '|' true
    assert_failure 4
    run pl -- sh -c 'exit 3' '|' true
    assert_success
}

@test "a stage killed by a signal counts as 128+n" {
    same_as_bash_all_modes -- cat '|' sh -c 'kill -TERM $$'
    same_as_bash_all_modes --pipefail -- sh -c 'kill -TERM $$' '|' cat
    run --separate-stderr pl -v -- sh -c 'kill -TERM $$'
    assert_failure 143
    [[ $stderr == *"stage 1: sh: killed by SIGTERM (143)"* ]]
}

@test "big data through three stages arrives whole" {
    head -c 8M /dev/urandom >"$input"
    same_as_bash_all_modes -- cat '|' tr a-z A-Z '|' cat
    same_as_bash_all_modes -- cat '|' sha256sum '|' cat
}

@test "yes | head -n 3 ends at once, yes killed by SIGPIPE, in every mode" {
    for mode in "" --relay --splice; do
        run --separate-stderr pl ${mode:+"$mode"} -v -- yes '|' head -n 3
        assert_success
        assert_output $'y\ny\ny'
        [[ $stderr == *"stage 1: yes: killed by SIGPIPE (141)"* ]]
        [[ $stderr == *"stage 2: head: exited 0"* ]]
        run pl ${mode:+"$mode"} --pipefail -- yes '|' head -n 3
        assert_failure 141
    done
    same_as_bash_all_modes --pipefail -- yes '|' head -n 3
    same_as_bash_all_modes -- yes '|' head -c 1M '|' wc -c
}

@test "no stage inherits a descriptor it should not have: only 0, 1, 2 (and ls's own)" {
    for mode in "" --relay --splice; do
        run --separate-stderr std_fds_only "$TOOL" ${mode:+"$mode"} -- ls /proc/self/fd '|' cat
        assert_success
        assert_output $'0\n1\n2\n3'
        run --separate-stderr std_fds_only "$TOOL" ${mode:+"$mode"} -- true '|' ls /proc/self/fd '|' cat
        assert_output $'0\n1\n2\n3'
        run --separate-stderr std_fds_only "$TOOL" ${mode:+"$mode"} -- echo '|' sh -c 'cat; ls /proc/$$/fd'
        assert_output $'\n0\n1\n2'
    done
    run --separate-stderr std_fds_only bash -c 'true | ls /proc/self/fd | cat'
    assert_output $'0\n1\n2\n3'
}

@test "--explain shows each pipe, fork, dup2, close, execvp and waitpid with the pid doing it" {
    run --separate-stderr pl -x -- printf 'x\n' '|' tr x y '|' cat
    assert_success
    assert_output "y"
    parent=$(sed -n 's/^\[\([0-9]*\)\] pipe() = .*/\1/p' <<<"$stderr" | head -n 1)
    mapfile -t kids < <(sed -n 's/^\[[0-9]*\] fork() = \([0-9]*\):.*/\1/p' <<<"$stderr")
    assert_equal "${#kids[@]}" 3
    [[ $stderr == *"[$parent]   link 1: stage 1 -> ["* ]]
    [[ $stderr == *"[$parent] close("* ]]
    # stage 1 writes into the pipe, stage 2 reads one and writes the next, stage 3 reads.
    grep -E -q "^\[${kids[0]}\] dup2\([0-9]+, 1\)$" <<<"$stderr"
    grep -E -q "^\[${kids[1]}\] dup2\([0-9]+, 0\)$" <<<"$stderr"
    grep -E -q "^\[${kids[1]}\] dup2\([0-9]+, 1\)$" <<<"$stderr"
    grep -E -q "^\[${kids[2]}\] dup2\([0-9]+, 0\)$" <<<"$stderr"
    # Every process closes every end of both pipes: the children 4 each, plus the parent's read
    # ends of the exec reports made so far (1, 2, 3); the parent 4 too, since it is not part of
    # the pipeline, plus both ends of the 3 exec reports.
    for k in 0 1 2; do
        kid=${kids[k]}
        assert_equal "$(grep -c "^\[$kid\] close(" <<<"$stderr")" $((4 + k + 1))
        grep -q "^\[$kid\] execvp(" <<<"$stderr"
        grep -q "^\[$parent\] waitpid($kid) = exited 0" <<<"$stderr"
    done
    [[ $stderr == *"[${kids[0]}] execvp(\"printf\", [\"printf\", \"x\\\\n\"])"* ]]
    assert_equal "$(grep -c "^\[$parent\] close([0-9]*)$" <<<"$stderr")" $((4 + 2 * 3))
}

@test "--relay: reports the bytes relayed on each link" {
    run --separate-stderr pl --relay -- printf hello '|' cat '|' cat
    assert_success
    assert_output "hello"
    [[ $stderr == *"relayed 5 bytes: stage 1 (printf) -> stage 2 (cat)"* ]]
    [[ $stderr == *"relayed 5 bytes: stage 2 (cat) -> stage 3 (cat)"* ]]
    run --separate-stderr pl --relay --buffer 7 -- head -c 100000 /dev/zero '|' cat '|' wc -c
    assert_output "100000"
    [[ $stderr == *"relayed 100000 bytes: stage 2 (cat) -> stage 3 (wc)"* ]]
    run --separate-stderr pl --splice -- printf hello '|' cat '|' cat
    assert_output "hello"
    [[ $stderr == *"relayed 5 bytes: stage 2 (cat) -> stage 3 (cat)"* ]]
    run --separate-stderr pl -- printf hello '|' cat
    [[ $stderr != *relayed* ]]
}

@test "--relay -x: the parent reads, writes, and passes on EOF and SIGPIPE" {
    run --separate-stderr pl --relay -x -- printf hi '|' cat
    assert_output "hi"
    [[ $stderr == *"signal(SIGPIPE, SIG_IGN)"* ]]
    [[ $stderr == *"] read("*") = 2"* ]]
    [[ $stderr == *"] write("*") = 2"* ]]
    [[ $stderr == *"stage 2 sees EOF"* ]]
    run --separate-stderr pl --relay -x -- yes '|' head -n 1
    assert_output "y"
    [[ $stderr == *"stage 2 has closed its stdin"*"stage 1 gets SIGPIPE at its next write"* ]]
    run --separate-stderr pl --splice -x -- printf hi '|' cat
    assert_output "hi"
    [[ $stderr == *"] splice("*") = 2"* ]]
    [[ $stderr == *"] splice("*") = 0: end of stage 1's output"* ]]
}

@test "--relay: a stage that writes after the next one has gone gets SIGPIPE, as with a pipe" {
    for mode in relay splice; do
        # A fifo and log files of its own per mode: bg_start truncates its files only once the
        # background process runs, so a reused name could show the last round's lines.
        fifo=$BATS_TEST_TMPDIR/in-$mode
        mkfifo "$fifo"
        # shellcheck disable=SC2016 # $1.. belong to the inner bash
        bg_start "$mode" bash -c 'exec "$1" "--$2" -x -v -- cat "|" true <"$3"' _ "$TOOL" "$mode" "$fifo"
        exec 5<>"$fifo"  # read-write: opening never blocks
        # `true` is gone and the relay has closed the read end cat writes into; now cat writes.
        wait_for_line "$(bg_err "$mode")" 'stage 1 gets SIGPIPE at its next write' 20
        echo late >&5
        exec 5>&-
        wait_for_exit "$BG_PID" 20
        assert_equal "$BG_STATUS" 0
        grep -q "stage 1: cat: killed by SIGPIPE (141)" "$(bg_err "$mode")"
    done
}

@test "the first stage reads our stdin, the last writes our stdout, stderr passes through" {
    run --separate-stderr pl -- sort <"$input"
    assert_output $'apple\napple\nbanana\ncherry\ngolang'
    run --separate-stderr pl --relay -- sh -c 'echo to-stderr >&2; cat' '|' wc -l <"$input"
    assert_output "5"
    [[ $stderr == *to-stderr* ]]
}

@test "a command not found: message, status 127; as a middle stage the pipeline goes on" {
    run -127 pl -- grepp x
    assert_failure 127
    assert_output "pipeline: stage 1: grepp: command not found"
    for mode in "" --relay --splice; do
        run --separate-stderr pl ${mode:+"$mode"} -v -- echo hi '|' grepp x '|' cat
        assert_success
        [[ $stderr == *"pipeline: stage 2: grepp: command not found"* ]]
        [[ $stderr == *"stage 2: grepp: exited 127"* ]]
    done
    same_as_bash_all_modes -- echo hi '|' grepp x '|' cat
    same_as_bash_all_modes --pipefail -- echo hi '|' grepp x '|' cat
    run -127 pl -- ./no-such-file
    assert_failure 127
    assert_output --partial "stage 1: ./no-such-file: No such file or directory (ENOENT)"
}

@test "a command that cannot be run: status 126, as shells give" {
    printf '#!/bin/sh\necho hi\n' >"$BATS_TEST_TMPDIR/script"
    chmod 644 "$BATS_TEST_TMPDIR/script"
    run pl -- "$BATS_TEST_TMPDIR/script"
    assert_failure 126
    assert_output --partial "stage 1: $BATS_TEST_TMPDIR/script: Permission denied (EACCES)"
    same_as_bash -- "$BATS_TEST_TMPDIR/script"
}

@test "an empty stage is a usage error" {
    run pl -- cat '|' '|' cat
    assert_usage_error "stage 2 is empty"
    run pl -- '|' cat
    assert_usage_error "stage 1 is empty"
    run pl -- cat '|'
    assert_usage_error "stage 2 is empty"
    run pl -- '|'
    assert_usage_error "stage 1 is empty"
    run pl --buffer 0 --relay -- cat
    assert_usage_error "--buffer"
    run pl --bogus
    assert_usage_error "--bogus"
}

@test "--help explains the tool; --version prints the project version" {
    run pl --help
    assert_success
    assert_output --partial "--pipefail"
    assert_output --partial "--relay"
    assert_output --partial "ps aux '|' grep go"
    run pl --version
    assert_output --regexp '^pipeline \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "--relay --buffer above 64K grows the link's pipes to match (F_SETPIPE_SZ) and moves the same bytes" {
    run bash -c '"$TOOL" -x --relay --buffer 256K -- yes "|" head -c 1M "|" wc -c 2>err; echo "status $?"; cat err'
    assert_success
    assert_line --index 0 "1048576"
    assert_line --index 1 "status 0"
    assert_line --regexp 'fcntl\([0-9]+, F_SETPIPE_SZ, 262144\): the pipe holds --buffer$'
    [ "$(grep -c 'F_SETPIPE_SZ' <<<"$output")" -eq 4 ]
}

@test "stdout full or closed: --help and --version exit 1 with one line on stderr" {
    for args in --help --version; do
        run --separate-stderr bash -c '"$TOOL" '"$args"' >/dev/full'
        assert_failure 1
        assert_equal "$stderr" "pipeline: write(stdout): No space left on device (ENOSPC)"
        run --separate-stderr bash -c '"$TOOL" '"$args"' >&-'
        assert_failure 1
        assert_equal "$stderr" "pipeline: write(stdout): Bad file descriptor (EBADF)"
    done
}

@test "stdout full or closed: the last stage's write fails, it says so, and its status is the pipeline's" {
    for mode in "" --relay --splice; do  # --relay and --splice also say what they relayed
        run --separate-stderr bash -c '"$TOOL" '"$mode"' -- echo hi "|" cat >/dev/full'
        assert_failure 1
        grep -qx "cat: write error: No space left on device" <<<"$stderr"
        if [[ -z $mode ]]; then assert_equal "$stderr" "cat: write error: No space left on device"; fi
        # Closed, stdout is /dev/null opened read-only (ipc::start): a write to it is EBADF, as to
        # a closed descriptor, and no pipe of ours can land on fd 1 meanwhile.
        run --separate-stderr bash -c '"$TOOL" '"$mode"' -- echo hi "|" cat >&-'
        assert_failure 1
        grep -qx "cat: write error: Bad file descriptor" <<<"$stderr"
    done
}
