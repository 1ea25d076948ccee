#!/usr/bin/env bash
# The guided tour of ipckit: the notes' sections in order, each shown by running a tool.
# Usage: tour/tour.sh [STEPS-FILE-PREFIX...]   e.g. tour/tour.sh 10 20   (default: every step)
# Each step prints the notes' section title, the command, its output, and what to notice.
# The tools come from $BIN (default: build/bin). The tour fails if a step fails or leaves a
# process behind.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${BIN:-$here/../build/bin}
if [[ ! -d $BIN ]]; then
    echo "tour: no tools in $BIN: build them first (see README.md, Quick start)" >&2
    exit 1
fi
BIN=$(cd "$BIN" && pwd)
export PATH="$BIN:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/ipckit-tour.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [[ -t 1 ]]; then
    bold=$'\e[1m' dim=$'\e[2m' cyan=$'\e[36m' red=$'\e[31m' reset=$'\e[0m'
else
    bold='' dim='' cyan='' red='' reset=''
fi

steps_run=0
# Every process a step starts carries this mark in its environment, so a leftover is found.
export IPCKIT_TOUR_MARK="$$.$RANDOM"

# Prints "pid command" for each live process that carries the mark (zombies have no environ).
# One grep reads every environ (a pair of processes per /proc entry made each step cost seconds
# on a busy machine); it runs without the mark itself, and this subshell is skipped.
marked_processes() {
    local env pid
    for env in $(env -u IPCKIT_TOUR_MARK grep -l -s -a -z -x "IPCKIT_TOUR_MARK=$IPCKIT_TOUR_MARK" \
        /proc/[0-9]*/environ); do
        pid=${env#/proc/}
        pid=${pid%/environ}
        [[ $pid == "$BASHPID" ]] && continue
        printf '%s %s\n' "$pid" "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")"
    done
}

# chapter TITLE: a heading for the steps that follow.
chapter() {
    printf '\n%s══ %s ══%s\n' "$bold" "$1" "$reset"
}

# step SECTION COMMAND NOTICE: run COMMAND (a bash command line, in a fresh scratch folder, with
# the tools on PATH), indenting its output; then say what to notice. A step may take 30 s at most.
step() {
    local section=$1 command=$2 notice=$3 status=0
    steps_run=$((steps_run + 1))
    printf '\n%s§ %s%s\n' "$cyan" "$section" "$reset"
    printf '%s$ %s%s\n' "$bold" "$command" "$reset"
    # A fresh folder per step: no file of an earlier step can pass for this one's output.
    local dir="$work/step-$steps_run"
    mkdir "$dir"
    (cd "$dir" && timeout -k 2 30 bash -c "$command") 2>&1 | sed 's/^/    /' || status=$?
    if ((status != 0)); then
        printf '%sthe step above failed (status %d)%s\n' "$red" "$status" "$reset"
        exit 1
    fi
    local left
    left=$(marked_processes)
    if [[ -n $left ]]; then
        printf '%sthe step above left processes behind:%s\n%s\n' "$red" "$reset" "$left"
        exit 1
    fi
    printf '%s→ %s%s\n' "$dim" "$notice" "$reset"
}

printf '%sipckit tour%s: inter-process communication, one running program at a time.\n' "$bold" "$reset"
printf 'Tools from %s. Every command below can be run by hand from there.\n' "$BIN"

prefixes=("$@")
for file in "$here"/steps/*.sh; do
    name=$(basename "$file")
    if ((${#prefixes[@]} > 0)); then
        match=0
        for p in "${prefixes[@]}"; do [[ $name == "$p"* ]] && match=1; done
        ((match)) || continue
    fi
    # shellcheck source=/dev/null
    source "$file"
done

printf '\n%sThe tour ran %d steps. Next: cd %s and run the tools yourself; docs/ has a page per tool.%s\n' \
    "$bold" "$steps_run" "$BIN" "$reset"
