#!/usr/bin/env bash
# tests/perf/sockets.sh: echo servers side by side on loopback, in one run, alternating round by
# round (issue 12): Go's goroutine-per-connection server (built here), echoserver (a thread per
# connection), echoloop with one epoll loop and with one loop per CPU (--loops 0, both --share
# modes), and socat PIPE. Each is loaded by `ipcbench echo --threads N` (a client that is not the
# bottleneck) and by a Go client (a goroutine per connection, built here), so that our own load
# generator does not flatter our own servers; then echoloop --loops 1 and Go with GOMAXPROCS=1,
# each pinned to one CPU. Prints the medians, ratios to Go, and the targets of issue 12.
#
# Usage: tests/perf/sockets.sh            (after: CI=1 cmake --preset release && cmake --build
#                                           --preset release --target ipcbench echoserver echoloop)
#   BIN=dir        where ipcbench, echoserver and echoloop are (default: build/bin)
#   ROUNDS=3       rounds; each round runs every server once, in turn; the median is reported
#   CONNS=50 REQUESTS=200000 SIZE=32 DURATION=10s   the line load; DURATION caps each run
#   THREADS=nproc  ipcbench's client event loops (--threads); it is also run with --threads 1
#   BULK=1G        the stream through one connection (BULK=0: skip the bulk runs)
# Not run by CTest: a benchmark is not a test. Figures on a shared machine are noisy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$(cd "${BIN:-$here/../../build/bin}" && pwd)
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
REQUESTS=${REQUESTS:-200000}
SIZE=${SIZE:-32}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-$(nproc)}
BULK=${BULK:-1G}

say() { echo "sockets.sh: $*" >&2; }
for tool in ipcbench echoserver echoloop; do
    [[ -x $BIN/$tool ]] || { say "$BIN/$tool is missing: build the release preset (target $tool)"; exit 1; }
done
for tool in go socat taskset; do
    command -v "$tool" >/dev/null || { say "$tool is missing (scripts/deps.sh --perf)"; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ipckit-perf.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# ---- the Go peers: a goroutine per connection, bufio framing, as the notes' Socket part ----
mkdir -p "$work/goserver" "$work/goclient"
cat >"$work/goserver/main.go" <<'EOF'
// A goroutine-per-connection line echo server: bufio.Reader cuts lines, bufio.Writer batches
// the echo, flushed whenever no more input is buffered.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("goecho: listening on tcp %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}

func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	for {
		line, err := r.ReadSlice('\n') // no copy; a line longer than the buffer comes in parts
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				return
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			w.Flush()
			return
		}
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}
EOF
cat >"$work/goclient/main.go" <<'EOF'
// ipcbench echo's loads written the Go way. bench: a goroutine per connection, each sends a line
// and reads its echo (io.ReadFull), until REQUESTS in all or DURATION. bulk: one connection, a
// goroutine writes 4 KiB lines while main reads the echo back and compares. Prints JSON.
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func dial(addr string) net.Conn {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return c
}

func main() {
	if os.Args[1] == "bulk" {
		bulk(os.Args[2], os.Args[3], os.Args[4])
		return
	}
	addr := os.Args[2]
	conns, _ := strconv.Atoi(os.Args[3])
	requests, _ := strconv.ParseInt(os.Args[4], 10, 64)
	size, _ := strconv.Atoi(os.Args[5])
	duration, _ := time.ParseDuration(os.Args[6])
	cs := make([]net.Conn, conns)
	for i := range cs {
		cs[i] = dial(addr)
	}
	var issued int64
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range cs {
		wg.Add(1)
		go func(i int, c net.Conn) {
			defer wg.Done()
			line := make([]byte, size)
			for j := range line {
				line[j] = byte('a' + (i+j)%26)
			}
			line[size-1] = '\n'
			buf := make([]byte, size)
			for atomic.AddInt64(&issued, 1) <= requests && time.Since(start) < duration {
				t := time.Now()
				if _, err := c.Write(line); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, line) {
					fmt.Fprintln(os.Stderr, "bad echo", err)
					os.Exit(1)
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		}(i, c)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	n := len(all)
	fmt.Printf("{\"mode\":\"bench\",\"client\":\"go\",\"requests\":%d,\"seconds\":%.3f,\"requests_per_sec\":%.0f,"+
		"\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
		n, secs, float64(n)/secs, us(all[(n-1)/2]), us(all[(n*99-1)/100]), us(all[n-1]))
}

func bulk(addr, total, limit string) {
	wanted, _ := strconv.ParseInt(total, 10, 64)
	duration, _ := time.ParseDuration(limit)
	c := dial(addr).(*net.TCPConn)
	const line = 4096
	pattern := make([]byte, 256*line) // 1 MiB of lines that differ, as ipcbench echo --bulk sends
	for k := 0; k < 256; k++ {
		for i := 0; i < line-1; i++ {
			pattern[k*line+i] = byte('!' + (k+i)%94)
		}
		pattern[k*line+line-1] = '\n'
	}
	start := time.Now()
	sent := make(chan int64, 1)
	go func() {
		var off int64
		for off < wanted && time.Since(start) < duration {
			n := int64(len(pattern))
			if wanted-off < n {
				n = wanted - off
			}
			if _, err := c.Write(pattern[:n]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			off += n
		}
		c.CloseWrite()
		sent <- off
	}()
	buf := make([]byte, 256<<10)
	var got int64
	for {
		n, err := c.Read(buf)
		for done := 0; done < n; {
			at := int(got % int64(len(pattern)))
			piece := n - done
			if piece > len(pattern)-at {
				piece = len(pattern) - at
			}
			if !bytes.Equal(buf[done:done+piece], pattern[at:at+piece]) {
				fmt.Fprintln(os.Stderr, "bad echo at", got)
				os.Exit(1)
			}
			done += piece
			got += int64(piece)
		}
		if err != nil {
			break
		}
	}
	if off := <-sent; got != off {
		fmt.Fprintln(os.Stderr, "short echo", got, "of", off)
		os.Exit(1)
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("{\"mode\":\"bulk\",\"client\":\"go\",\"bytes\":%d,\"seconds\":%.3f,\"gib_per_sec\":%.3f}\n",
		got, secs, float64(got)/secs/(1<<30))
}
EOF
echo "building the Go peers (go $(go env GOVERSION))..." >&2

for prog in goserver goclient; do
    (cd "$work/$prog" && GOCACHE="$work/gocache" GOPATH="$work/gopath" GOPROXY=off GOFLAGS="" \
        go build -o "$work/bin/$prog" main.go)
done

# ---- which servers can run here ----

# The CPUs this script may use: the one-CPU servers get the first, their clients the rest.
mapfile -t cpus < <(taskset -cp $$ | sed 's/.*: //' | tr ',' '\n' |
    awk -F- '{ if (NF == 2) for (c = $1; c <= $2; c++) print c; else print $1 }')
cpu0=${cpus[0]}
rest=$(IFS=,; echo "${cpus[*]:1}")

servers=("go" "echoserver" "echoloop 1 loop" "echoloop reuseport" "echoloop exclusive" "socat")
pinned=()
if [[ -n $rest ]]; then
    pinned=("go, 1 CPU" "echoloop 1 loop, 1 CPU")
else
    say "one CPU only: the pinned comparison (server on one CPU, client on the others) is skipped"
fi

# server_command NAME: sets `cmd` to the command line of the server NAME.
server_command() {
    local listen=(--listen 127.0.0.1:0)
    case $1 in
        go) cmd=("$work/bin/goserver" 127.0.0.1:0) ;;
        echoserver) cmd=("$BIN/echoserver" "${listen[@]}") ;;
        "echoloop 1 loop") cmd=("$BIN/echoloop" "${listen[@]}" --loops 1) ;;
        "echoloop reuseport") cmd=("$BIN/echoloop" "${listen[@]}" --loops 0 --share reuseport) ;;
        "echoloop exclusive") cmd=("$BIN/echoloop" "${listen[@]}" --loops 0 --share exclusive) ;;
        socat) cmd=(socat -d -d "TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128" PIPE) ;;
        # socat's default 8 KiB blocks can deadlock its PIPE under a stream (it blocks writing
        # its own full pipe, of which it is the only reader); -b 4096 (<= PIPE_BUF) cannot.
        "socat -b 4096") cmd=(socat -d -d -b 4096 "TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128" PIPE) ;;
        "go, 1 CPU") cmd=(env GOMAXPROCS=1 taskset -c "$cpu0" "$work/bin/goserver" 127.0.0.1:0) ;;
        "echoloop 1 loop, 1 CPU") cmd=(taskset -c "$cpu0" "$BIN/echoloop" "${listen[@]}" --loops 1) ;;
        *) say "no such server: $1"; exit 1 ;;
    esac
}

# start_server NAME: starts it (its output to files), waits (bounded) for its address. Sets
# ADDR to host:port and SERVER_PID (exec keeps the pid through env and taskset).
start_server() {
    local log="$work/server.log" err="$work/server.err" i
    server_command "$1"
    "${cmd[@]}" >"$log" 2>"$err" &
    SERVER_PID=$!
    pids+=("$SERVER_PID")
    for ((i = 0; i < 500; i++)); do
        ADDR=$(sed -n -E 's/.*(listening on tcp|listening on AF=2) ([0-9.]+:[0-9]+).*/\2/p' "$log" "$err" | head -n 1)
        [[ -n $ADDR ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.02
    done
    say "$1 did not start:"
    cat "$log" "$err" >&2
    exit 1
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# ---- the runs ----

field() { sed -n -E "s/.*\"$2\":([0-9.]+).*/\1/p" <<<"$1"; }

declare -A got  # "server|measure" -> the values of every round, space-separated
note() { got["$1|$2"]+="${3:-} "; }

# load SERVER CLIENT-LABEL CMD...: one line load; notes lines/s and p99 (and, from ipcbench, the
# CPU time of the client and of the server per line).
load() {
    local server=$1 label=$2 out secs
    shift 2
    out=$("$@") || { say "failed: $*"; exit 1; }
    note "$server" "$label rps" "$(field "$out" requests_per_sec)"
    note "$server" "$label p99" "$(field "$out" p99_us)"
    secs=$(field "$out" seconds)
    if [[ $label == ipcbench ]]; then
        note "$server" "client cpu" "$(awk -v c="$(field "$out" client_cpu_s)" -v s="$secs" 'BEGIN { printf "%.0f", 100 * c / s }')"
        note "$server" "server us" "$(awk -v c="$(field "$out" server_cpu_s)" -v n="$(field "$out" requests)" 'BEGIN { if (c == "") print ""; else printf "%.1f", 1e6 * c / n }')"
    fi
}

bulk() {
    local server=$1 out
    [[ $BULK != 0 ]] || return 0
    out=$("$BIN/ipcbench" echo --connect "$ADDR" --bulk "$BULK" --duration "$DURATION" --json) || { say "failed: ipcbench bulk on $server"; exit 1; }
    note "$server" "ipcbench gib" "$(field "$out" gib_per_sec)"
    out=$("$work/bin/goclient" bulk "$ADDR" "$(numfmt --from=iec "$BULK")" "$DURATION") || { say "failed: Go bulk on $server"; exit 1; }
    note "$server" "go gib" "$(field "$out" gib_per_sec)"
}

# measure SERVER: one round of every load on one server. The one-CPU servers' clients run on
# the other CPUs.
measure() {
    local server=$1 pin=()
    [[ $server == *"1 CPU" ]] && pin=(taskset -c "$rest")
    start_server "$server"
    local common=(--connect "$ADDR" --conns "$CONNS" --requests "$REQUESTS" --size "$SIZE" --duration "$DURATION" --json)
    load "$server" ipcbench "${pin[@]}" "$BIN/ipcbench" echo "${common[@]}" --threads "$THREADS" --server-pid "$SERVER_PID"
    load "$server" go "${pin[@]}" "$work/bin/goclient" bench "$ADDR" "$CONNS" "$REQUESTS" "$SIZE" "$DURATION"
    if [[ $server == go || $server == "echoloop reuseport" ]] && ((THREADS > 1)); then
        load "$server" "ipcbench-1" "$BIN/ipcbench" echo "${common[@]}" --threads 1
    fi
    if [[ $server != socat && ${#pin[@]} -eq 0 ]]; then bulk "$server"; fi
    stop_server
    if [[ $server == socat && $BULK != 0 ]]; then
        start_server "socat -b 4096"
        bulk socat
        stop_server
    fi
}

for ((round = 1; round <= ROUNDS; round++)); do
    for server in "${servers[@]}" "${pinned[@]}"; do
        say "round $round of $ROUNDS: $server"
        measure "$server"
    done
done

# ---- the report ----

median() {  # median SERVER MEASURE: the median of the rounds' values, or "-"
    local values
    read -r -a values <<<"${got["$1|$2"]:-}"
    if ((${#values[@]} == 0)); then echo -; return; fi
    printf '%s\n' "${values[@]}" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

printf '\nLoopback, %s connections x %s-byte lines, %s lines per run (cap %s); bulk %s in 4 KiB lines.\n' \
    "$CONNS" "$SIZE" "$REQUESTS" "$DURATION" "$BULK"
printf 'Medians of %s rounds, servers alternating; ipcbench with --threads %s; %s CPUs, %s.\n' \
    "$ROUNDS" "$THREADS" "$(nproc)" "$(uname -r)"
printf 'The "1 CPU" rows: the server pinned to CPU %s (Go with GOMAXPROCS=1), the clients to CPU %s.\n\n' "$cpu0" "${rest:--}"
row='| %-24s | %9s | %9s | %6s | %8s | %9s | %9s | %9s | %9s | %8s | %8s |\n'
# shellcheck disable=SC2059 # the format is the row above
printf "$row" server "ipcbench" "p99 us" "client" "server" "Go client" "p99 us" "ratio to" "ratio to" "ipcbench" "Go"
# shellcheck disable=SC2059
printf "$row" "" "lines/s" "" "CPU %" "us/line" "lines/s" "" "Go (ipcb)" "Go (Go)" "GiB/s" "GiB/s"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' -------------------------- ----------- ----------- -------- \
    ---------- ----------- ----------- ----------- ----------- ---------- ----------
for server in "${servers[@]}" "${pinned[@]}"; do
    go_row=go
    [[ $server == *"1 CPU" ]] && go_row="go, 1 CPU"
    # shellcheck disable=SC2059
    printf "$row" "$server" "$(median "$server" "ipcbench rps")" "$(median "$server" "ipcbench p99")" \
        "$(median "$server" "client cpu")" "$(median "$server" "server us")" "$(median "$server" "go rps")" \
        "$(median "$server" "go p99")" "$(ratio "$(median "$server" "ipcbench rps")" "$(median "$go_row" "ipcbench rps")")" \
        "$(ratio "$(median "$server" "go rps")" "$(median "$go_row" "go rps")")" \
        "$(median "$server" "ipcbench gib")" "$(median "$server" "go gib")"
done

# target LABEL A B [GOAL]: one line "label: a/b with each client (goal)".
target() {
    printf '  %-46s ipcbench %5s   Go client %5s%s\n' "$1" \
        "$(ratio "$(median "$2" "ipcbench rps")" "$(median "$3" "ipcbench rps")")" \
        "$(ratio "$(median "$2" "go rps")" "$(median "$3" "go rps")")" "${4:+   (target $4)}"
}
printf '\nIssue 12, lines/s ratios:\n'
target "echoloop --loops 0 --share reuseport / Go" "echoloop reuseport" go ">= 1.2"
target "echoloop --loops 0 --share exclusive / Go" "echoloop exclusive" go ">= 1.2"
target "echoloop --loops 1 / Go, one CPU each" "echoloop 1 loop, 1 CPU" "go, 1 CPU" ">= 1.0"
target "echoloop --loops 0 --share reuseport / socat" "echoloop reuseport" socat ">= 2.5"
target "echoloop --loops 1 / socat" "echoloop 1 loop" socat
target "echoserver (threads) / Go" echoserver go
printf '\nThe load generators (lines/s):\n'
printf '  %-58s %s\n' "ipcbench / Go client, on the Go server" "$(ratio "$(median go "ipcbench rps")" "$(median go "go rps")")"
for server in go "echoloop reuseport"; do
    printf '  %-58s %s\n' "ipcbench --threads $THREADS / --threads 1, on $server" \
        "$(ratio "$(median "$server" "ipcbench rps")" "$(median "$server" "ipcbench-1 rps")")"
done
printf '  (client CPU is in %% of one CPU: near 100 x --threads, the client and not the server was the limit)\n'
