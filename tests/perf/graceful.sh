#!/usr/bin/env bash
# Benchmark of signals/graceful against a Go net/http hello server, in one run with wrk:
#   1. requests/s of GET / with wrk -t2 -c50 -d5s, graceful and Go side by side (target: >= 0.8x Go)
#   2. the time from SIGHUP to the new copy serving (its readiness line), over 20 restarts made
#      under wrk load (target: < 50 ms)
#   3. the socket errors and non-2xx responses wrk saw across those 20 restarts (target: 0)
# Usage: tests/perf/graceful.sh        (BIN: folder of the tools, default build/bin: the release
#                                       preset; the Go server is built here, offline, in a temp dir)
# Not run by CTest. On a shared machine the figures are noisy: compare ratios, run it twice.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$(cd "${BIN:-$here/../../build/bin}" && pwd)
TOOL=$BIN/graceful
DURATION=${DURATION:-5s}
RESTARTS=${RESTARTS:-20}
for cmd in wrk go curl; do
    command -v "$cmd" >/dev/null || { echo "graceful.sh: $cmd is needed" >&2; exit 1; }
done
[[ -x $TOOL ]] || { echo "graceful.sh: no $TOOL: build the release preset first" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/graceful-perf.XXXXXX")
pids=()
cleanup() {
    [[ -s $tmp/graceful.pid ]] && kill -TERM "$(cat "$tmp/graceful.pid")" 2>/dev/null
    ((${#pids[@]} > 0)) && kill -TERM "${pids[@]}" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# wait_for FILE REGEX: until a line of FILE matches (bounded: 20 s).
wait_for() {
    local deadline=$((SECONDS + 20))
    until grep -E -q -- "$2" "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "graceful.sh: timed out waiting for /$2/ in $1" >&2; exit 1; }
        sleep 0.005
    done
}

# The peer: the hello server a Go programmer would write, built offline with its cache in $tmp.
cat >"$tmp/hello.go" <<'GO'
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	pid := os.Getpid()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from pid %d, generation 1\n", pid)
	})
	fmt.Printf("serving on %s\n", l.Addr())
	panic(http.Serve(l, nil))
}
GO
(cd "$tmp" && GOCACHE=$tmp/gocache GOPATH=$tmp/gopath GOFLAGS=-mod=mod GOPROXY=off \
    GO111MODULE=off go build -o "$tmp/gohello" hello.go)

# Every line graceful prints, stamped with the time it was read: all generations share the pipe.
"$TOOL" --listen 127.0.0.1:0 --pidfile "$tmp/graceful.pid" |
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >"$tmp/graceful.log" &
pids+=($!)
"$tmp/gohello" >"$tmp/go.log" &
pids+=($!)
wait_for "$tmp/graceful.log" 'serving on '
wait_for "$tmp/go.log" 'serving on '
graceful_url="http://$(sed -nE 's/^[0-9.]+ serving on ([^:]+:[0-9]+): .*/\1/p' "$tmp/graceful.log")/"
go_url="http://$(sed -nE 's/^serving on (.*)$/\1/p' "$tmp/go.log")/"
curl -sS --fail "$graceful_url" >/dev/null
curl -sS --fail "$go_url" >/dev/null

rps() { sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' "$1"; }
wrk -t2 -c50 -d"$DURATION" "$graceful_url" >"$tmp/wrk.graceful"
wrk -t2 -c50 -d"$DURATION" "$go_url" >"$tmp/wrk.go"
g_rps=$(rps "$tmp/wrk.graceful")
go_rps=$(rps "$tmp/wrk.go")

# restart GENERATION KIND: SIGHUP to the pid in the pid file; wait for the new generation's readiness
# line (its time stamp minus the time of the kill goes to $tmp/latencies.$2) and for the old
# process to exit.
restart() {
    local gen=$1 old sent ready
    old=$(cat "$tmp/graceful.pid")
    sent=$EPOCHREALTIME
    kill -HUP "$old"
    wait_for "$tmp/graceful.log" "serving on .*, generation $gen\$"
    ready=$(sed -nE "s/^([0-9.]+) serving on .*, generation $gen\$/\\1/p" "$tmp/graceful.log")
    echo "$sent $ready" | awk '{ printf "%.2f\n", ($2 - $1) * 1000 }' >>"$tmp/latencies.$2"
    wait_for "$tmp/graceful.log" "pid $old: drained, exit 0\$"
}
# "median max" of the numbers in a file.
median_max() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        printf "%s %s\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[NR] }'
}

# 5 restarts on an idle server, then 20 one after another while wrk keeps 50 connections busy.
for ((gen = 2; gen <= 6; gen++)); do restart "$gen" idle; done
wrk -t2 -c50 -d60s "$graceful_url" >"$tmp/wrk.restarts" &
wrk_pid=$!
pids+=("$wrk_pid")
sleep 0.5  # let wrk open its connections: this wait is for load, not for ordering
for ((gen = 7; gen < 7 + RESTARTS; gen++)); do restart "$gen" load; done
kill -INT "$wrk_pid"  # wrk prints its report on SIGINT
wait "$wrk_pid" || true
socket_errors=$(sed -nE 's/^ *Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)/\1 \2 \3 \4/p' "$tmp/wrk.restarts")
non2xx=$(sed -nE 's/^ *Non-2xx or 3xx responses: ([0-9]+)/\1/p' "$tmp/wrk.restarts")
requests=$(sed -nE 's/^ *([0-9]+) requests in .*/\1/p' "$tmp/wrk.restarts")
read -r median max < <(median_max "$tmp/latencies.load")
read -r idle_median idle_max < <(median_max "$tmp/latencies.idle")

printf '\ngraceful vs Go net/http: wrk -t2 -c50 -d%s GET /, then %d restarts under wrk -t2 -c50\n' \
    "$DURATION" "$RESTARTS"
printf '(%s, %d CPUs, shared: noisy)\n\n' "$(uname -r)" "$(nproc)"
printf '| measure | graceful | Go net/http | result | target |\n|---|---|---|---|---|\n'
printf '| requests/s, GET / | %.0f | %.0f | %.2fx Go | >= 0.8x |\n' "$g_rps" "$go_rps" \
    "$(awk -v a="$g_rps" -v b="$go_rps" 'BEGIN { print a / b }')"
printf '| SIGHUP -> new copy serving, idle, median (max) of 5 | %s ms (%s ms) | | | < 50 ms |\n' \
    "$idle_median" "$idle_max"
printf '| SIGHUP -> new copy serving, under wrk, median (max) of %d | %s ms (%s ms) | | | < 50 ms |\n' \
    "$RESTARTS" "$median" "$max"
printf '| errors across %d restarts (%s requests) | socket %s, non-2xx %s | | | 0 |\n' \
    "$RESTARTS" "${requests:-?}" "${socket_errors:-0 0 0 0}" "${non2xx:-0}"
printf '\n(socket errors: connect read write timeout)\n'
