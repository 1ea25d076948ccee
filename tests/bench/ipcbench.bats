#!/usr/bin/env bats
# ipcbench: the measurements of ipckit. Every run here is small, and no timing is ever asserted
# (benchmarks with figures belong to tests/perf/): what is checked is that each mode moves the
# bytes it claims, verifies them, reports every column, and fails clearly.
# `echo` runs against socat servers (PIPE echoes; other programs misbehave on purpose), and
# against echoserver and echoloop when they are built beside it.
load ../helpers/ipc

bats_require_minimum_version 1.5.0

# start_socat NAME ADDRESS1 ADDRESS2: socat -d -d in the background; waits for its "listening
# on" line on stderr. Sets SOCAT_PID, and PORT for a TCP listener.
start_socat() {
    local name=$1
    shift
    bg_start "$name" socat -d -d "$@"
    SOCAT_PID=$BG_PID
    wait_for_line "$(bg_err "$name")" ' listening on ' 10
    PORT=$(sed -n 's/.* listening on AF=[0-9]* .*:\([0-9][0-9]*\)$/\1/p' "$(bg_err "$name")" | head -n 1)
}

# server_up NAME TOOL ARGS...: $BIN/TOOL in the background (skips when it is not built); sets
# SERVER_PID, and ADDR from its readiness line "TOOL: listening on NETWORK ADDR".
server_up() {
    local name=$1 tool=$2
    shift 2
    [[ -x $BIN/$tool ]] || skip "$tool not built"
    bg_start "$name" "$BIN/$tool" "$@"
    SERVER_PID=$BG_PID
    wait_for_line "$(bg_out "$name")" "^$tool: listening on " 10
    ADDR=$(sed -n "s/^$tool: listening on [a-z0-9]* //p" "$(bg_out "$name")" | head -n 1)
}

teardown() {
    # A listener stopped to keep its backlog full cannot act on SIGTERM until it continues.
    if [[ -n ${STOPPED_PID:-} ]]; then kill -CONT "$STOPPED_PID" 2>/dev/null || true; fi
    bg_stop_all
}

# ---- echo: the request load (what echoclient --bench did) ----

@test "echo: small run against socat PIPE prints the table" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --conns 4 --requests 2000
    assert_success
    assert_line --regexp '^network +address +conns +size +requests +seconds +requests/s +p50_us +p99_us +max_us$'
    assert_line --regexp "^tcp +127\.0\.0\.1:$PORT +4 +32 +2000 +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$"
    assert_line --regexp '^client: 1 event loop, [0-9.]+ s CPU \([0-9]+% of one CPU, [0-9.]+[nu]?s per request\); server: CPU not measured \(--server-pid\)$'
}

@test "echo --json over a unix socket" {
    sock=$BATS_TEST_TMPDIR/echo.sock
    start_socat echo UNIX-LISTEN:"$sock",fork,backlog=128 PIPE
    run "$TOOL" echo --network unix --connect "$sock" --conns 3 --requests 500 --size 100 --json
    assert_success
    assert_output --regexp '^\{"mode":"bench","network":"unix",.*"conns":3,"size":100,"requests":500,"seconds":[0-9.]+,"requests_per_sec":[0-9]+,"p50_us":[0-9.]+,"p99_us":[0-9.]+,"max_us":[0-9.]+\}$'
    assert_output --partial '"threads":1,"client_cpu_s":'
    assert_output --partial '"server_cpu_s":null,'
}

@test "echo: a server that answers something else fails the run" {
    start_socat other TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 \
        SYSTEM:'while read -r l; do echo "${l}X" | cut -c2-; done'
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --conns 2 --requests 10
    assert_failure 1
    assert_output --regexp '^ipcbench: bench: connection [01]: the echo differs: sent ".*", got ".*"$'
}

@test "echo: a server that never answers hits the deadline" {
    start_socat mute TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 SYSTEM:'cat >/dev/null'
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --conns 2 --requests 10 --deadline 300ms
    assert_failure 1
    assert_output "ipcbench: bench: no echo for 300ms (--deadline) with 2 requests in flight"
}

# ---- echo --threads: a client that is not the bottleneck (issue 12) ----

@test "echo --threads: the loops share the connections and the requests, exactly" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --conns 7 --threads 3 --requests 1001
    assert_success
    assert_line --regexp "^tcp +127\.0\.0\.1:$PORT +7 +32 +1001 +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$"
    assert_line --regexp '^client: 3 event loops, '
    # Fewer requests than connections: some connections send nothing, and that is fine.
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --conns 4 --threads 4 --requests 2 --json
    assert_success
    assert_output --regexp '"threads":4,.*"conns":4,"size":32,"requests":2,'
}

@test "echo --threads: one loop's failure stops them all, with one line" {
    start_socat mute TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 SYSTEM:'cat >/dev/null'
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --conns 4 --threads 2 --requests 100 --deadline 300ms
    assert_failure 1
    assert_output "ipcbench: bench: no echo for 300ms (--deadline) with 2 requests in flight"
}

@test "echo --duration caps a long run; the requests done are counted" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --conns 2 --threads 2 --requests 1000000000 --duration 200ms --json
    assert_success
    assert_output --regexp '"requests":[0-9]+,'
    refute_output --partial '"requests":1000000000,'
}

@test "echo --server-pid: the server's CPU time, from /proc" {
    server_up srv echoserver --listen 127.0.0.1:0
    run "$TOOL" echo --connect "$ADDR" --conns 4 --requests 2000 --server-pid "$SERVER_PID"
    assert_success
    assert_line --regexp "; server pid $SERVER_PID: [0-9.]+ s CPU \\([0-9]+% of one CPU, [0-9.]+[nu]?s per request\\)\$"
    run "$TOOL" echo --connect "$ADDR" --conns 2 --requests 100 --server-pid "$SERVER_PID" --json
    assert_success
    assert_output --regexp '"server_cpu_s":[0-9.]+,'
}

@test "echo: a server that is not there" {
    start_socat gone TCP-LISTEN:0,bind=127.0.0.1,reuseaddr PIPE
    kill "$SOCAT_PID"
    wait_for_exit "$SOCAT_PID"
    run "$TOOL" echo --connect "127.0.0.1:$PORT"
    assert_failure 1
    assert_output "ipcbench: connect(127.0.0.1:$PORT): Connection refused (ECONNREFUSED)"
    run "$TOOL" echo --network unix --connect "$BATS_TEST_TMPDIR/none.sock"
    assert_failure 1
    assert_output "ipcbench: connect($BATS_TEST_TMPDIR/none.sock): No such file or directory (ENOENT)"
    run "$TOOL" echo --connect 127.0.0.1:1 --server-pid 4000000
    assert_failure 1
    assert_output "ipcbench: --server-pid 4000000: read(/proc/4000000/stat): No such file or directory (ENOENT)"
}

# ---- echo --bulk: one verified stream (what echoclient --bulk did) ----
# socat runs with -b 4096: with its default 8 KiB blocks, socat's PIPE can block for good
# writing into its own full pipe (it is that pipe's only reader) once the echo backs up.

@test "echo --bulk 16M through socat PIPE: verified, GiB/s reported" {
    start_socat echo -b 4096 TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --bulk 16M
    assert_success
    assert_line --regexp '^network +address +line +bytes +seconds +GiB/s$'
    assert_line --regexp "^tcp +127\.0\.0\.1:$PORT +4096 +16777216 +[0-9.]+ +[0-9.]+$"
    assert_line --regexp '^client: [0-9.]+ s CPU \([0-9]+% of one CPU, [0-9.]+[num]?s per GiB\); server: CPU not measured'
}

@test "echo --bulk --duration stops early and still verifies what was sent" {
    start_socat echo -b 4096 TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --bulk 100G --duration 200ms --json
    assert_success
    assert_output --regexp '^\{"mode":"bulk","network":"tcp",.*"line":4096,"bytes":[0-9]+,"seconds":[0-9.]+,"gib_per_sec":[0-9.]+\}$'
}

@test "echo --bulk: a server that corrupts a byte is caught" {
    start_socat tr TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 SYSTEM:'tr A B'
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --bulk 1M --size 64
    assert_failure 1
    assert_output --regexp '^ipcbench: bulk: the echo differs at byte [0-9]+: sent "A.*", got "B.*"$'
}

@test "echo --bulk: a server that stops reading: the deadline ends it, the writer is unblocked" {
    # A stopped listener: the kernel completes the handshake and buffers what we send, then
    # nothing more is read and nothing comes back.
    start_socat mute TCP-LISTEN:0,bind=127.0.0.1,backlog=128 PIPE
    kill -STOP "$SOCAT_PID"
    STOPPED_PID=$SOCAT_PID
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --bulk 1G --deadline 300ms
    assert_failure 1
    assert_output "ipcbench: bulk: no echo for 300ms (--deadline) after 0 bytes"
}

@test "echo --bulk: a server that closes early" {
    start_socat short TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 SYSTEM:'head -c 1000'
    run "$TOOL" echo --connect "127.0.0.1:$PORT" --bulk 16M
    assert_failure 1
    # socat closes with our bytes unread, so its kernel sends a reset, which also discards what
    # it had not sent yet: we may see up to 1000 bytes, then end of stream or ECONNRESET (end of
    # stream when our writer thread's send took the one-shot error first).
    assert_output --regexp '^ipcbench: bulk: (connection closed by the server after [0-9]+ of [0-9]+ bytes echoed|after [0-9]+ bytes echoed: recv: Connection reset by peer \(ECONNRESET\))$'
}

@test "echo usage errors" {
    run "$TOOL" echo --connect 127.0.0.1:1 --network udp
    assert_usage_error "echo needs a stream network (tcp, tcp4, tcp6, unix), not udp"
    run "$TOOL" echo --connect 127.0.0.1:1 --bulk 1M --network unixgram
    assert_usage_error "--bulk needs a stream network"
    run "$TOOL" echo --connect 127.0.0.1:1 hello
    assert_usage_error "not expected: hello"
    run "$TOOL" echo --connect 127.0.0.1:1 --bulk 1M --conns 4
    assert_usage_error "--bulk excludes --conns"
    run "$TOOL" echo --connect 127.0.0.1:1 --bulk 1M --threads 2
    assert_usage_error "--bulk excludes --threads"
    run "$TOOL" echo --connect 127.0.0.1:1 --size 1
    assert_usage_error "--size 1: must be 2 to 64K"
    run "$TOOL" echo --connect 127.0.0.1:1 --conns 0
    assert_usage_error "--conns"
    run "$TOOL" echo --connect 127.0.0.1:1 --bulk 0
    assert_usage_error "--bulk: give a size above 0"
    run "$TOOL" echo --connect 127.0.0.1:1 --conns 4 --threads 5
    assert_usage_error "--threads 5: more event loops than --conns 4"
    run "$TOOL" echo --connect 127.0.0.1:1 --threads 0
    assert_usage_error "--threads"
    run "$TOOL" echo
    assert_usage_error "--connect is required"
    run "$TOOL" echo --connect 127.0.0.1
    assert_usage_error "--connect"
}

# ---- echo against the servers of sockets/ (skipped until they are built beside us) ----

@test "echoserver (a thread per connection): bench, --threads and bulk" {
    server_up srv echoserver --listen 127.0.0.1:0
    run "$TOOL" echo --connect "$ADDR" --conns 4 --requests 2000
    assert_success
    assert_line --regexp "^tcp +$ADDR +4 +32 +2000 "
    run "$TOOL" echo --connect "$ADDR" --conns 8 --threads 2 --requests 2000
    assert_success
    assert_line --regexp "^tcp +$ADDR +8 +32 +2000 "
    run "$TOOL" echo --connect "$ADDR" --bulk 16M
    assert_success
    assert_line --regexp "^tcp +$ADDR +4096 +16777216 "
}

@test "echoloop (one epoll loop): bench, --threads and bulk" {
    server_up srv echoloop --listen 127.0.0.1:0
    run "$TOOL" echo --connect "$ADDR" --conns 4 --requests 2000
    assert_success
    run "$TOOL" echo --connect "$ADDR" --conns 8 --threads 2 --requests 2000
    assert_success
    run "$TOOL" echo --connect "$ADDR" --bulk 16M
    assert_success
}

# ---- pipe: pipe(2) against mem_pipe and memcpy (what pipecmp bench did) ----

@test "pipe: every path moves the bytes and the checksum matches" {
    run "$TOOL" pipe --size 4M --chunk 64K
    assert_success
    assert_line --regexp '^4 MiB in 64 KiB chunks; cpu any; mem_pipe wait adaptive$'
    assert_line --regexp '^memcpy, 1 thread +[0-9.]+ +100% +[0-9]+  ok$'
    assert_line --regexp '^pipe\(2\), 2 processes +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
    assert_line --regexp '^pipe\(2\), 2 threads +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
    assert_line --regexp '^mem_pipe adaptive +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
    refute_line --partial "mem_pipe block"
}

@test "pipe: the CPU time of each side, per run" {
    run "$TOOL" pipe --size 4M
    assert_success
    assert_line --regexp '^path +reader CPU +writer CPU +CPU s per GiB$'
    assert_line --regexp '^memcpy, 1 thread +[0-9]+% +- +[0-9.]+$'
    assert_line --regexp '^pipe\(2\), 2 processes +[0-9]+% +[0-9]+% +[0-9.]+$'
    assert_line --regexp '^pipe\(2\), 2 threads +[0-9]+% +[0-9]+% +[0-9.]+$'
    assert_line --regexp '^mem_pipe adaptive +[0-9]+% +[0-9]+% +[0-9.]+$'
}

@test "pipe --wait all: one mem_pipe run per wait mode" {
    run "$TOOL" pipe --size 4M --wait all
    assert_success
    assert_line --partial "mem_pipe wait all"
    assert_line --regexp '^mem_pipe block +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
    assert_line --regexp '^mem_pipe spin +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
    assert_line --regexp '^mem_pipe adaptive +[0-9.]+ +[0-9]+% +[0-9]+  ok$'
}

@test "pipe: a size that is not a multiple of the chunk, and tiny chunks" {
    run "$TOOL" pipe --size 100001 --chunk 1000
    assert_success
    refute_output --partial MISMATCH
    run "$TOOL" pipe --size 3333 --chunk 7 --wait block
    assert_success
    refute_output --partial MISMATCH
}

@test "pipe: every wait mode and every CPU placement" {
    for wait in block spin adaptive; do
        run "$TOOL" pipe --size 2M --wait "$wait" --cpu same
        assert_success
        assert_line --partial "cpu same; mem_pipe wait $wait"
        assert_line --regexp "^mem_pipe $wait .* ok\$"
    done
    if (($(nproc) >= 2)); then
        run "$TOOL" pipe --size 2M --cpu split
        assert_success
        assert_line --regexp '^mem_pipe adaptive .* ok$'
    else
        run "$TOOL" pipe --size 2M --cpu split
        assert_failure 1
        assert_output --partial "--cpu split needs two CPUs"
    fi
}

@test "pipe --json prints one object with four checked results" {
    run "$TOOL" pipe --size 2M --chunk 16K --json
    assert_success
    assert_output --regexp '^\{"size": 2097152, "chunk": 16384, "wait": "adaptive", "cpu": "any", "results": \[.*\]\}$'
    assert_equal "$(grep -o '"checksum_ok": true' <<<"$output" | wc -l)" 4
    assert_output --partial '"path": "mem_pipe adaptive"'
    assert_output --regexp '"path": "memcpy, 1 thread", .*"reader_cpu_s": [0-9.]+, "writer_cpu_s": null\}'
    assert_output --regexp '"path": "pipe\(2\), 2 processes", .*"reader_cpu_s": [0-9.]+, "writer_cpu_s": [0-9.]+\}'
}

@test "pipe -x narrates the fork and the pinning" {
    run "$TOOL" -x pipe --size 1M --cpu same
    assert_success
    assert_line --regexp '^\[[0-9]+\] fork\(\) = [0-9]+ \(the writer\)$'
    assert_line --regexp '^\[[0-9]+\] sched_setaffinity\(0, \{[0-9]+\}\)$'
}

@test "pipe: bad option values are usage errors" {
    run "$TOOL" pipe --wait sometimes
    assert_usage_error "--wait"
    run "$TOOL" pipe --cpu elsewhere
    assert_usage_error "--cpu"
    run "$TOOL" pipe --chunk 0
    assert_usage_error "--chunk"
    run "$TOOL" pipe --size 0
    assert_usage_error "--size"
    run "$TOOL" pipe --size lots
    assert_usage_error "invalid size 'lots'"
}

# ---- matrix: the same ping-pong over every mechanism (issue 11) ----

MECHANISMS=(pipe socketpair unix-seqpacket unix-dgram tcp udp fifo mq shm-futex shm-spin eventfd shm-sem signal)

# No POSIX object of ours may outlive a run: /dev/mqueue and /dev/shm hold none named ipcbench-*
# (other programs' objects may come and go meanwhile: only ours are checked).
assert_no_ipc_names() {
    run bash -c 'ls -A /dev/mqueue /dev/shm | grep ipcbench'
    assert_failure 1
    refute_output
}

@test "matrix: a tiny run measures every mechanism, at a size they all carry" {
    run "$TOOL" matrix --count 200 --size 4
    assert_success
    assert_line 'ipcbench matrix: 4 B each way, 200 timed round trips (after 100 untimed), cpu none'
    assert_line --regexp '^mechanism +p50 us +p99 us +max us +trips/s +cpu us client +cpu us echo +1-way MB/s +round trips/s$'
    for m in "${MECHANISMS[@]}"; do
        assert_line --regexp "^$m +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +([0-9]+|n/a) +#+\$"
    done
    for m in pipe socketpair tcp fifo; do assert_line --regexp "^$m .* [0-9]+ +#+\$"; done
    for m in mq udp shm-futex signal; do assert_line --regexp "^$m .* n/a +#+\$"; done
    assert_line --regexp '^verdict: fastest by p50 here: [a-z-]+ \([0-9.]+ us\)\.$'
    assert_line --regexp '^  the fastest shared memory, shm-[a-z]+ \([0-9.]+ us\), is [0-9.]+x as fast as the fastest kernel copy, [a-z-]+ \([0-9.]+ us\);$'
    assert_line --regexp '^  "shared memory is the fastest IPC method": (holds here( \(tied with [a-z-]+ by p50\))?|does not hold here \([a-z-]+ was faster\)) at 4 B\.$'
    assert_no_ipc_names
}

@test "matrix --json: one object with every mechanism" {
    run "$TOOL" matrix --count 200 --size 8 --json
    assert_success
    run python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["mode"] == "matrix" and d["size"] == 8 and d["count"] == 200, d
for r in d["rows"]:
    if r["measured"]:
        assert r["p50_ns"] <= r["p99_ns"] <= r["max_ns"], r
        assert r["client_cpu_us"] >= 0 and r["server_cpu_us"] >= 0, r
    print(r["name"], "measured" if r["measured"] else "n/a max %d" % r["max_size"])
print("fastest", d["verdict"]["fastest"])
' <<<"$output"
    assert_success
    for m in "${MECHANISMS[@]}"; do
        [[ $m == eventfd ]] && continue
        assert_line "$m measured"
    done
    assert_line "eventfd n/a max 7"
    assert_line --regexp '^fastest [a-z-]+$'
}

@test "matrix: a payload over a mechanism's limit is n/a with the max, never capped" {
    local mq_max
    mq_max=$(cat /proc/sys/fs/mqueue/msgsize_max)
    run "$TOOL" matrix --count 100 --only eventfd,signal,pipe
    assert_success
    assert_line --regexp '^eventfd +- +- +- +- +- +- +- +n/a \(max 7 B\): an eventfd counter is 8 B'
    assert_line --regexp '^signal +- +- +- +- +- +- +- +n/a \(max 8 B\): a signal.s value is one union sigval'
    assert_line --regexp '^pipe +[0-9.]+ '
    run "$TOOL" matrix --count 100 --size $((mq_max + 1)) --only mq,shm-futex
    assert_success
    assert_line --regexp "^mq +- .* n/a \\(max $mq_max B\\): a message may hold at most /proc/sys/fs/mqueue/msgsize_max"
    assert_line --regexp '^shm-futex +[0-9.]+ '
    run "$TOOL" matrix --count 100 --size 65508 --only udp,tcp --json
    assert_success
    assert_output --partial '{"name": "udp", "path": "send -> UDP datagram over 127.0.0.1 -> recv", "measured": false, "max_size": 65507, "why": '
    assert_output --regexp '\{"name": "tcp", [^}]*"measured": true, "p50_ns": [0-9]+'
    run "$TOOL" matrix --count 100 --size 1M --only unix-dgram,unix-seqpacket
    assert_success
    assert_line --regexp '^unix-dgram .* n/a \(max [0-9]+ B\): a unix datagram must fit in SO_SNDBUF'
    assert_line --regexp '^unix-seqpacket .* n/a \(max [0-9]+ B\): a seqpacket record must fit in SO_SNDBUF'
    # At the limit itself, each one carries the payload.
    run "$TOOL" matrix --count 100 --size "$mq_max" --only mq
    assert_success
    assert_line --regexp '^mq +[0-9.]+ '
    run "$TOOL" matrix --count 100 --size 65507 --only udp
    assert_success
    assert_line --regexp '^udp +[0-9.]+ '
}

@test "matrix --cpu same and split; -x narrates the forks and the pinning" {
    run "$TOOL" -x matrix --count 100 --size 4 --cpu same --only pipe,shm-spin,signal
    assert_success
    assert_line --regexp '^ipcbench matrix: .*, cpu same \(client on CPU [0-9]+, echo side on CPU [0-9]+\)$'
    assert_line --regexp '^\[[0-9]+\] fork\(\) = [0-9]+ \(the echo side, shm-spin\)$'
    assert_line --regexp '^\[[0-9]+\] sched_setaffinity\(0, \{[0-9]+\}\)$'
    assert_line --regexp '^shm-spin +[0-9.]+ '
    run "$TOOL" matrix --count 100 --cpu split --only pipe
    assert_success
    if (($(nproc) >= 2)); then
        assert_line --regexp 'cpu split \(client on CPU ([0-9]+), echo side on CPU ([0-9]+)\)$'
        refute_line --regexp 'on CPU ([0-9]+), echo side on CPU \1\)$'
    else
        assert_line --partial "--cpu split: n/a, this process may use only one CPU"
    fi
    run taskset -c 0 "$TOOL" matrix --count 100 --cpu split --only pipe --json
    assert_success
    assert_output --partial '"cpu": "none", "cpu_note": "--cpu split: n/a, this process may use only one CPU'
}

@test "matrix: bad options are usage errors" {
    run "$TOOL" matrix --size 0
    assert_usage_error "--size: 1 byte to 16M"
    run "$TOOL" matrix --size 17M
    assert_usage_error "--size: 1 byte to 16M"
    run "$TOOL" matrix --size lots
    assert_usage_error "invalid size 'lots'"
    run "$TOOL" matrix --count 0
    assert_usage_error "--count: 1 to 1000000000"
    run "$TOOL" matrix --count many
    assert_usage_error "--count"
    run "$TOOL" matrix --cpu elsewhere
    assert_usage_error "--cpu"
    run "$TOOL" matrix --only pipe,smoke-signals
    assert_usage_error "--only: no mechanism 'smoke-signals' (pipe, socketpair, unix-seqpacket,"
    run "$TOOL" matrix --only '' --count 100 --size 4
    assert_success
    run "$TOOL" matrix extra
    assert_usage_error "not expected: extra"
}

# stop_mid_run SIGNAL MECHANISM: starts a run of MECHANISM that would last for hours, waits
# until its echo side is forked (its objects exist), sends SIGNAL, and checks the ending:
# killed by that signal, one line, the echo side gone, no POSIX name left.
stop_mid_run() {
    local sig=$1 m=$2
    bg_start run "$TOOL" -x matrix --size 4 --count 1000000000 --only "$m"
    local pid=$BG_PID
    wait_for_line "$(bg_err run)" "fork\\(\\) = [0-9]+ \\(the echo side, $m\\)" 20
    local child
    child=$(sed -n "s/.*fork() = \\([0-9]*\\) (the echo side, $m)\$/\\1/p" "$(bg_err run)")
    kill "-$sig" "$pid"
    wait_for_exit "$pid"
    assert_equal "$BG_STATUS" "$((128 + $(kill -l "$sig")))"
    run grep -v '^\[' "$(bg_err run)"
    assert_output "ipcbench: matrix: stopped by SIG$sig after 0 of 1 mechanisms; nothing left behind"
    run kill -0 "$child" # reaped by ipcbench before it ended: no such process, not even a zombie
    assert_failure
    assert_no_ipc_names
}

@test "matrix: SIGINT during a run removes everything and leaves no child" {
    assert_no_ipc_names
    for m in mq shm-futex shm-spin eventfd fifo signal; do
        stop_mid_run INT "$m"
    done
}

# echo_dies MECHANISM: a run of MECHANISM that would last for hours; its echo side is killed
# (SIGKILL) once forked. The client must not wait for good for an answer that cannot come
# (a futex, a semaphore, a queue, an eventfd, a signal or a datagram has no end of file):
# exit 1, one line saying how the echo side ended, no POSIX name left.
echo_dies() {
    local m=$1
    bg_start run "$TOOL" -x matrix --size 4 --count 1000000000 --only "$m"
    local pid=$BG_PID
    wait_for_line "$(bg_err run)" "fork\\(\\) = [0-9]+ \\(the echo side, $m\\)" 20
    local child
    child=$(sed -n "s/.*fork() = \\([0-9]*\\) (the echo side, $m)\$/\\1/p" "$(bg_err run)")
    kill -KILL "$child"
    wait_for_exit "$pid" 30
    assert_equal "$BG_STATUS" 1
    run grep -v '^\[' "$(bg_err run)"
    assert_output "ipcbench: $m: the echo side killed by SIGKILL (137) in the middle of the run"
    assert_no_ipc_names
}

@test "matrix: an echo side killed mid-run ends the run with how it died, never a hang" {
    assert_no_ipc_names
    for m in shm-futex shm-spin shm-sem eventfd signal mq unix-dgram pipe; do
        echo_dies "$m"
    done
}

@test "matrix: a full /dev/shm is ENOSPC in one line at set-up, never a SIGBUS at the first store" {
    ((EUID == 0)) || skip "mounting a small /dev/shm needs root"
    unshare -m true 2>/dev/null || skip "no mount namespaces here (unshare -m)"
    # In a mount namespace of its own: a one-page tmpfs on /dev/shm, filled, then the run.
    run --separate-stderr unshare -m bash -c 'mount -t tmpfs -o size=4k tmpfs /dev/shm &&
        head -c 4096 /dev/zero >/dev/shm/fill && exec "$0" matrix --size 4 --count 10 --only "$1"' \
        "$TOOL" shm-futex
    assert_failure 1
    assert_equal "$stderr" "ipcbench: posix_fallocate(/dev/shm): No space left on device (ENOSPC)"
}

@test "matrix: SIGTERM during a run too" {
    stop_mid_run TERM shm-futex
    stop_mid_run TERM mq
}

@test "matrix shows its progress on a terminal only" {
    run "$TOOL" matrix --count 200 --only pipe 2>"$BATS_TEST_TMPDIR/err"
    assert_success
    assert_equal "$(wc -c <"$BATS_TEST_TMPDIR/err")" 0
    run script -qec "'$TOOL' matrix --count 2000 --only pipe,tcp >'$BATS_TEST_TMPDIR/out'" "$BATS_TEST_TMPDIR/tty"
    assert_success
    run cat -v "$BATS_TEST_TMPDIR/tty"
    assert_output --partial '^Mipcbench: matrix: pipe: 0 of 2000 round trips^[[K'
    run cat -v "$BATS_TEST_TMPDIR/out"
    refute_output --partial '^['
    assert_line --regexp '^tcp +[0-9.]+ '
}

@test "matrix: an error on a terminal erases the progress line first, then stands on its own line" {
    # A TMPDIR that does not exist: the fifo row's mkdtemp fails once the pipe row has drawn
    # its progress. script(1) gives the run a terminal; stdout still goes to a file.
    local missing=$BATS_TEST_TMPDIR/missing
    run script -qec "TMPDIR='$missing' '$TOOL' matrix --count 2000 --only pipe,fifo >'$BATS_TEST_TMPDIR/out'" "$BATS_TEST_TMPDIR/tty"
    assert_failure 1
    run cat -v "$BATS_TEST_TMPDIR/tty"
    assert_output --partial '^Mipcbench: matrix: pipe: 0 of 2000 round trips^[[K'
    # The line drawn last ends in ^[[K; then ^M^[[K erases it, and the error follows.
    assert_output --partial "^[[K^M^[[Kipcbench: mkdtemp($missing/ipcbench-fifo."
    assert_output --partial "): No such file or directory (ENOENT)^M"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/out")" ""
    assert_no_ipc_names
}

# ---- the whole tool ----

@test "no subcommand, or an unknown one, is a usage error" {
    run "$TOOL"
    assert_usage_error "a subcommand is required: echo, pipe or matrix"
    run "$TOOL" nosuch
    assert_usage_error "not expected: nosuch"
}

@test "--help explains each subcommand; --version" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "echo"
    assert_output --partial "pipe"
    run "$TOOL" pipe --help
    assert_success
    assert_output --partial "--wait"
    assert_output --partial "sched_setaffinity"
    run "$TOOL" echo --help
    assert_success
    assert_output --partial "--threads"
    assert_output --partial "--bulk"
    run "$TOOL" matrix --help
    assert_success
    assert_output --partial "--only"
    assert_output --partial "sched_setaffinity"
    run "$TOOL" --version
    assert_success
    assert_output --regexp '^ipcbench \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "progress goes to stderr only when it is a terminal, and is erased at the end" {
    run "$TOOL" pipe --size 1M 2>"$BATS_TEST_TMPDIR/err"
    assert_success
    assert_equal "$(wc -c <"$BATS_TEST_TMPDIR/err")" 0
    # script(1) gives the command a terminal; stdout still goes to a file.
    run script -qec "'$TOOL' pipe --size 1M >'$BATS_TEST_TMPDIR/out'" "$BATS_TEST_TMPDIR/tty"
    assert_success
    run cat -v "$BATS_TEST_TMPDIR/tty"
    assert_output --partial '^Mipcbench: pipe: run 1 of 4: memcpy^[[K'
    assert_output --partial '^M^[[K'
    run cat -v "$BATS_TEST_TMPDIR/out"
    refute_output --partial '^['
    assert_line --regexp '^memcpy, 1 thread +[0-9.]+ +100% +[0-9]+  ok$'
}

@test "echo shows its progress on a terminal too" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run script -qec "'$TOOL' echo --connect 127.0.0.1:$PORT --conns 2 --requests 200 >/dev/null" "$BATS_TEST_TMPDIR/tty"
    assert_success
    run cat -v "$BATS_TEST_TMPDIR/tty"
    assert_output --regexp '\^Mipcbench: echo: [0-9]+ of 200 requests\^\[\[K'
}

@test "stdout full or closed: exit 1 with one line, for every kind of output" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    local runs=("--help" "--version" "pipe --size 1M" "matrix --help" "matrix --count 100 --only pipe,shm-futex"
        "matrix --count 100 --only udp --size 1M --json"
        "echo --connect 127.0.0.1:$PORT --conns 2 --requests 100 --json"
        "echo --connect 127.0.0.1:$PORT --bulk 1M")
    for args in "${runs[@]}"; do
        # shellcheck disable=SC2086 # the arguments are split on purpose
        run bash -c '"$@" >/dev/full' _ "$TOOL" $args
        assert_failure 1
        assert_output "ipcbench: write(stdout): No space left on device (ENOSPC)"
        # shellcheck disable=SC2086
        run bash -c '"$@" >&-' _ "$TOOL" $args
        assert_failure 1
        assert_output "ipcbench: write(stdout): Bad file descriptor (EBADF)"
    done
}
