#!/usr/bin/env bash
# One lesson per file (CONVENTIONS.md, "A tool's source file"), checked:
#   - every tool source file is at most 400 lines, and the median at most 300;
#   - no function over 60 lines and cognitive complexity at most 25 (clang-tidy's
#     readability-function-size and readability-function-cognitive-complexity).
# Usage: scripts/lessons.sh [BUILD_DIR]   (a configured build with compile_commands.json;
#        default build/release). Prints a table of files; exits 1 if a rule is broken.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build/release}
[[ -f $build/compile_commands.json ]] || { echo "lessons.sh: no $build/compile_commands.json: configure first" >&2; exit 2; }

mapfile -t files < <(git ls-files 'procinfo/*.cpp' 'pipes/*.cpp' 'signals/*.cpp' 'sockets/*.cpp' 'shm/*.cpp' 'bench/*.cpp' | sort)
status=0
counts=()
printf '%-32s %6s\n' file lines
for f in "${files[@]}"; do
    n=$(wc -l <"$f")
    counts+=("$n")
    mark=""
    if ((n > 400)); then mark="  over 400"; status=1; fi
    printf '%-32s %6d%s\n' "$f" "$n" "$mark"
done
median=$(printf '%s\n' "${counts[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}')
echo "median: $median lines (at most 300)"
((median <= 300)) || status=1

checks='-*,readability-function-size,readability-function-cognitive-complexity'
# -w: the compiler's own warnings are the build's business (gcc, -Werror under CI); clang would
# add some gcc does not give (-Wsign-conversion is in clang's -Wconversion), and under CI's
# -Werror they would fail this check for a reason that is not about lessons.
if ! out=$(printf '%s\n' "${files[@]}" |
    xargs -P "$(nproc)" -n 1 clang-tidy --quiet -p "$build" --checks="$checks" \
        --warnings-as-errors="$checks" --extra-arg=-w 2>/dev/null); then
    status=1
fi
grep -E 'warning|error' <<<"$out" || echo "clang-tidy: every function within 60 lines and complexity 25"
exit $status
