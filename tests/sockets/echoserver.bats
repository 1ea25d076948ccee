#!/usr/bin/env bats
# echoserver: the stream networks of the notes' table with a thread per connection; deadlines,
# limits, the graceful stop, and the faults of issue 5. The service tests are shared with
# echoloop (tests/helpers/stream_echo.bash). Clients are the real tools: socat, nc, bash's /dev/tcp.
load ../helpers/ipc
load ../helpers/sockets
load ../helpers/stream_echo

# ---- Command line and addresses ----

@test "--help explains the options and the notes' default address" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "--network"
    assert_output --partial "127.0.0.1:8000"
    assert_output --partial "--model"
    assert_output --partial "Example:"
}

@test "--version prints the project version" {
    run "$TOOL" --version
    assert_success
    assert_output --regexp '^echoserver \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "usage errors exit 2: unknown network or model, unix without a path, bad limits" {
    run "$TOOL" --network sctp
    assert_usage_error "--network"
    run "$TOOL" --model fork
    assert_usage_error "--model"
    run "$TOOL" --network unix
    assert_usage_error "needs --listen PATH"
    run "$TOOL" --max-line 0 --listen 127.0.0.1:0
    assert_usage_error "--max-line"
    run "$TOOL" --max-conns -1 --listen 127.0.0.1:0
    assert_usage_error "--max-conns"
    run "$TOOL" --timeout 10 --listen 127.0.0.1:0
    assert_usage_error "invalid duration '10'"
}

@test "bad addresses exit 2 and name what is wrong" {
    run "$TOOL" --listen 127.0.0.1
    assert_usage_error "missing port"
    run "$TOOL" --listen 127.0.0.1:99999
    assert_usage_error "port '99999'"
    run "$TOOL" --listen 127.0.0.1:http
    assert_usage_error "port 'http'"
    run "$TOOL" --listen '[::1'
    assert_usage_error "expected [IPv6]:port"
    run "$TOOL" --listen ::1:0
    assert_usage_error "needs brackets"
    run "$TOOL" --network tcp6 --listen 127.0.0.1:0
    assert_usage_error "not an IPv6 address"
    run "$TOOL" --network tcp4 --listen '[::1]:0'
    assert_usage_error "not an IPv4 address"
    run "$TOOL" --network unix --listen "$BATS_TEST_TMPDIR/$(printf 'x%.0s' {1..120})"
    assert_usage_error "socket path of"
}

@test "a port in use: EADDRINUSE, exit 1" {
    start_echoserver server --listen 127.0.0.1:0
    run "$TOOL" --listen "127.0.0.1:$PORT"
    assert_failure 1
    assert_output "echoserver: bind(127.0.0.1:$PORT): Address already in use (EADDRINUSE)"
}

@test "tcp on port 0 prints the port the kernel chose, and LocalAddr/RemoteAddr per connection" {
    start_echoserver server --listen 127.0.0.1:0
    [[ $PORT =~ ^[0-9]+$ && $PORT != 0 ]]
    run head -n 1 "$(log)"
    assert_output "echoserver: listening on tcp 127.0.0.1:$PORT"
    run socat -t 5 - "TCP:$ADDR,bind=127.0.0.1:0" <<<"hi"
    assert_output "hi"
    wait_for_line "$(log)" "^conn 1 closed:"
    run cat "$(log)"
    assert_line --regexp "^conn 1 open: remote 127\.0\.0\.1:[0-9]+, local 127\.0\.0\.1:$PORT$"
}

@test "datagram networks are echodgram's and the epoll loop is echoloop's: usage errors naming them" {
    local net
    for net in udp udp4 udp6 unixgram; do
        run "$TOOL" --network "$net" --listen 127.0.0.1:0
        assert_usage_error "--network $net: echoserver serves connections (tcp|tcp4|tcp6|unix|unixpacket); $net is echodgram's (as Go's net.Listen refuses it)"
    done
    run "$TOOL" --model epoll --listen 127.0.0.1:0
    assert_usage_error "--model epoll: the epoll loop is a tool of its own: run echoloop with the same options"
}

@test "--model thread is accepted: the one model echoserver has" {
    start_echoserver server --model thread --listen 127.0.0.1:0
    run nc -N "$HOST" "$PORT" <<<"threads"
    assert_output "threads"
}

@test "stdout full or closed: one line, exit 1; the unix socket file is removed all the same" {
    stdout_failures
}

# ---- The echo ----

@test "lines echo back, the last one even without its newline (socat)" { echo_lines; }
@test "NUL and non-UTF-8 bytes echo intact (socat, nc)" { binary_bytes; }
@test "20 clients at once each get their own lines back (nc)" { many_clients; }
@test "a conversation over bash's /dev/tcp" { bash_client; }

@test "tcp6 on [::1]:0 (nc -6)" {
    have_ipv6 || skip "no ::1 on this machine"
    start_echoserver server --network tcp6 --listen '[::1]:0'
    [[ $ADDR =~ ^\[::1\]:[0-9]+$ ]]
    run nc -6 -N ::1 "$PORT" <<<"over IPv6"
    assert_output "over IPv6"
    wait_for_line "$(log)" '^conn 1 closed: remote \[::1\]:[0-9]+, local \[::1\]:'
}

@test "tcp on [::]:0 takes IPv4 clients too; tcp4 on 127.0.0.1 (nc -4)" {
    have_ipv6 || skip "no ::1 on this machine"
    start_echoserver server --network tcp --listen '[::]:0'
    run nc -4 -N 127.0.0.1 "$PORT" <<<"v4 to a dual-stack listener"
    assert_output "v4 to a dual-stack listener"
    start_echoserver server4 --network tcp4 --listen 127.0.0.1:0
    run nc -4 -N 127.0.0.1 "$PORT" <<<"v4"
    assert_output "v4"
}

# ---- Unix sockets ----

@test "unix stream socket (nc -U, socat), removed on SIGINT" { unix_stream; }

@test "unix: a path that is not a socket is never replaced (exit 1)" {
    local path=$BATS_TEST_TMPDIR/precious
    echo "keep me" >"$path"
    run "$TOOL" --network unix --listen "$path"
    assert_failure 1
    assert_output "echoserver: $path exists and is not a socket: not replacing it"
    run cat "$path"
    assert_output "keep me"
}

@test "unix: a socket a server still listens on is in use (EADDRINUSE, exit 1)" {
    local path=$BATS_TEST_TMPDIR/live.sock
    start_echoserver server --network unix --listen "$path"
    run "$TOOL" --network unix --listen "$path"
    assert_failure 1
    assert_output --partial "bind($path): a server is listening there: Address already in use (EADDRINUSE)"
    run nc -N -U "$path" <<<"still served"
    assert_output "still served"
}

@test "unix: a stale socket left by a killed server is replaced" {
    local path=$BATS_TEST_TMPDIR/stale.sock
    start_echoserver old --network unix --listen "$path"
    kill -KILL "$SERVER_PID"
    wait_for_exit "$SERVER_PID"
    [[ -S $path ]] # SIGKILL left it behind
    start_echoserver server --network unix --listen "$path"
    run cat "$(errs)"
    assert_output --partial "replacing the stale socket $path"
    run nc -N -U "$path" <<<"new server"
    assert_output "new server"
}

@test "unix: the abstract namespace (@name) has no file" {
    local name="@ipckit-echoserver-$$-$RANDOM"
    start_echoserver server --network unix --listen "$name"
    assert_equal "$ADDR" "$name"
    run socat -t 5 - "ABSTRACT-CONNECT:${name#@}" <<<"abstract"
    assert_output "abstract"
}

@test "unixpacket keeps message boundaries (socat type=5)" { unixpacket; }

# ---- Deadlines and limits ----

@test "an idle client, and one sending 1 byte a second, are told and closed" { idle_timeout; }
@test "the deadline is renewed per line, not per read" { deadline_per_line; }
@test "--max-line: a longer line gets an error and the connection is closed" { max_line; }
@test "--max-conns: one more client waits in the queue until one leaves" { max_conns; }

# ---- Faults: clients that vanish, reset, or never read ----

@test "a client killed mid-line or resetting is logged; the others are still served" { vanishing_clients; }
@test "a client that reads nothing for a while gets every byte back (27 MB)" { slow_reader --explain; }

@test "a client that reads nothing at all: its thread gives up after --timeout (write deadline)" {
    start_echoserver server --listen 127.0.0.1:0 --timeout 2s
    local big=$BATS_TEST_TMPDIR/big
    yes 'nobody reads this echo' | head -c 8M >"$big"
    # The client connects and sends at once (whole lines: the read deadline keeps being renewed),
    # and never reads: the echo fills both socket buffers and the thread's send waits in poll.
    bg_start writer bash -c 'exec 4<>"/dev/tcp/$0/$1"; cat "$2" >&4; exec sleep 60' "$HOST" "$PORT" "$big"
    wait_for_line "$(log)" '^conn 1 closed: .*; write timeout: the client read nothing for 2s$' 30
    run nc -N "$HOST" "$PORT" <<<"the others are served"
    assert_output "the others are served"
}

@test "2,000 connections in a row leave no descriptor behind" { no_fd_leak; }
@test "ulimit -n 64 and 200 clients: serves what it can, EMFILE once, no spinning, recovers" { out_of_descriptors; }

# ---- SIGINT/SIGTERM: stop accepting, drain, exit 0 ----

@test "SIGTERM: idle clients closed, a line in progress finishes, exit 0" { drain; }
@test "SIGTERM: a line that arrived but was not read yet is still echoed" { line_at_stop; }
@test "--drain: a line never finished is cut at the drain deadline, exit 0" { drain_deadline; }
@test "a second SIGINT ends the drain at once" { second_signal; }

@test "-x narrates the system calls: socket, bind, listen, accept4, a thread, poll, recv, join" {
    start_echoserver server --listen 127.0.0.1:0 --explain
    run nc -N "$HOST" "$PORT" <<<"narrated"
    assert_output "narrated"
    wait_for_line "$(log)" '^conn 1 closed: '
    run cat "$(errs)"
    assert_line --regexp '^\[[0-9]+\] socket\(tcp\) = [0-9]+$'
    assert_line --regexp "^\[[0-9]+\] bind\([0-9]+, 127\.0\.0\.1:0\)$"
    assert_line --regexp "^\[[0-9]+\] listen\([0-9]+, [0-9]+\)$"
    assert_line --regexp "^\[[0-9]+\] getsockname\([0-9]+\) = $ADDR$"
    assert_line --regexp '^\[[0-9]+\] accept4\([0-9]+\) = [0-9]+ from 127\.0\.0\.1:[0-9]+$'
    assert_line --regexp '^\[[0-9]+\] conn 1: pthread_create\(\) = a thread of its own$'
    assert_line --regexp '^\[[0-9]+\] conn 1: poll\(\) = 1$'
    assert_line --regexp '^\[[0-9]+\] conn 1: recv\(\) = 0$'
    assert_line --regexp '^\[[0-9]+\] conn 1: pthread_join\(\); close\([0-9]+\)$'
}
