#!/usr/bin/env bash
# How fast does a tool start? `TOOL --version` of every tool, side by side in one hyperfine run
# with a plain C hello-world and an fmt hello-world built here, printed as ratios to fmt's.
# Target (issue 2): every tool within 1.3x the fmt hello-world.
# Usage: tests/perf/startup.sh [BIN]     (BIN defaults to build/bin, the release build)
# Needs: hyperfine, cc/c++, libfmt-dev (scripts/deps.sh --perf).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=$(cd "${1:-$here/../../build/bin}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/hello.c" <<'C'
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
C
cat >"$work/hello_fmt.cpp" <<'CPP'
#include <fmt/core.h>
int main() { fmt::print("hello\n"); return 0; }
CPP
cc -O2 -o "$work/hello_c" "$work/hello.c"
c++ -O2 -std=c++20 -o "$work/hello_fmt" "$work/hello_fmt.cpp" -lfmt

commands=("$work/hello_c" "$work/hello_fmt")
names=("C hello" "fmt hello")
for tool in "$bin"/*; do
    [[ -x $tool && -f $tool ]] || continue
    commands+=("$tool --version")
    names+=("$(basename "$tool") --version")
done

args=(-N --warmup 20 --runs 300 --export-csv "$work/result.csv" --style basic)
for i in "${!commands[@]}"; do args+=(--command-name "${names[$i]}" "${commands[$i]}"); done
hyperfine "${args[@]}" >/dev/null

# CSV columns: command,mean,stddev,median,user,system,min,max (seconds).
awk -F, 'NR == 1 { next }
    { name[NR] = $1; mean[NR] = $2; sd[NR] = $3; if ($1 == "fmt hello") base = $2 }
    END {
        printf "%-28s %9s %9s %13s\n", "command", "mean", "stddev", "vs fmt hello"
        for (i = 2; i <= NR; i++) {
            ratio = mean[i] / base
            if (name[i] ~ /--version$/ && ratio > worst) worst = ratio
            printf "%-28s %7.2fms %7.2fms %12.2fx\n", name[i], mean[i] * 1e3, sd[i] * 1e3, ratio
        }
        printf "\nslowest tool: %.2fx the fmt hello-world (target: at most 1.30x)\n", worst
    }' "$work/result.csv"
