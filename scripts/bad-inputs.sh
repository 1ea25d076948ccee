#!/usr/bin/env bash
# scripts/bad-inputs.sh: writes docs/bad-inputs.md, the table of bad inputs and hostile
# environments each tool is tested with and what each gets, from the tests themselves:
#   - tests/<chapter>/<tool>.bats: the names of the tests about bad input and failures (a test's
#     name says what is done and what the tool gives);
#   - tests/faults/stdout.bats: stdout full and closed, with its list of known failures;
#   - tests/faults/faults.table: the system calls interrupted (EINTR) or refused (EAGAIN);
#   - tests/fuzz/: the parsers fuzzed, and the findings that became unit tests.
# Usage: scripts/bad-inputs.sh            rewrite docs/bad-inputs.md
#        scripts/bad-inputs.sh --check    exit 1 if docs/bad-inputs.md is not what the tests say
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A test is about a bad input or a failure when its name says so.
bad='usage|error|bad |invalid|unknown|not a |missing|does not exist|no such|not found|cannot|refus|'
bad+='E[A-Z]{3,}|full|closed|killed|SIGPIPE|vanish|never|deadline|timeout|stale|in use|fail|empty|'
bad+='out of range|ulimit|max-line|max-conns|idle|slow|corrupt|differs|permission|stops|stopped reading|leak|'
bad+='spaces|NUL|non-UTF-8|ignored|exits while|goes away|no match|nobody|-1 is|pid 1|resetting|'
bad+='exit [12]|126|127|128\+|a second|mid-'

# The stdout.bats main path of TOOL, as a command line.
main_path() {
    sed -nE "s/^ +$1\\) MAIN=\\((.*)\\) ;;$/\\1/p; s/^ +[a-z| ]*\\b$1\\b[a-z| ]*\\) MAIN=\\((.*)\\) ;;$/\\1/p" \
        tests/faults/stdout.bats | head -n 1 | sed -E 's/"\$\(cat "\$tmp\/peer.addr"\)"/ADDR/; s/"\$\(mktemp -u "\$tmp\/fifo.XXXXXX"\)"/PATH/; s/"\$\(cat "\$tmp\/sem.name"\)"/NAME/; s/\$\$/PID/'
}

tool_section() {
    local tool=$1 bats=$2
    echo "## $tool"
    echo
    echo "Bad input and failures ([\`$bats\`](../$bats); each line is a test's name):"
    echo
    sed -nE 's/^@test "(.*)" \{.*$/\1/p' "$bats" | sed -E 's/" \{ [a-z_]+ [a-z]+; \}$//' |
        grep -E -- "$bad" | sed 's/^/- /' || echo "- (none)"
    echo
    local main known
    main=$(main_path "$tool")
    echo "Hostile environments ([\`tests/faults/\`](../tests/faults/)):"
    echo
    # A main path may have no arguments (MAIN=()): the tool's own line says it has one.
    if grep -q -E "^ +([a-z| ]*\\b)?$tool\\b[a-z| ]*\\) MAIN=" tests/faults/stdout.bats; then
        echo "- stdout full (\`>/dev/full\`) or closed (\`>&-\`), for \`--help\`, \`--version\` and" \
            "\`$tool${main:+ $main}\`: exit 1 and one line \`$tool: write(stdout): ... (ENOSPC|EBADF)\`."
        known=$(sed -nE "s#^$tool/(full|closed)/(main|help|version) (.*)#  - known failure today, \\1 \\2: \\3#p" tests/faults/stdout.bats)
        [[ -n $known ]] && echo "$known"
    else
        echo "- stdout full or closed: \`--help\` and \`--version\` (no main path in stdout.bats yet)."
    fi
    local rows
    rows=$(awk -v tool="$tool" '
        $1 ~ "^" tool "\\." {
            scenario = substr($1, length(tool) + 2)
            when = $4 ~ /^\+/ ? "every " substr($4, 2) "th call" : ($4 ~ /^@/ ? "call " substr($4, 2) : "every " substr($4, index($4, "+") + 1) "th from call " substr($4, 1, index($4, "+") - 1))
            sub(/every 2th/, "every 2nd", when); sub(/every 3th/, "every 3rd", when)
            expect = $6
            for (i = 7; i <= NF; i++) expect = expect " " $i
            gets = expect == "ok" ? "the same output as without it" : "**known failure**: " substr(expect, 7)
            gsub(/\|/, "\\|", gets)
            printf "| `%s` | %s | %s, %s | %s |\n", scenario, $2, $3, when, gets
        }' tests/faults/faults.table)
    if [[ -n $rows ]]; then
        echo "- system calls interrupted or refused by strace while the tool runs its main path" \
            "(\`faults.table\`; the output must be the same, byte for byte):"
        echo
        echo "  | scenario | call | fault | gets |"
        echo "  |---|---|---|---|"
        sed 's/^/  /' <<<"$rows"
    fi
    echo
}

generate() {
    cat <<'EOF'
# Bad inputs and hostile environments

What each tool is tested with when things are not as they should be, and what it does then.
This page is generated from the tests by `scripts/bad-inputs.sh` (run it after changing a test;
`scripts/bad-inputs.sh --check` says whether it is current): the tests are the source of truth.

- **Bad input and failures**: the tests of each tool's bats file whose names say what goes
  wrong and what the tool gives (usage errors exit 2, failed calls exit 1 with
  `tool: call: strerror (ERRNO)`, a child's status passed on as a shell does).
- **stdout full or closed** (`tests/faults/stdout.bats`): every tool exits 1 with one line, never
  an abort, never a silent 0.
- **Interrupted and refused calls** (`tests/faults/inject.sh` and `faults.table`): strace makes
  the blocking calls fail with EINTR (and non-blocking ones with EAGAIN) while the tool runs its
  main path, servers under load from socat; the output must not change.
- **Fuzzed parsers** (`tests/fuzz/`): at the end of the page.

EOF
    local bats tool
    for bats in tests/procinfo/*.bats tests/pipes/*.bats tests/signals/*.bats tests/sockets/*.bats \
        tests/shm/*.bats tests/bench/*.bats; do
        [[ -f $bats ]] || continue
        tool=$(basename "$bats" .bats)
        tool_section "$tool" "$bats"
    done
    echo "## Fuzzed parsers"
    echo
    echo "libFuzzer targets ([\`tests/fuzz/\`](../tests/fuzz/), the \`fuzz\` preset), each run with" \
        "ASan and UBSan from its seed corpus in \`tests/fuzz/corpus/\`:"
    echo
    sed -nE 's/^ipc_add_fuzz_target\(([a-z_]+)( LIBS [a-z_ ]+)?\) +# (.*)$/- `fuzz_\1`: \3/p' \
        tests/fuzz/CMakeLists.txt
    echo
    echo "What fuzzing found (each is now a unit test in \`tests/unit/common_test.cpp\`, and fixed):"
    echo
    sed -nE 's#^// Found by tests/fuzz/(fuzz_[a-z_]+): (.*)$#- `\1`: \2#p' tests/unit/common_test.cpp
    echo
    echo "Not fuzzed on its own: sigrecv's \`--signals\` list is cut at commas and spaces in" \
        "sigrecv.cpp, and each word is parse_signal's (\`fuzz_signals\`)."
}

if [[ ${1:-} == --check ]]; then
    if ! diff -u docs/bad-inputs.md <(generate); then
        echo "bad-inputs.sh: docs/bad-inputs.md is not what the tests say: run scripts/bad-inputs.sh" >&2
        exit 1
    fi
    exit 0
fi
generate >docs/bad-inputs.md
echo "bad-inputs.sh: wrote docs/bad-inputs.md"
