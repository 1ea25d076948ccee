#!/usr/bin/env bash
# Benchmark of signals/graceful against a Go net/http hello server, in one run, with wrk. It
# prints the figures issue 12's targets need, and nothing else:
#   1. requests/s of GET / with wrk -t2 -c50, graceful and Go alternating (ROUNDS of each,
#      DURATION long), the medians and their ratio (target: graceful >= 1.0x Go);
#   2. SIGHUP -> the new copy's readiness line, over RESTARTS restarts on an idle server and
#      RESTARTS more under wrk -t2 -c50: median and max (target: median < 50 ms under load);
#   3. the socket errors and non-2xx answers wrk saw across the restarts under load (target: 0).
# Usage: tests/perf/graceful.sh   (TOOL: the graceful to measure, default build/bin/graceful of
#        the release preset; the Go programs are built here, offline, in a temp dir)
# Not run by CTest. On a shared machine the figures are noisy: compare ratios, run it twice.
#
# The restarts are driven by a small Go program (restarter.go below) that reads graceful's
# stdout with one read(2) per chunk and stamps each line with the monotonic clock as it arrives.
# (A shell `while read` loop reads a pipe one byte per read(2), and under load each of those
# waits for a CPU: it added its own tens of milliseconds to what it measured.)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOL=${TOOL:-$here/../../build/bin/graceful}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
RESTARTS=${RESTARTS:-20}
for cmd in wrk go curl; do
    command -v "$cmd" >/dev/null || { echo "graceful.sh: $cmd is needed" >&2; exit 1; }
done
[[ -x $TOOL ]] || { echo "graceful.sh: no $TOOL: build the release preset first" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/graceful-perf.XXXXXX")
pids=()
# Under set -e, a failing kill here (the process is gone already) would end the trap, and the
# script, with status 1 after a run that succeeded.
cleanup() {
    if [[ -s $tmp/graceful.pid ]]; then kill -TERM "$(cat "$tmp/graceful.pid")" 2>/dev/null || true; fi
    if ((${#pids[@]} > 0)); then kill -TERM "${pids[@]}" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# The peer: the hello server a Go programmer would write.
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

# restarter TOOL PIDFILE IDLE LOADED: starts TOOL (its stdout is a pipe to us), makes IDLE
# restarts, prints "idle MS..." (the milliseconds from each SIGHUP to the new copy's readiness
# line), then "load-now URL" and waits for a line on stdin (the script starts wrk), makes LOADED
# restarts, prints "load MS...". Each restart waits for the old copy's "drained, exit 0" line.
cat >"$tmp/restarter.go" <<'GO'
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type line struct {
	at   time.Time
	text string
}

func main() {
	idle, _ := strconv.Atoi(os.Args[3])
	loaded, _ := strconv.Atoi(os.Args[4])
	cmd := exec.Command(os.Args[1], "--listen", "127.0.0.1:0", "--pidfile", os.Args[2])
	out, err := cmd.StdoutPipe()
	if err != nil {
		panic(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	lines := make(chan line, 1000)
	go func() {
		r := bufio.NewReaderSize(out, 65536)
		for {
			text, err := r.ReadString('\n')
			if err != nil {
				close(lines)
				return
			}
			lines <- line{time.Now(), strings.TrimSuffix(text, "\n")}
		}
	}()
	wait := func(re *regexp.Regexp) line {
		deadline := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					panic("graceful's stdout closed")
				}
				if re.MatchString(l.text) {
					return l
				}
			case <-deadline:
				panic("timed out waiting for " + re.String())
			}
		}
	}
	first := wait(regexp.MustCompile(`^serving on (\S+): pid \d+, generation 1$`))
	url := "http://" + strings.Fields(first.text)[2]
	url = strings.TrimSuffix(url, ":") + "/"
	gen := 1
	restart := func() float64 {
		text, err := os.ReadFile(os.Args[2])
		if err != nil {
			panic(err)
		}
		old, _ := strconv.Atoi(strings.TrimSpace(string(text)))
		gen++
		sent := time.Now()
		if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
			panic(err)
		}
		ready := wait(regexp.MustCompile(fmt.Sprintf(`^serving on .*, generation %d$`, gen)))
		wait(regexp.MustCompile(fmt.Sprintf(`^pid %d: drained, exit 0$`, old)))
		return float64(ready.at.Sub(sent).Microseconds()) / 1000
	}
	series := func(name string, n int) {
		fmt.Print(name)
		for i := 0; i < n; i++ {
			fmt.Printf(" %.2f", restart())
		}
		fmt.Println()
	}
	series("idle", idle)
	fmt.Println("load-now", url)
	bufio.NewReader(os.Stdin).ReadString('\n')
	series("load", loaded)
}
GO
(cd "$tmp" && for prog in hello restarter; do
    GOCACHE=$tmp/gocache GOPATH=$tmp/gopath GOFLAGS=-mod=mod GOPROXY=off GO111MODULE=off \
        go build -o "$tmp/$prog" "$prog.go"
done)

# wait_for FILE REGEX: until a line of FILE matches (bounded: 20 s).
wait_for() {
    local deadline=$((SECONDS + 20))
    until grep -E -q -- "$2" "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "graceful.sh: timed out waiting for /$2/ in $1" >&2; exit 1; }
        sleep 0.01
    done
}
rps() { sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' "$1"; }
# "median max" of the numbers on stdin, one per line.
median_max() {
    sort -n | awk '{ v[NR] = $1 } END {
        printf "%s %s\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[NR] }'
}

# 1. Throughput, alternating, each server started fresh for its round.
for ((round = 1; round <= ROUNDS; round++)); do
    for server in graceful go; do
        if [[ $server == go ]]; then
            "$tmp/hello" >"$tmp/serve.log" &
        else
            "$TOOL" --listen 127.0.0.1:0 >"$tmp/serve.log" &
        fi
        pid=$!
        wait_for "$tmp/serve.log" '^serving on '
        url="http://$(sed -nE '1s/^serving on ([0-9.]+:[0-9]+).*/\1/p' "$tmp/serve.log")/"
        curl -sS --fail -o /dev/null "$url"
        wrk -t2 -c50 -d"$DURATION" "$url" >"$tmp/wrk.$server.$round"
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
        rps "$tmp/wrk.$server.$round" >>"$tmp/rps.$server"
    done
done
read -r g_rps _ < <(median_max <"$tmp/rps.graceful")
read -r go_rps _ < <(median_max <"$tmp/rps.go")

# 2 and 3. Restarts: idle, then under wrk -t2 -c50 (wrk runs until the restarts are done).
coproc restarter { "$tmp/restarter" "$TOOL" "$tmp/graceful.pid" "$RESTARTS" "$RESTARTS" 2>"$tmp/restarter.err"; }
pids+=("$restarter_PID")
read -r -u "${restarter[0]}" -a idle
read -r -u "${restarter[0]}" _ url
wrk -t2 -c50 -d600s "$url" >"$tmp/wrk.restarts" &
wrk_pid=$!
pids+=("$wrk_pid")
sleep 0.5 # let wrk open its connections: this wait is for load, not for ordering
echo go >&"${restarter[1]}"
read -r -u "${restarter[0]}" -a load
kill -INT "$wrk_pid" # wrk prints its report on SIGINT
wait "$wrk_pid" || true
socket_errors=$(sed -nE 's/^ *Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)/\1 \2 \3 \4/p' "$tmp/wrk.restarts")
non2xx=$(sed -nE 's/^ *Non-2xx or 3xx responses: ([0-9]+)/\1/p' "$tmp/wrk.restarts")
requests=$(sed -nE 's/^ *([0-9]+) requests in .*/\1/p' "$tmp/wrk.restarts")
read -r idle_median idle_max < <(printf '%s\n' "${idle[@]:1}" | median_max)
read -r load_median load_max < <(printf '%s\n' "${load[@]:1}" | median_max)

printf '\ngraceful vs Go net/http: wrk -t2 -c50 -d%s GET /, %d rounds alternating; %d restarts idle, %d under wrk -t2 -c50\n' \
    "$DURATION" "$ROUNDS" "$RESTARTS" "$RESTARTS"
printf '(%s, %d CPUs; on a shared machine: noisy)\n\n' "$(uname -r)" "$(nproc)"
printf '| measure | graceful | Go net/http | result | target |\n|---|---|---|---|---|\n'
printf '| requests/s, GET /, median of %d | %.0f | %.0f | %.2fx Go | >= 1.0x |\n' "$ROUNDS" \
    "$g_rps" "$go_rps" "$(awk -v a="$g_rps" -v b="$go_rps" 'BEGIN { print a / b }')"
printf '| SIGHUP -> new copy serving, idle, median (max) of %d | %s ms (%s ms) | | | |\n' \
    "$RESTARTS" "$idle_median" "$idle_max"
printf '| SIGHUP -> new copy serving, under wrk, median (max) of %d | %s ms (%s ms) | | | < 50 ms |\n' \
    "$RESTARTS" "$load_median" "$load_max"
printf '| errors across %d restarts under wrk (%s requests) | socket %s, non-2xx %s | | | 0 |\n' \
    "$RESTARTS" "${requests:-?}" "${socket_errors:-0 0 0 0}" "${non2xx:-0}"
printf '\n(socket errors: connect read write timeout)\n'
