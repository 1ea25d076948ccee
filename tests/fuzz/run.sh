#!/usr/bin/env bash
# tests/fuzz/run.sh TARGET SEEDS WORK SECONDS: runs one libFuzzer target for SECONDS, starting
# from the seed corpus SEEDS (read only: the tree's) and keeping what it finds in WORK. On a
# finding, says which file reproduces it. Exit status: the target's (0: nothing found).
set -uo pipefail
target=$1 seeds=$2 work=$3 seconds=$4
mkdir -p "$work/corpus" "$work/artifacts"
# -timeout: one input that takes over 10 s is a finding (a hang); -rss_limit_mb: so is memory
# growing past 2 GB. -jobs/-workers stay 1: the CI machine has two cores for everything.
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" 2>"$work/log"
status=$?
grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|Done [0-9]+ runs)' "$work/log"
if ((status != 0)); then
    tail -n 60 "$work/log"
    for f in "$work"/artifacts/*; do
        [[ -f $f ]] || continue
        echo "run.sh: reproduce with: $target $f"
        echo "run.sh: the input, as hex: $(head -c 256 "$f" | od -An -tx1 | tr -d '\n')"
    done
fi
exit "$status"
