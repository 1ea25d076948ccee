#!/usr/bin/env bash
# batchlog's throughput against cat: the same file of log lines, copied to a file on the same
# disk, by `cat file > out` and by `batchlog --batch 200 --out out2 < file`. Target: batchlog
# at least 80% of cat's rate (issue 4, "Performance").
#
# Usage: tests/perf/batchlog.sh            (SIZE=1G by default; SIZE=256M for a quicker run)
# Needs the release build:  CI=1 cmake --preset release && cmake --build --preset release --target batchlog
# BIN (default build/bin) says where batchlog is; TMPDIR where the files go (3 x SIZE of disk).
# Each command runs RUNS times (default 3), alternating, and the best time counts: the machine
# is shared, and the best run is the one least disturbed by the others. Two more rows explain
# the result: dd writing blocks the size of one 200-line batch (the same write(2) calls with no
# line handling at all), and batchlog with --batch 2000.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-$here/build/bin}
SIZE=${SIZE:-1G}
RUNS=${RUNS:-3}
batchlog=$BIN/batchlog
[[ -x $batchlog ]] || {
    echo "no $batchlog: build the release preset first" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/batchlog-perf.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# About 100-byte log lines, 10,000 different ones (1 MB), repeated up to SIZE.
awk 'BEGIN {
    for (i = 0; i < 10000; i++)
        printf "2024-05-01T12:%02d:%02d.%06dZ INFO  api[4242]: GET /v1/items/%06d 200 %5dB %6.1fms req=%016x\n",
            (i / 60) % 60, i % 60, i * 37 % 1000000, i, (i * 7919) % 65536, (i % 997) / 10.0, i * 2654435761
}' >block
bytes=$(numfmt --from=iec "$SIZE")
: >input
while (($(stat -c %s input) < bytes)); do cat block block block block block block block block >>input; done
size=$(stat -c %s input)
lines=$(wc -l <input)

# calc EXPRESSION: floating-point arithmetic (awk, to need nothing more than coreutils and bash).
calc() { awk "BEGIN { print $1 }"; }

# run_timed COMMAND: runs a bash command line (out files removed first) and prints
# "wall cpu": elapsed seconds, and user+system seconds of everything it ran.
run_timed() {
    rm -f out out2
    local TIMEFORMAT='%R %U %S' t
    t=$({ time bash -c "$1" 2>/dev/null; } 2>&1)
    read -r wall user sys <<<"$t"
    calc "$wall \" \" $user + $sys"
}

batch_bytes=$((size / lines * 200)) # what one --batch 200 write carries, on average
names=(
    "cat input > out"
    "dd bs=$batch_bytes (the writes of --batch 200)"
    "batchlog --batch 200 --out out2 < input"
    "batchlog --batch 2000 --out out2 < input"
)
commands=(
    "cat input >out"
    "dd if=input of=out bs=$batch_bytes status=none"
    "\"$batchlog\" --batch 200 --out out2 <input"
    "\"$batchlog\" --batch 2000 --out out2 <input"
)
wall=() cpu=()
for ((r = 1; r <= RUNS; r++)); do
    for i in "${!commands[@]}"; do
        read -r w c < <(run_timed "${commands[i]}")
        wall[i]=$(calc "${wall[i]:-999999} < $w ? ${wall[i]:-999999} : $w")
        cpu[i]=$(calc "${cpu[i]:-999999} < $c ? ${cpu[i]:-999999} : $c")
        if [[ -e out2 ]] && ! cmp -s input out2; then
            echo "batchlog's output differs from its input" >&2
            exit 1
        fi
    done
done

fs=$(df --output=fstype . | tail -n 1)
printf 'batchlog throughput: %s of lines (%d bytes on average, %d lines) on %s, best of %d runs, %s\n' \
    "$(numfmt --to=iec --round=nearest "$size")" $((size / lines)) "$lines" "$fs" "$RUNS" \
    "$(date -u +%Y-%m-%d)"
printf '%-46s %8s %7s %7s %8s %7s\n' "command" "wall s" "MiB/s" "vs cat" "cpu s" "vs cat"
for i in "${!commands[@]}"; do
    printf '%-46s %8.3f %7.0f %6.0f%% %8.3f %6.0f%%\n' "${names[i]}" "${wall[i]}" \
        "$(calc "$size / ${wall[i]} / 1048576")" "$(calc "100 * ${wall[0]} / ${wall[i]}")" \
        "${cpu[i]}" "$(calc "100 * ${cpu[0]} / ${cpu[i]}")"
done
echo "(vs cat: cat's time / this command's time, so 80% means 80% of cat's rate; cpu = user + system)"
