#!/usr/bin/env bash
# tests/perf/pipes.sh: `ipcbench pipe` side by side with what a user would compare it with:
# Go's io.Pipe and os.Pipe (built here with Debian's golang-go) and a bare C pipe loop (cc).
# Go's copy of the same chunks in one goroutine is its own limit, as memcpy is ipcbench's.
# Every program moves the same bytes in the same chunks and checks the same checksum on arrival.
# Prints GiB/s (best of REPS runs, interleaved) and the ratios the pipes issue asks for:
# mem_pipe vs Go io.Pipe, the pipe(2) paths vs the bare C loop, --cpu same vs split.
# Usage: tests/perf/pipes.sh            env: BIN (build/bin), SIZE (1073741824), CHUNK (65536), REPS (3)
# Not run by CTest. The machine is shared with other work: read the figures as noisy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${BIN:-$here/../../build/bin}
SIZE=${SIZE:-1073741824}
CHUNK=${CHUNK:-65536}
REPS=${REPS:-3}
ipcbench=$BIN/ipcbench
[[ -x $ipcbench ]] || { echo "pipes.sh: no $ipcbench: build the release preset first (target ipcbench)" >&2; exit 1; }
for tool in go cc taskset; do
    command -v "$tool" >/dev/null || { echo "pipes.sh: $tool is missing" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pipes-perf.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- the peers ---------------------------------------------------------------------------------
mkdir -p "$tmp/gopipe"
cat >"$tmp/gopipe/go.mod" <<'GOMOD'
module gopipe

go 1.19
GOMOD
cat >"$tmp/gopipe/main.go" <<'GOSRC'
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// fold: the sum of the little-endian 64-bit words, then the tail bytes. Four sums and a
// shrinking slice with constant indices, so the compiler drops the bounds checks.
func fold(b []byte) uint64 {
	var s0, s1, s2, s3 uint64
	for len(b) >= 32 {
		s0 += binary.LittleEndian.Uint64(b[0:8])
		s1 += binary.LittleEndian.Uint64(b[8:16])
		s2 += binary.LittleEndian.Uint64(b[16:24])
		s3 += binary.LittleEndian.Uint64(b[24:32])
		b = b[32:]
	}
	for len(b) >= 8 {
		s0 += binary.LittleEndian.Uint64(b[0:8])
		b = b[8:]
	}
	for _, c := range b {
		s0 += uint64(c)
	}
	return s0 + s1 + s2 + s3
}

func main() {
	mode := flag.String("mode", "io", "io (io.Pipe), os (os.Pipe) or copy (one goroutine, no pipe)")
	size := flag.Int64("size", 1<<30, "bytes")
	chunk := flag.Int64("chunk", 64<<10, "bytes per write and read")
	flag.Parse()
	src := make([]byte, *chunk*16)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range src {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		src[i] = byte(x >> 32)
	}
	n := (*size + *chunk - 1) / *chunk
	piece := func(i int64) []byte {
		l := *chunk
		if rest := *size - i**chunk; rest < l {
			l = rest
		}
		off := (i % 16) * *chunk
		return src[off : off+l]
	}
	var want uint64
	for i := int64(0); i < n; i++ {
		want = want*0x100000001B3 + fold(piece(i))
	}
	buf := make([]byte, *chunk)
	if *mode == "copy" { // the limit: one goroutine copies each chunk and checks it
		start := time.Now()
		var got uint64
		for i := int64(0); i < n; i++ {
			p := piece(i)
			b := buf[:len(p)]
			copy(b, p)
			got = got*0x100000001B3 + fold(b)
		}
		secs := time.Since(start).Seconds()
		if got != want {
			fmt.Fprintln(os.Stderr, "checksum mismatch")
			os.Exit(1)
		}
		fmt.Printf("%.6f %.3f\n", secs, float64(*size)/float64(1<<30)/secs)
		return
	}
	var r io.ReadCloser
	var w io.WriteCloser
	if *mode == "io" {
		r, w = io.Pipe()
	} else {
		pr, pw, err := os.Pipe()
		if err != nil {
			panic(err)
		}
		r, w = pr, pw
	}
	start := time.Now()
	go func() {
		for i := int64(0); i < n; i++ {
			if _, err := w.Write(piece(i)); err != nil {
				panic(err)
			}
		}
		w.Close()
	}()
	var got uint64
	for i := int64(0); i < n; i++ {
		b := buf[:len(piece(i))]
		if _, err := io.ReadFull(r, b); err != nil {
			panic(err)
		}
		got = got*0x100000001B3 + fold(b)
	}
	if k, _ := r.Read(buf[:1]); k != 0 {
		panic("extra bytes")
	}
	secs := time.Since(start).Seconds()
	if got != want {
		fmt.Fprintln(os.Stderr, "checksum mismatch")
		os.Exit(1)
	}
	fmt.Printf("%.6f %.3f\n", secs, float64(*size)/float64(1<<30)/secs)
}
GOSRC
cat >"$tmp/cpipe.c" <<'CSRC'
/* The bare C pipe loop: write(2) chunks into a pipe, read(2) them out, checksum what arrived. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t size, chunk;
static unsigned char *src;
static int fds[2];
static int writer_cpu = -1, reader_cpu = -1;

static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) == -1) { perror("sched_setaffinity"); exit(1); }
}

static uint64_t fold(const unsigned char *p, size_t n) {
    uint64_t sum = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { uint64_t w; memcpy(&w, p + i, 8); sum += w; }
    for (; i < n; i++) sum += p[i];
    return sum;
}

static size_t piece(uint64_t i, const unsigned char **p) {
    uint64_t len = size - i * chunk < chunk ? size - i * chunk : chunk;
    *p = src + (i % 16) * chunk;
    return len;
}

static void *writer(void *arg) {
    (void)arg;
    pin(writer_cpu);
    uint64_t n = (size + chunk - 1) / chunk;
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *p;
        size_t len = piece(i, &p);
        while (len > 0) {
            ssize_t w = write(fds[1], p, len);
            if (w == -1) { perror("write"); exit(1); }
            p += w;
            len -= (size_t)w;
        }
    }
    close(fds[1]);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: cpipe procs|threads SIZE CHUNK [WCPU RCPU]\n"); return 2; }
    size = strtoull(argv[2], NULL, 10);
    chunk = strtoull(argv[3], NULL, 10);
    if (argc >= 6) { writer_cpu = atoi(argv[4]); reader_cpu = atoi(argv[5]); }
    src = malloc(chunk * 16);
    unsigned char *buf = malloc(chunk);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (uint64_t i = 0; i < chunk * 16; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        src[i] = (unsigned char)(x >> 32);
    }
    uint64_t n = (size + chunk - 1) / chunk, want = 0, got = 0;
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *p;
        size_t len = piece(i, &p);
        want = want * 0x100000001B3ull + fold(p, len);
    }
    pin(reader_cpu);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (pipe(fds) == -1) { perror("pipe"); return 1; }
    pthread_t t;
    pid_t pid = -1;
    if (strcmp(argv[1], "threads") == 0) {
        if (pthread_create(&t, NULL, writer, NULL) != 0) { fprintf(stderr, "pthread_create failed\n"); return 1; }
    } else {
        pid = fork();
        if (pid == -1) { perror("fork"); return 1; }
        if (pid == 0) { close(fds[0]); writer(NULL); _exit(0); }
        close(fds[1]);
    }
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *p;
        size_t len = piece(i, &p), have = 0;
        while (have < len) {
            ssize_t r = read(fds[0], buf + have, len - have);
            if (r <= 0) { fprintf(stderr, "read: short\n"); return 1; }
            have += (size_t)r;
        }
        got = got * 0x100000001B3ull + fold(buf, len);
    }
    if (read(fds[0], buf, 1) != 0) { fprintf(stderr, "extra bytes\n"); return 1; }
    if (pid > 0) waitpid(pid, NULL, 0); else pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (got != want) { fprintf(stderr, "checksum mismatch\n"); return 1; }
    printf("%.6f %.3f\n", secs, (double)size / (double)(1 << 30) / secs);
    return 0;
}
CSRC
echo "building the peers in $tmp ..." >&2
(cd "$tmp/gopipe" && GOCACHE="$tmp/gocache" GOPATH="$tmp/gopath" GOPROXY=off GOFLAGS='' \
    go build -o "$tmp/gopipe.bin" .)
# -O3: what CMake's Release build (ipcbench) uses, so the checksum loop is compiled alike.
cc -O3 -pthread -Wall -Wextra -o "$tmp/cpipe" "$tmp/cpipe.c"

# CPUs this script may use: "same" puts both ends on the first, "split" on the first two.
mapfile -t cpus < <(taskset -cp $$ | sed 's/.*: //' | tr ',' '\n' |
    awk -F- '{ if (NF == 2) for (c = $1; c <= $2; c++) print c; else print $1 }')
cpu0=${cpus[0]}
cpu1=${cpus[1]:-}

# --- the runs ----------------------------------------------------------------------------------
declare -A best  # "row|cpu" -> best GiB/s

note() {  # note ROW CPU GIBS: keep the best figure
    local key="$1|$2"
    if [[ -z ${best[$key]:-} ]] || awk -v a="$3" -v b="${best[$key]}" 'BEGIN { exit !(a > b) }'; then
        best[$key]=$3
    fi
}

rate_of() {  # rate_of JSON PATH: the gib_per_s of one result of ipcbench pipe --json
    grep -o "\"path\": \"$2\", \"seconds\": [0-9.]*, \"gib_per_s\": [0-9.]*" <<<"$1" | sed 's/.*: //'
}

placements=(any same)
[[ -n $cpu1 ]] && placements+=(split)

for ((rep = 1; rep <= REPS; rep++)); do
    echo "run $rep of $REPS ..." >&2
    for cpu in "${placements[@]}"; do
        json=$("$ipcbench" pipe --size "$SIZE" --chunk "$CHUNK" --cpu "$cpu" --wait all --json)
        note "memcpy (ipcbench)" "$cpu" "$(rate_of "$json" "memcpy, 1 thread")"
        note "pipe(2) processes (ipcbench)" "$cpu" "$(rate_of "$json" "pipe(2), 2 processes")"
        note "pipe(2) threads (ipcbench)" "$cpu" "$(rate_of "$json" "pipe(2), 2 threads")"
        for wait in adaptive spin block; do
            note "mem_pipe --wait $wait (ipcbench)" "$cpu" "$(rate_of "$json" "mem_pipe $wait")"
        done
        pins=()
        [[ $cpu == same ]] && pins=("$cpu0" "$cpu0")
        [[ $cpu == split ]] && pins=("$cpu0" "$cpu1")
        for mode in procs threads; do
            out=$("$tmp/cpipe" "$mode" "$SIZE" "$CHUNK" "${pins[@]}")
            note "bare C pipe loop, $mode" "$cpu" "${out#* }"
        done
        if [[ $cpu != split ]]; then  # Go places goroutines itself: only all or one CPU
            run=("$tmp/gopipe.bin")
            [[ $cpu == same ]] && run=(taskset -c "$cpu0" "$tmp/gopipe.bin")
            for mode in copy io os; do
                out=$("${run[@]}" -mode "$mode" -size "$SIZE" -chunk "$CHUNK")
                case $mode in
                    copy) note "Go copy (its memcpy)" "$cpu" "${out#* }" ;;
                    *) note "Go $mode.Pipe" "$cpu" "${out#* }" ;;
                esac
            done
        fi
    done
done

# --- the report --------------------------------------------------------------------------------
get() { echo "${best["$1|$2"]:--}"; }
ratio() {  # ratio A B: A/B with two decimals, or - when either is missing
    if [[ $1 == - || $2 == - ]]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi
}

printf '\n%s bytes in %s-byte chunks; GiB/s, best of %s; %s; shared machine: noisy\n' \
    "$SIZE" "$CHUNK" "$REPS" "$(nproc) CPUs, $(uname -r)"
printf '%-36s %8s %8s %8s\n' path any same split
rows=("memcpy (ipcbench)" "Go copy (its memcpy)" "mem_pipe --wait adaptive (ipcbench)"
    "mem_pipe --wait spin (ipcbench)" "mem_pipe --wait block (ipcbench)" "Go io.Pipe"
    "pipe(2) processes (ipcbench)" "bare C pipe loop, procs" "pipe(2) threads (ipcbench)"
    "bare C pipe loop, threads" "Go os.Pipe")
for row in "${rows[@]}"; do
    printf '%-36s %8s %8s %8s\n' "$row" "$(get "$row" any)" "$(get "$row" same)" "$(get "$row" split)"
done

printf '\n%-44s %8s %8s %8s  %s\n' ratio any same split target
ratio_row() {  # ratio_row LABEL ROW_A ROW_B TARGET
    printf '%-44s %8s %8s %8s  %s\n' "$1" "$(ratio "$(get "$2" any)" "$(get "$3" any)")" \
        "$(ratio "$(get "$2" same)" "$(get "$3" same)")" "$(ratio "$(get "$2" split)" "$(get "$3" split)")" "$4"
}
ratio_row "mem_pipe adaptive / Go io.Pipe" "mem_pipe --wait adaptive (ipcbench)" "Go io.Pipe" ">= 1"
ratio_row "mem_pipe spin / Go io.Pipe" "mem_pipe --wait spin (ipcbench)" "Go io.Pipe" ""
ratio_row "mem_pipe block / Go io.Pipe" "mem_pipe --wait block (ipcbench)" "Go io.Pipe" "(a wakeup per hand-off)"
ratio_row "pipe(2) processes / bare C loop" "pipe(2) processes (ipcbench)" "bare C pipe loop, procs" ">= 0.95"
ratio_row "pipe(2) threads / bare C loop" "pipe(2) threads (ipcbench)" "bare C pipe loop, threads" ">= 0.95"
ratio_row "mem_pipe adaptive / memcpy" "mem_pipe --wait adaptive (ipcbench)" "memcpy (ipcbench)" ""
ratio_row "Go io.Pipe / Go copy" "Go io.Pipe" "Go copy (its memcpy)" ""
printf '\n%-44s %8s\n' "--cpu same / split" ratio
for row in "pipe(2) processes (ipcbench)" "pipe(2) threads (ipcbench)" "mem_pipe --wait adaptive (ipcbench)" \
    "mem_pipe --wait spin (ipcbench)" "mem_pipe --wait block (ipcbench)" "bare C pipe loop, procs"; do
    printf '%-44s %8s\n' "$row" "$(ratio "$(get "$row" same)" "$(get "$row" split)")"
done
