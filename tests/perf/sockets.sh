#!/usr/bin/env bash
# Echo servers side by side on loopback, in one run: echoserver --model epoll and --model thread,
# a Go goroutine-per-connection server (built here), and socat PIPE. Each is loaded by
# echoclient --bench (50 connections, 32-byte lines) and --bulk 1G, and again by a Go client
# (the same loads, built here), so that our own load generator does not flatter our own server.
# Prints a table and ratios.
#
# Usage: tests/perf/sockets.sh            (after: CI=1 cmake --preset release &&
#                                           cmake --build --preset release --target echoclient echoserver)
#   BIN=dir         where echoclient and echoserver are (default: build/bin, the release preset's)
#   ROUNDS=3        runs of each measurement; the best is kept (the machine is shared: the best
#                   run is the one least disturbed by others)
#   CONNS=50 REQUESTS=200000 SIZE=32 BULK=1G DURATION=10s   the load; DURATION caps each run
# Not run by CTest: a benchmark is not a test. Figures on a shared machine are noisy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$(cd "${BIN:-$here/../../build/bin}" && pwd)
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
REQUESTS=${REQUESTS:-200000}
SIZE=${SIZE:-32}
BULK=${BULK:-1G}
DURATION=${DURATION:-10s}

[[ -x $BIN/echoclient ]] || { echo "sockets.sh: $BIN/echoclient is missing: build the release preset" >&2; exit 1; }
command -v go >/dev/null || { echo "sockets.sh: go is missing (apt-get install golang-go)" >&2; exit 1; }
command -v socat >/dev/null || { echo "sockets.sh: socat is missing" >&2; exit 1; }

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
// echoclient's loads written the Go way. bench: a goroutine per connection, each sends a line
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
	pattern := make([]byte, 256*line) // 1 MiB of lines that differ, as echoclient --bulk sends
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

# ---- servers ----

# start_server NAME CMD...: starts CMD (stdout to a file), waits (bounded) for its address.
# Sets ADDR to host:port.
start_server() {
    local name=$1 log="$work/$1.log" i
    shift
    "$@" >"$log" 2>"$work/$name.err" &
    pids+=($!)
    SERVER_PID=$!
    for ((i = 0; i < 500; i++)); do
        ADDR=$(sed -n -E 's/.*(listening on tcp|listening on AF=2) ([0-9.]+:[0-9]+).*/\2/p' "$log" "$work/$name.err" | head -n 1)
        [[ -n $ADDR ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.02
    done
    echo "sockets.sh: $name did not start:" >&2
    cat "$log" "$work/$name.err" >&2
    return 1
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

field() { sed -n -E "s/.*\"$2\":([0-9.]+).*/\1/p" <<<"$1"; }

# best_of CMD...: runs CMD ROUNDS times (each prints one JSON line); prints the line with the
# highest requests_per_sec or gib_per_sec.
best_of() {
    local best="" best_value=0 out value r
    for ((r = 0; r < ROUNDS; r++)); do
        out=$("$@") || { echo "sockets.sh: failed: $*" >&2; return 1; }
        value=$(field "$out" requests_per_sec)
        [[ -n $value ]] || value=$(field "$out" gib_per_sec)
        if awk -v a="$value" -v b="$best_value" 'BEGIN { exit !(a > b) }'; then
            best=$out
            best_value=$value
        fi
    done
    echo "$best"
}

declare -A rps p50 p99 maxl gib go_rps go_p50 go_p99 go_gib
bulk_bytes=$(numfmt --from=iec "$BULK")

measure() {
    local key=$1 bulk_server=$2
    shift 2
    local out
    out=$(best_of "$BIN/echoclient" --connect "$ADDR" --bench --conns "$CONNS" --requests "$REQUESTS" \
        --size "$SIZE" --duration "$DURATION" --json)
    rps[$key]=$(field "$out" requests_per_sec)
    p50[$key]=$(field "$out" p50_us)
    p99[$key]=$(field "$out" p99_us)
    maxl[$key]=$(field "$out" max_us)
    out=$(best_of "$work/bin/goclient" bench "$ADDR" "$CONNS" "$REQUESTS" "$SIZE" "$DURATION")
    go_rps[$key]=$(field "$out" requests_per_sec)
    go_p50[$key]=$(field "$out" p50_us)
    go_p99[$key]=$(field "$out" p99_us)
    if [[ $bulk_server == same ]]; then
        out=$(best_of "$BIN/echoclient" --connect "$ADDR" --bulk "$BULK" --duration "$DURATION" --json)
        gib[$key]=$(field "$out" gib_per_sec)
        out=$(best_of "$work/bin/goclient" bulk "$ADDR" "$bulk_bytes" "$DURATION")
        go_gib[$key]=$(field "$out" gib_per_sec)
    fi
}

order=()
have_echoserver=0
if [[ -x $BIN/echoserver ]]; then
    have_echoserver=1
    for model in epoll thread; do
        echo "measuring echoserver --model $model..." >&2
        start_server "echoserver-$model" "$BIN/echoserver" --listen 127.0.0.1:0 --model "$model"
        measure "echoserver $model" same
        stop_server
        order+=("echoserver $model")
    done
else
    echo "sockets.sh: $BIN/echoserver is not built: measuring the others only" >&2
fi

echo "measuring the Go server..." >&2
start_server go "$work/bin/goserver" 127.0.0.1:0
measure "go goroutines" same
stop_server
order+=("go goroutines")

# socat's default 8 KiB blocks can deadlock its PIPE under bulk load (it blocks writing its own
# full pipe, of which it is the only reader); -b 4096 (<= PIPE_BUF) cannot. Bench: as the issue says.
echo "measuring socat PIPE..." >&2
start_server socat socat -d -d TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
measure "socat PIPE" none
stop_server
start_server socat-b4096 socat -d -d -b 4096 TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
out=$(best_of "$BIN/echoclient" --connect "$ADDR" --bulk "$BULK" --duration "$DURATION" --json)
gib["socat PIPE"]=$(field "$out" gib_per_sec)
out=$(best_of "$work/bin/goclient" bulk "$ADDR" "$bulk_bytes" "$DURATION")
go_gib["socat PIPE"]=$(field "$out" gib_per_sec)
stop_server
order+=("socat PIPE")

# ---- report ----

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }

printf '\nLoopback, %s connections x %s-byte lines, %s requests (cap %s); bulk %s in %s-byte lines.\n' \
    "$CONNS" "$SIZE" "$REQUESTS" "$DURATION" "$BULK" 4096
printf 'Best of %s runs each; %s CPUs shared with other work: figures are noisy.\n\n' "$ROUNDS" "$(nproc)"
row='| %-17s | %-16s | %-8s | %-8s | %-8s | %-15s | %-8s | %-8s | %-16s | %-15s |\n'
# shellcheck disable=SC2059 # the format is the row above
printf "$row" server "echoclient req/s" p50_us p99_us max_us "Go client req/s" p50_us p99_us \
    "echoclient GiB/s" "Go client GiB/s"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------------- ------------------ ---------- ---------- \
    ---------- ----------------- ---------- ---------- ------------------ -----------------
for key in "${order[@]}"; do
    # shellcheck disable=SC2059
    printf "$row" "$key" "${rps[$key]}" "${p50[$key]}" "${p99[$key]}" "${maxl[$key]}" \
        "${go_rps[$key]}" "${go_p50[$key]}" "${go_p99[$key]}" "${gib[$key]:--}" "${go_gib[$key]:--}"
done

printf '\nRatios (target in brackets):\n'
if ((have_echoserver)); then
    for client in echoclient go; do
        if [[ $client == go ]]; then
            e=${go_rps[echoserver epoll]} t=${go_rps[echoserver thread]} g=${go_rps[go goroutines]} s=${go_rps[socat PIPE]}
        else
            e=${rps[echoserver epoll]} t=${rps[echoserver thread]} g=${rps[go goroutines]} s=${rps[socat PIPE]}
        fi
        printf '  %-10s client: epoll/Go %s (>= 1.2)   thread/Go %s (>= 0.8)   epoll/socat %s (>= 2.5)   thread/socat %s (>= 2.5)\n' \
            "$client" "$(ratio "$e" "$g")" "$(ratio "$t" "$g")" "$(ratio "$e" "$s")" "$(ratio "$t" "$s")"
    done
    printf '  bulk, echoclient client: epoll/Go %s (>= 0.95)   thread/Go %s (>= 0.95)\n' \
        "$(ratio "${gib[echoserver epoll]}" "${gib[go goroutines]}")" "$(ratio "${gib[echoserver thread]}" "${gib[go goroutines]}")"
    printf '  bulk, Go client:         epoll/Go %s (>= 0.95)   thread/Go %s (>= 0.95)\n' \
        "$(ratio "${go_gib[echoserver epoll]}" "${go_gib[go goroutines]}")" "$(ratio "${go_gib[echoserver thread]}" "${go_gib[go goroutines]}")"
else
    printf '  echoserver not built: only the peers were measured.\n'
fi
printf '  load generators on the Go server: echoclient/Go client %s requests/s, %s GiB/s\n' \
    "$(ratio "${rps[go goroutines]}" "${go_rps[go goroutines]}")" "$(ratio "${gib[go goroutines]}" "${go_gib[go goroutines]}")"
