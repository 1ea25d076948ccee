#!/usr/bin/env bats
# echoloop: the service echoserver gives, from one epoll loop: the same tests (shared in
# tests/helpers/stream_echo.bash), plus what only the loop shows: EAGAIN, partial writes and the
# pause of a slow reader under -x.
load ../helpers/ipc
load ../helpers/sockets
load ../helpers/stream_echo

bats_require_minimum_version 1.5.0

# ---- Command line ----

@test "--help says what differs from echoserver; --version" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "echoserver"
    assert_output --partial "epoll"
    assert_output --partial "127.0.0.1:8000"
    assert_output --partial "Example:"
    run "$TOOL" --version
    assert_success
    assert_output --regexp '^echoloop \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "usage errors exit 2: a datagram network names echodgram; bad limits and addresses" {
    run "$TOOL" --network udp --listen 127.0.0.1:0
    assert_usage_error "--network udp: echoloop serves connections (tcp|tcp4|tcp6|unix|unixpacket); udp is echodgram's (as Go's net.Listen refuses it)"
    run "$TOOL" --network sctp
    assert_usage_error "--network"
    run "$TOOL" --network unix
    assert_usage_error "needs --listen PATH"
    run "$TOOL" --max-line 0 --listen 127.0.0.1:0
    assert_usage_error "--max-line"
    run "$TOOL" --max-conns -1 --listen 127.0.0.1:0
    assert_usage_error "--max-conns"
    run "$TOOL" --listen 127.0.0.1
    assert_usage_error "missing port"
    run "$TOOL" --model epoll
    assert_usage_error "--model"
}

@test "a port in use: EADDRINUSE, exit 1" {
    start_tool server --listen 127.0.0.1:0
    run "$TOOL" --listen "127.0.0.1:$PORT"
    assert_failure 1
    assert_output "echoloop: bind(127.0.0.1:$PORT): Address already in use (EADDRINUSE)"
}

@test "stdout full or closed: one line, exit 1; the unix socket file is removed all the same" {
    stdout_failures
}

# ---- The echo ----

@test "lines echo back, the last one even without its newline (socat)" { echo_lines; }
@test "NUL and non-UTF-8 bytes echo intact (socat, nc)" { binary_bytes; }
@test "20 clients at once each get their own lines back (nc)" { many_clients; }
@test "a conversation over bash's /dev/tcp" { bash_client; }
@test "unix stream socket (nc -U, socat), removed on SIGINT" { unix_stream; }
@test "unixpacket keeps message boundaries (socat type=5)" { unixpacket; }

# ---- Deadlines and limits ----

@test "an idle client, and one sending 1 byte a second, are told and closed" { idle_timeout; }
@test "the deadline is renewed per line, not per read" { deadline_per_line; }
@test "--max-line: a longer line gets an error and the connection is closed" { max_line; }
@test "--max-conns: one more client waits in the queue until one leaves" { max_conns; }

# ---- Faults: clients that vanish, reset, or never read ----

@test "a client killed mid-line or resetting is logged; the others are still served" { vanishing_clients; }

@test "a slow reader is not read until its queue drains; -x shows EAGAIN and partial writes" {
    SLOW_READER_WAIT_FOR='bytes queued for a slow reader: stop reading until they drain' slow_reader --explain
    run cat "$(errs)"
    assert_output --regexp "send\([0-9]+\) = [0-9]+: a partial write; [0-9]+ bytes left"
    assert_output --regexp "send\([0-9]+\) = -1 EAGAIN: the socket buffer is full"
    assert_output --partial "queue drained: reading again"
}

@test "2,000 connections in a row leave no descriptor behind" { no_fd_leak; }
@test "ulimit -n 64 and 200 clients: serves what it can, EMFILE once, no spinning, recovers" { out_of_descriptors; }

# ---- SIGINT/SIGTERM: stop accepting, drain, exit 0 ----

@test "SIGTERM: idle clients closed, a line in progress finishes, exit 0" { drain; }
@test "SIGTERM: a line that arrived but was not read yet is still echoed" { line_at_stop; }
@test "--drain: a line never finished is cut at the drain deadline, exit 0" { drain_deadline; }
@test "a second SIGINT ends the drain at once" { second_signal; }

@test "-x narrates the system calls" {
    start_tool server --listen 127.0.0.1:0 --explain
    run nc -N "$HOST" "$PORT" <<<"narrated"
    assert_output "narrated"
    wait_for_line "$(log)" '^conn 1 closed: '
    run cat "$(errs)"
    assert_line --regexp '^\[[0-9]+\] socket\(tcp\) = [0-9]+$'
    assert_line --regexp "^\[[0-9]+\] bind\([0-9]+, 127\.0\.0\.1:0\)$"
    assert_line --regexp "^\[[0-9]+\] getsockname\([0-9]+\) = $ADDR$"
    assert_line --regexp '^\[[0-9]+\] accept4\([0-9]+\) = [0-9]+ from 127\.0\.0\.1:[0-9]+$'
    assert_line --regexp '^\[[0-9]+\] epoll_wait\(\) = [0-9]+$'
    assert_line --regexp '^\[[0-9]+\] conn 1: recv\(\) = 0$'
}

# ---- --loops N: a loop per thread, sharing the listening address ----

# The spread printed at the end: "echoloop: loop K of N: C connections; woken W times, E found
# nothing to accept". Sets CONNS[K] and WOKEN[K] from the log.
read_spread() {
    local k line
    CONNS=() WOKEN=()
    for ((k = 1; k <= $1; k++)); do
        line=$(grep -E "^echoloop: loop $k of $1: [0-9]+ connections; woken [0-9]+ times, [0-9]+ found nothing to accept$" "$(log)")
        [[ $line =~ ([0-9]+)\ connections\;\ woken\ ([0-9]+) ]]
        CONNS[k]=${BASH_REMATCH[1]}
        WOKEN[k]=${BASH_REMATCH[2]}
    done
}

stop_server() {
    kill -TERM "$SERVER_PID"
    wait_for_exit "$SERVER_PID" 20
    assert_equal "$BG_STATUS" 0
}

@test "usage errors: --loops out of range, an unknown --share, reuseport on a unix path" {
    run "$TOOL" --loops -1
    assert_usage_error "--loops"
    run "$TOOL" --loops 2 --share roundrobin
    assert_usage_error "--share"
    run "$TOOL" --network unix --listen "$BATS_TEST_TMPDIR/s.sock" --loops 2 --share reuseport
    assert_usage_error "--share reuseport: a unix socket path can be bound only once (SO_REUSEPORT is for TCP and UDP); use --share exclusive"
}

@test "--loops 2 --share reuseport: two listening sockets on one port; connections reach every loop" {
    start_tool server --listen 127.0.0.1:0 --loops 2 --share reuseport -v
    run ss -Hltn "sport = :$PORT"
    assert_equal "${#lines[@]}" 2 # two sockets, one address: SO_REUSEPORT
    local i
    for i in $(seq 40); do # each nc a new source port: the kernel's hash spreads them
        run nc -N "$HOST" "$PORT" <<<"client $i"
        assert_output "client $i"
    done
    wait_for_count "$(log)" '^conn [0-9]+ closed: .*; eof$' 40
    stop_server
    read_spread 2
    ((CONNS[1] >= 1 && CONNS[2] >= 1 && CONNS[1] + CONNS[2] == 40))
    run cat "$(log)"
    assert_line "echoloop: stopped after 40 connections"
    assert_line --regexp "^conn 1 open: remote 127\.0\.0\.1:[0-9]+, local $ADDR, loop [12]$"
}

@test "--loops 2 --share exclusive: one socket, EPOLLEXCLUSIVE; a busy loop leaves the clients to the other" {
    start_tool server --listen 127.0.0.1:0 --loops 2 --share exclusive
    run ss -Hltn "sport = :$PORT"
    assert_equal "${#lines[@]}" 1 # one socket, in both loops' epoll sets
    # The first client streams without end: its loop is busy, rarely back in epoll_wait, and
    # EPOLLEXCLUSIVE wakes a loop that is waiting.
    bg_start busy bash -c 'yes | exec socat - "TCP:$0" >/dev/null' "$ADDR"
    wait_for_line "$(log)" '^conn 1 open:'
    local i fd fds=()
    for i in $(seq 200); do
        exec {fd}<>"/dev/tcp/$HOST/$PORT"
        fds+=("$fd")
    done
    wait_for_count "$(log)" '^conn [0-9]+ open:' 201
    for fd in "${fds[@]}"; do exec {fd}>&-; done
    wait_for_count "$(log)" '^conn [0-9]+ closed: ' 200
    stop_server
    read_spread 2
    ((CONNS[1] >= 1 && CONNS[2] >= 1 && CONNS[1] + CONNS[2] == 201))
}

@test "-x: EPOLLEXCLUSIVE in each loop's epoll_ctl; the listening socket dup'ed for the second loop" {
    start_tool server --listen 127.0.0.1:0 --loops 2 --share exclusive --explain
    run nc -N "$HOST" "$PORT" <<<"hi"
    assert_output "hi"
    stop_server
    run grep -c 'epoll_ctl(ADD, [0-9]*, EPOLLIN|EPOLLEXCLUSIVE)' "$(errs)"
    assert_output 2
    run cat "$(errs)"
    assert_line --regexp "^\[[0-9]+\] dup\([0-9]+\) = [0-9]+: loop 2's descriptor of the listening socket$"
}

@test "--share shared wakes every loop for each client (the thundering herd); exclusive does not" {
    local mode
    for mode in shared exclusive; do
        start_tool server --listen 127.0.0.1:0 --loops 2 --share "$mode"
        run nc -N "$HOST" "$PORT" <<<"warm up" # both loops are waiting in epoll_wait now
        for i in $(seq 30); do
            run nc -N "$HOST" "$PORT" <<<"client $i"
            assert_output "client $i"
        done
        stop_server
        read_spread 2
        echo "# $mode: loop 1: ${CONNS[1]} connections, woken ${WOKEN[1]}; loop 2: ${CONNS[2]}, woken ${WOKEN[2]}" >&3
        if [[ $mode == shared ]]; then
            # Each client wakes both loops: each is woken at least once per client, its own or not.
            ((WOKEN[1] >= 31 && WOKEN[2] >= 31))
        else
            # One loop is woken per client: the one that does not get clients hardly wakes.
            ((CONNS[1] == 0 || CONNS[2] == 0 || WOKEN[1] < 31 || WOKEN[2] < 31))
        fi
        rm "$(log)" "$(errs)"
    done
}

@test "--loops 2: SIGTERM drains every loop; no line in progress is lost" {
    start_tool server --listen 127.0.0.1:0 --loops 2 --drain 10s --explain
    local i fd fds=() reply
    for i in $(seq 10); do
        exec {fd}<>"/dev/tcp/$HOST/$PORT"
        fds+=("$fd")
        printf 'half %02d ' "$i" >&"$fd"
    done
    wait_for_count "$(errs)" '^\[[0-9]+\] conn [0-9]+: recv\(\) = 8$' 10
    kill -TERM "$SERVER_PID"
    wait_for_line "$(log)" '^echoloop: SIGTERM: not accepting any more; 10 open connections finish their line'
    run bash -c 'exec 4<>"/dev/tcp/$0/$1"' "$HOST" "$PORT"
    assert_failure # both loops' listeners are closed
    for i in "${!fds[@]}"; do
        printf 'a line\n' >&"${fds[$i]}"
        read -r -t 5 reply <&"${fds[$i]}"
        assert_equal "$reply" "$(printf 'half %02d a line' $((i + 1)))"
    done
    wait_for_exit "$SERVER_PID" 10
    assert_equal "$BG_STATUS" 0
    run grep -c '^conn [0-9]* closed: .*; 15 bytes in, 15 bytes out, 1 lines; shutdown$' "$(log)"
    assert_output 10
    read_spread 2
    ((CONNS[1] + CONNS[2] == 10))
    run tail -n 1 "$(log)"
    assert_output "echoloop: stopped after 10 connections"
}

@test "--loops 2, both share modes: the drain, as with one loop" {
    drain --loops 2 --share reuseport
    bg_stop_all
    rm "$(log)" "$(errs)"
    drain --loops 2 --share exclusive
}

@test "--loops 2: --max-conns counts the connections of all loops" { max_conns --loops 2; }
@test "--loops 2: deadlines" { idle_timeout --loops 2 --share shared; }

@test "--loops 2: a slow reader's loop stops reading it; the other loop serves on" {
    SLOW_READER_WAIT_FOR='bytes queued for a slow reader: stop reading until they drain' slow_reader --loops 2 --explain
    run nc -N "$HOST" "$PORT" <<<"still served"
    assert_output "still served"
}

@test "--loops 2 --share exclusive: ulimit -n 64 and 200 clients: EMFILE survived" {
    LOOPS=2 out_of_descriptors --loops 2 --share exclusive
}

@test "--loops 2: pthread_create failing (EAGAIN injected into clone3) is one line, exit 1" {
    command -v strace >/dev/null || skip "strace is not installed"
    [[ ${IPC_SANITIZE:-} != thread ]] || skip "ThreadSanitizer starts threads of its own"
    # The second clone3 is loop 2's thread: loop 1 runs already, and the tool ends all the same.
    # (LeakSanitizer cannot run under ptrace: leaks are checked by every other test.)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" run --separate-stderr timeout 30 strace -f -qq -o /dev/null -e trace=clone3 \
        -e inject=clone3:error=EAGAIN:when=2 "$TOOL" --listen 127.0.0.1:0 --loops 2
    assert_failure 1
    assert_equal "$(grep -v '^echoloop: listening on ' <<<"$stderr")" \
        "echoloop: pthread_create(loop 2): Resource temporarily unavailable (EAGAIN)"
}

@test "--loops 0 is one loop per online CPU" {
    start_tool server --listen 127.0.0.1:0 --loops 0
    stop_server
    run grep -c '^echoloop: loop [0-9]* of [0-9]*:' "$(log)"
    assert_output "$(nproc)"
}
