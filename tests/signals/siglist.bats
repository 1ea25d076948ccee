#!/usr/bin/env bats
# siglist: the signal table, checked against bash's own `kill -l`.
load ../helpers/ipc
bats_require_minimum_version 1.5.0

# Signals this system names: 1..31 and SIGRTMIN..SIGRTMAX, as bash lists them.
named_numbers() { bash -c 'kill -l' | grep -oE '[0-9]+\)' | tr -d ')'; }

@test "the table has a header, one row per signal and the note on 32 and 33" {
    run "$TOOL"
    assert_success
    assert_line --index 0 --regexp '^NUM +NAME +ACTION +CATCH +BLOCK +INHERITED +DESCRIPTION$'
    assert_line --regexp '^ +9  SIGKILL +Term +no +no +'
    assert_line --regexp '^ +19  SIGSTOP +Stop +no +no +'
    assert_line --regexp '^ +15  SIGTERM +Term +yes +yes +'
    assert_line --regexp '^ +17  SIGCHLD +Ign +yes +yes +'
    assert_line --regexp '^ +18  SIGCONT +Cont +yes +yes +'
    assert_line --regexp '^ +3  SIGQUIT +Core +yes +yes +'
    assert_line --regexp '^ +34  SIGRTMIN +Term +yes +yes +'
    assert_line --regexp '^ +64  SIGRTMAX +Term +yes +yes +'
    assert_line --partial 'Not listed: 32, 33.'
    # One row for each signal bash lists, and none for 32 or 33.
    rows=$(grep -cE '^ *[0-9]+  SIG' <<<"$output")
    assert_equal "$rows" "$(named_numbers | wc -l)"
    refute_line --regexp '^ +3[23]  '
}

@test "every row's number and name agree with bash's kill -l" {
    run "$TOOL"
    assert_success
    while read -r num name _; do
        assert_equal "SIG$(bash -c "kill -l $num")" "$name"
    done < <(grep -E '^ *[0-9]+  SIG' <<<"$output")
}

@test "-l prints exactly what bash's kill -l prints, byte for byte" {
    "$TOOL" -l >"$BATS_TEST_TMPDIR/ours"
    bash -c 'kill -l' >"$BATS_TEST_TMPDIR/bash"
    cmp "$BATS_TEST_TMPDIR/ours" "$BATS_TEST_TMPDIR/bash"
}

@test "-l N agrees with bash's kill -l N for every number 1-64; 32 and 33 fail with a reason" {
    # One siglist run with all 64 numbers (an ASan start is slow), checked number by number
    # against bash: the same line for each named signal, nothing on stdout for 32 and 33.
    : >"$BATS_TEST_TMPDIR/bash"
    for n in $(seq 1 64); do bash -c "kill -l $n" >>"$BATS_TEST_TMPDIR/bash"; done
    run --separate-stderr "$TOOL" -l $(seq 1 64)
    assert_failure 1
    assert_equal "$output" "$(cat "$BATS_TEST_TMPDIR/bash")"
    # shellcheck disable=SC2154 # stderr_lines is set by run --separate-stderr
    assert_equal "${#stderr_lines[@]}" 2
    assert_equal "$(bash -c 'kill -l 32')$(bash -c 'kill -l 33')" ""
    assert_regex "${stderr_lines[0]}" '^siglist: 32: no such signal: .*glibc keeps 32\.\.33 for its threads'
    assert_regex "${stderr_lines[1]}" '^siglist: 33: no such signal: '
    # Each of 32 and 33 alone, with and without -l: exit 1 and the reason.
    for n in 32 33; do
        run "$TOOL" -l "$n"
        assert_failure 1
        assert_output --regexp "^siglist: $n: no such signal: .*SIGRTMIN is 34 here"
        run "$TOOL" "$n"
        assert_failure 1
        assert_output --regexp "^siglist: $n: no such signal: "
    done
}

@test "-l NAME agrees with bash's kill -l NAME for every name, with and without SIG" {
    mapfile -t names < <(bash -c "kill -l $(named_numbers | tr '\n' ' ')")
    for spelling in "${names[@]}" "${names[@]/#/SIG}" "${names[@],,}"; do
        bash -c "kill -l $spelling"
    done >"$BATS_TEST_TMPDIR/bash"
    run "$TOOL" -l "${names[@]}" "${names[@]/#/SIG}" "${names[@],,}"
    assert_success
    assert_equal "${#lines[@]}" "$((3 * ${#names[@]}))"
    assert_output "$(cat "$BATS_TEST_TMPDIR/bash")"
}

@test "-l 143 reads an exit status as bash does: TERM (and leading zeros too)" {
    run "$TOOL" -l 143 137 129 0015
    assert_success
    assert_output "$(bash -c 'kill -l 143 137 129 0015')"
    assert_output "$(printf 'TERM\nKILL\nHUP\nTERM')"
}

@test "siglist TERM, SIGTERM, term and 15 print the same single row" {
    run "$TOOL" 15
    assert_success
    assert_equal "${#lines[@]}" 2
    assert_line --index 1 --regexp '^ +15  SIGTERM +Term +yes +yes +- +Termination request'
    expected=$output
    for spelling in TERM SIGTERM term sigterm; do
        run "$TOOL" "$spelling"
        assert_success
        assert_output "$expected"
    done
}

@test "siglist RTMIN+2 and RTMAX-1 name real-time signals from the running system" {
    run "$TOOL" RTMIN+2 RTMAX-1
    assert_success
    assert_line --index 1 --regexp "^ +$(bash -c 'kill -l RTMIN+2')  SIGRTMIN\+2 +Term +yes +yes +"
    assert_line --index 2 --regexp "^ +$(bash -c 'kill -l RTMAX-1')  SIGRTMAX-1 +Term +yes +yes +"
}

@test "siglist 143 explains the exit status of a killed process" {
    run "$TOOL" 143
    assert_success
    assert_line --index 1 --regexp '^ +15  SIGTERM '
    assert_line '143 = 128 + 15: the status a shell reports for a process killed by SIGTERM'
}

@test "an unknown name is exit 1 with a clear line" {
    run "$TOOL" NOSUCH
    assert_failure 1
    assert_output 'siglist: NOSUCH: no such signal name (siglist -l lists them)'
    run "$TOOL" -l NOSUCH
    assert_failure 1
    assert_output 'siglist: NOSUCH: no such signal name (siglist -l lists them)'
    run "$TOOL" RTMIN+99
    assert_failure 1
}

@test "numbers out of range, and 0, are exit 1 with a clear line" {
    run "$TOOL" 65
    assert_failure 1
    assert_output 'siglist: 65: no such signal: numbers go from 1 to 64 here'
    run "$TOOL" 0
    assert_failure 1
    assert_output --partial '0: the null signal'
    run "$TOOL" 99999999999999
    assert_failure 1
    assert_output "siglist: 99999999999999: no such signal: numbers go from 1 to 64 here"
}

@test "good and bad arguments together: the good rows, a line for each bad one, exit 1" {
    run "$TOOL" TERM 33 KILL
    assert_failure 1
    assert_line --regexp '^ +15  SIGTERM '
    assert_line --regexp '^ +9  SIGKILL '
    assert_line --partial 'siglist: 33: no such signal'
}

@test "--json is one object with every signal" {
    run "$TOOL" --json
    assert_success
    run python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["reserved"] == list(range(32, d["rtmin"])), d["reserved"]
nums = [s["number"] for s in d["signals"]]
assert nums == list(range(1, 32)) + list(range(d["rtmin"], d["rtmax"] + 1)), nums
k = next(s for s in d["signals"] if s["number"] == 9)
assert k["name"] == "SIGKILL" and not k["catchable"] and not k["blockable"], k
q = next(s for s in d["signals"] if s["number"] == 3)
assert q["action"] == "Core" and q["description"].endswith("(Ctrl-\\)"), q
print("ok", len(nums))
' <<<"$output"
    assert_success
    assert_output "ok $(named_numbers | wc -l)"
}

@test "--json TERM holds one signal" {
    run "$TOOL" --json TERM
    assert_success
    assert_output --partial '"signals":[{"number":15,"name":"SIGTERM","action":"Term",'
}

@test "INHERITED shows a signal ignored by the parent (nohup, trap '')" {
    run nohup "$TOOL" HUP
    assert_success
    assert_line --index 1 --regexp '^ +1  SIGHUP +Term +yes +yes +ignored +'
    run bash -c "trap '' USR2; exec \"\$TOOL\" USR2 TERM"
    assert_success
    assert_line --index 1 --regexp '^ +12  SIGUSR2 .* ignored +'
    assert_line --index 2 --regexp '^ +15  SIGTERM .* - +'
    run bash -c "trap '' USR2; exec \"\$TOOL\" --json USR2"
    assert_output --partial '"ignored":true,"blocked":false'
}

@test "INHERITED shows a signal blocked by the parent" {
    run perl -MPOSIX -e 'sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGUSR1)) or die; exec @ARGV' \
        "$TOOL" USR1
    assert_success
    assert_line --index 1 --regexp '^ +10  SIGUSR1 .* blocked +'
}

@test "-x narrates the read of /proc/self/status" {
    run "$TOOL" -x TERM
    assert_success
    assert_line --regexp '^\[[0-9]+\] read\(/proc/self/status\): SigIgn [0-9a-f]{16} SigBlk [0-9a-f]{16}$'
}

@test "--json with -l is a usage error" {
    run "$TOOL" -l --json
    assert_usage_error "--json"
}

@test "an unknown option is a usage error" {
    run "$TOOL" --bogus
    assert_usage_error "--bogus"
}

@test "--help says what it demonstrates" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "kill -l, explained"
    assert_output --partial "Example:"
}

@test "INHERITED shows SIGPIPE as the parent left it (ipckit's own SIGPIPE handler is not inherited)" {
    run "$TOOL" PIPE
    assert_success
    assert_line --index 1 --regexp '^ +13  SIGPIPE +Term +yes +yes +- +'
    run bash -c "trap '' PIPE; exec \"\$TOOL\" PIPE"
    assert_success
    assert_line --index 1 --regexp '^ +13  SIGPIPE +Term +yes +yes +ignored +'
    run perl -MPOSIX -e 'sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGPIPE)) or die; exec @ARGV' \
        "$TOOL" --json PIPE
    assert_success
    assert_output --partial '"name":"SIGPIPE","action":"Term","catchable":true,"blockable":true,"ignored":false,"blocked":true,'
}

@test "stdout full or closed: exit 1 and one line (the table, -l, --json, --help, --version)" {
    assert_stdout_failures
    assert_stdout_failures TERM 143
    assert_stdout_failures -l
    assert_stdout_failures -l 15 TERM
    assert_stdout_failures --json
    assert_stdout_failures --help
    assert_stdout_failures --version
}
