#!/usr/bin/env bats
# echoserver: every network of the notes' table, both --models, deadlines, limits, the graceful
# stop, and each fault of issue 5. Clients are the real tools: socat, nc, and bash's /dev/tcp.
load ../helpers/ipc
load ../helpers/sockets

log() { bg_out server; } # the server's stdout: readiness line and connection log
errs() { bg_err server; }

# Sockets opened by a test use descriptors from {var} (10 and up): fd 3 is bats' own.

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

# ---- The echo, in both models ----

echo_lines() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0
    printf 'hello\nworld\nno newline at the end' >"$BATS_TEST_TMPDIR/in"
    socat -t 5 - "TCP:$ADDR" <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out"
    cmp "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out"
    wait_for_line "$(log)" '^conn 1 closed:'
    run cat "$(log)"
    assert_line --regexp "^conn 1 open: remote 127\.0\.0\.1:[0-9]+, local $ADDR$"
    assert_line --regexp "^conn 1 closed: remote 127\.0\.0\.1:[0-9]+, local $ADDR; 33 bytes in, 33 bytes out, 3 lines; eof$"
}
@test "thread: lines echo back, the last one even without its newline (socat)" { echo_lines thread; }
@test "epoll: lines echo back, the last one even without its newline (socat)" { echo_lines epoll; }

binary_bytes() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0
    local in=$BATS_TEST_TMPDIR/in
    head -c 300000 /dev/urandom >"$in"
    printf '\0\0\n\xff\xfe\xc3\x28 not UTF-8\n\0' >>"$in"
    socat -t 10 - "TCP:$ADDR" <"$in" >"$BATS_TEST_TMPDIR/socat.out"
    cmp "$in" "$BATS_TEST_TMPDIR/socat.out"
    nc -N "$HOST" "$PORT" <"$in" >"$BATS_TEST_TMPDIR/nc.out"
    cmp "$in" "$BATS_TEST_TMPDIR/nc.out"
}
@test "thread: NUL and non-UTF-8 bytes echo intact (socat, nc)" { binary_bytes thread; }
@test "epoll: NUL and non-UTF-8 bytes echo intact (socat, nc)" { binary_bytes epoll; }

many_clients() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0
    local i pids=()
    for i in $(seq 20); do
        bg_start "client$i" bash -c 'for n in 1 2 3; do echo "client $0 line $n"; done | nc -N "$1" "$2"' "$i" "$HOST" "$PORT"
        pids+=("$BG_PID")
    done
    for i in "${!pids[@]}"; do
        wait_for_exit "${pids[$i]}" 20
        assert_equal "$BG_STATUS" 0
        run cat "$(bg_out "client$((i + 1))")"
        assert_output "$(printf 'client %s line %s\n' $((i + 1)) 1 $((i + 1)) 2 $((i + 1)) 3)"
    done
    wait_for_count "$(log)" '^conn [0-9]+ closed: .*; eof$' 20
}
@test "thread: 20 clients at once each get their own lines back (nc)" { many_clients thread; }
@test "epoll: 20 clients at once each get their own lines back (nc)" { many_clients epoll; }

bash_client() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0
    local s reply
    exec {s}<>"/dev/tcp/$HOST/$PORT"
    printf 'one\n' >&"$s"
    read -r -t 5 reply <&"$s"
    assert_equal "$reply" "one"
    printf 'two\nthree\n' >&"$s"
    read -r -t 5 reply <&"$s"
    assert_equal "$reply" "two"
    read -r -t 5 reply <&"$s"
    assert_equal "$reply" "three"
    exec {s}>&-
    wait_for_line "$(log)" '^conn 1 closed: .*3 lines; eof$'
}
@test "thread: a conversation over bash's /dev/tcp" { bash_client thread; }
@test "epoll: a conversation over bash's /dev/tcp" { bash_client epoll; }

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

unix_stream() {
    local path=$BATS_TEST_TMPDIR/echo.sock
    start_echoserver server --model "$1" --network unix --listen "$path"
    assert_equal "$ADDR" "$path"
    [[ -S $path ]]
    run nc -N -U "$path" <<<"through a unix socket"
    assert_output "through a unix socket"
    run socat -t 5 - "UNIX-CONNECT:$path" <<<"and with socat"
    assert_output "and with socat"
    wait_for_line "$(log)" "^conn 2 closed: remote unnamed, local $path; "
    kill -INT "$SERVER_PID"
    wait_for_exit "$SERVER_PID"
    assert_equal "$BG_STATUS" 0
    [[ ! -e $path ]] # removed on exit
}
@test "thread: unix stream socket (nc -U, socat), removed on SIGINT" { unix_stream thread; }
@test "epoll: unix stream socket (nc -U, socat), removed on SIGINT" { unix_stream epoll; }

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

unixpacket() {
    local path=$BATS_TEST_TMPDIR/packet.sock
    start_echoserver server --model "$1" --network unixpacket --listen "$path" --max-line 8
    # socat -b4 reads (and so sends) 4 bytes at a time: two messages, each echoed whole.
    printf 'abcdefgh' >"$BATS_TEST_TMPDIR/in"
    socat -b4 -t 5 - "UNIX-CONNECT:$path,type=5" <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out"
    cmp "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out"
    wait_for_line "$(log)" '^conn 1 closed: .*; 8 bytes in, 8 bytes out, 2 messages; eof$'
    # No newline framing: a message with newlines inside is one message.
    printf 'a\nb\nc' >"$BATS_TEST_TMPDIR/in"
    socat -t 5 - "UNIX-CONNECT:$path,type=5" <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out"
    cmp "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out"
    wait_for_line "$(log)" '^conn 2 closed: .*; 5 bytes in, 5 bytes out, 1 messages; eof$'
    # A message over --max-line gets the error, and the connection is closed.
    run socat -t 5 - "UNIX-CONNECT:$path,type=5" <<<"0123456789"
    assert_output "error: message longer than 8 B"
    wait_for_line "$(log)" '^conn 3 closed: .*; message longer than --max-line 8 B$'
}
@test "thread: unixpacket keeps message boundaries (socat type=5)" { unixpacket thread; }
@test "epoll: unixpacket keeps message boundaries (socat type=5)" { unixpacket epoll; }

# ---- Datagrams ----

@test "udp: each datagram is echoed to its sender (socat, nc -u)" {
    start_echoserver server --network udp --listen 127.0.0.1:0
    # UDP has no end of stream: socat would wait its whole -t for more replies. Wait for the line.
    bg_start socat bash -c 'exec socat -t 30 - "UDP:$0" <<<"a datagram"' "$ADDR"
    wait_for_line "$(bg_out socat)" '^a datagram$'
    run nc -u -W 1 -w 5 "$HOST" "$PORT" <<<"another"
    assert_output "another"
    run cat "$(log)"
    assert_line --regexp "^datagram: remote 127\.0\.0\.1:[0-9]+, local $ADDR; 11 bytes echoed$"
}

@test "unixgram: a client that binds a path gets the echo; an unbound one cannot (logged)" {
    local path=$BATS_TEST_TMPDIR/gram.sock
    start_echoserver server --network unixgram --listen "$path"
    bg_start socat bash -c 'exec socat -t 30 - "UNIX-SENDTO:$0,bind=$1" <<<"bound client"' "$path" "$BATS_TEST_TMPDIR/client.sock"
    wait_for_line "$(bg_out socat)" '^bound client$'
    run nc -uU -W 1 -w 5 "$path" <<<"nc binds one for itself"
    assert_output "nc binds one for itself"
    socat -t 0 - "UNIX-SENDTO:$path" <<<"unbound"
    wait_for_line "$(log)" "^datagram: remote unnamed, local $path; 8 bytes not echoed: the client bound no address to reply to$"
    kill -TERM "$SERVER_PID"
    wait_for_exit "$SERVER_PID"
    assert_equal "$BG_STATUS" 0
    [[ ! -e $path ]]
}

# ---- Deadlines and limits ----

idle_timeout() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0 --timeout 300ms
    local s reply
    exec {s}<>"/dev/tcp/$HOST/$PORT"
    read -r -t 10 reply <&"$s"
    assert_equal "$reply" "error: idle timeout"
    wait_for_line "$(log)" '^conn 1 closed: .*; idle timeout: no whole line in 300ms$'
    # A client sending 1 byte per second never completes a line in time either.
    exec {s}<>"/dev/tcp/$HOST/$PORT"
    local b
    for b in s l o w l y; do
        (printf %s "$b" >&"$s") 2>/dev/null || break # a subshell: its SIGPIPE is not ours
        grep -q '^conn 2 closed:' "$(log)" && break
        sleep 1
    done
    wait_for_line "$(log)" '^conn 2 closed: .*; idle timeout: no whole line in 300ms$'
    read -r -t 10 reply <&"$s"
    assert_equal "$reply" "error: idle timeout"
}
@test "thread: an idle client, and one sending 1 byte a second, are told and closed" { idle_timeout thread; }
@test "epoll: an idle client, and one sending 1 byte a second, are told and closed" { idle_timeout epoll; }

deadline_per_line() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0 --timeout 1s
    local s reply i
    # Whole lines every 100ms for longer than the timeout: the deadline is renewed per line.
    exec {s}<>"/dev/tcp/$HOST/$PORT"
    for i in $(seq 15); do
        printf 'line %d\n' "$i" >&"$s"
        sleep 0.1
    done
    for i in $(seq 15); do
        read -r -t 5 reply <&"$s"
        assert_equal "$reply" "line $i"
    done
    exec {s}>&-
    wait_for_line "$(log)" '^conn 1 closed: .*15 lines; eof$'
    # A byte every 100ms but never a newline: the deadline is per line, not per read.
    exec {s}<>"/dev/tcp/$HOST/$PORT"
    for i in $(seq 50); do
        (printf x >&"$s") 2>/dev/null || break
        grep -q '^conn 2 closed:' "$(log)" && break
        sleep 0.1
    done
    wait_for_line "$(log)" '^conn 2 closed: .*; idle timeout: no whole line in 1s$'
}
@test "thread: the deadline is renewed per line, not per read" { deadline_per_line thread; }
@test "epoll: the deadline is renewed per line, not per read" { deadline_per_line epoll; }

max_line() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0 --max-line 16
    run socat -t 5 - "TCP:$ADDR" <<<"$(printf 'short\nexactly-16-bytes\nthis line is longer than sixteen bytes\nnever read')"
    assert_output "$(printf 'short\nexactly-16-bytes\nerror: line longer than 16 B')"
    wait_for_line "$(log)" '^conn 1 closed: .*2 lines; line longer than --max-line 16 B$'
    # A megabyte without a newline: refused once 16 bytes are buffered, whatever follows. The
    # server closes with input unread, so the kernel resets the connection and the writer's next
    # write fails; bytes that arrived before the reset can still be read, so a separate reader
    # gets the reply (a client like socat that stops at its write error may lose it).
    head -c 1M /dev/zero >"$BATS_TEST_TMPDIR/zeros"
    local s reply
    exec {s}<>"/dev/tcp/$HOST/$PORT"
    bg_start writer bash -c 'cat "$0" >&"$1"' "$BATS_TEST_TMPDIR/zeros" "$s"
    read -r -t 10 reply <&"$s"
    assert_equal "$reply" "error: line longer than 16 B"
    exec {s}>&-
    wait_for_line "$(log)" '^conn 2 closed: .*0 lines; line longer than --max-line 16 B$'
}
@test "thread: --max-line: a longer line gets an error and the connection is closed" { max_line thread; }
@test "epoll: --max-line: a longer line gets an error and the connection is closed" { max_line epoll; }

max_conns() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0 --max-conns 1
    # Each client is its own process: a socket the test shell opened would be inherited by the
    # next client, and closing it here would not close the connection.
    bg_start first bash -c 'exec 4<>"/dev/tcp/$0/$1"; echo first >&4; read -r r <&4; echo "$r"; exec sleep 60' "$HOST" "$PORT"
    local first=$BG_PID
    wait_for_line "$(bg_out first)" '^first$'
    bg_start second bash -c 'exec 4<>"/dev/tcp/$0/$1"; echo second >&4; read -r -t 20 r <&4; echo "$r"' "$HOST" "$PORT"
    wait_for_line "$(log)" '^echoserver: 1 connections open \(--max-conns 1\): not accepting until one closes$'
    run cat "$(bg_out second)"
    assert_output "" # queued by the kernel, not served yet
    kill -KILL "$first"
    wait_for_line "$(bg_out second)" '^second$'
    wait_for_line "$(log)" '^conn 2 open:'
}
@test "thread: --max-conns: one more client waits in the queue until one leaves" { max_conns thread; }
@test "epoll: --max-conns: one more client waits in the queue until one leaves" { max_conns epoll; }

# ---- Faults: clients that vanish, reset, or never read ----

vanishing_clients() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0
    # Killed in the middle of a line.
    bg_start vanisher bash -c 'exec 4<>"/dev/tcp/$0/$1"; printf "half a li" >&4; echo sent; exec sleep 60' "$HOST" "$PORT"
    wait_for_line "$(bg_out vanisher)" '^sent$'
    kill -KILL "$BG_PID"
    wait_for_line "$(log)" '^conn 1 closed: '
    # Resets the connection (SO_LINGER 0: RST on close) while the server is still echoing 4 MB
    # to it: the server's send() fails with EPIPE or ECONNRESET instead of a SIGPIPE death.
    yes 'a line of text that the client will never read back' | head -c 4M >"$BATS_TEST_TMPDIR/lines"
    socat -u "FILE:$BATS_TEST_TMPDIR/lines" "TCP:$ADDR,linger=0" || true
    wait_for_line "$(log)" '^conn 2 closed: '
    run grep '^conn 2 closed: ' "$(log)"
    assert_output --regexp '(EPIPE|ECONNRESET|eof)'
    # And everybody else is still served.
    run nc -N "$HOST" "$PORT" <<<"still here"
    assert_output "still here"
    kill -0 "$SERVER_PID"
}
@test "thread: a client killed mid-line or resetting is logged; the others are still served" { vanishing_clients thread; }
@test "epoll: a client killed mid-line or resetting is logged; the others are still served" { vanishing_clients epoll; }

slow_reader() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0 --explain
    local big=$BATS_TEST_TMPDIR/big s
    yes 'a line that comes back only once the client reads again, 0123456789' | head -n 400000 >"$big"
    exec {s}<>"/dev/tcp/$HOST/$PORT"
    # The writer sends 27 MB while nobody reads the echo: the kernel buffers fill, then the server
    # must stop reading rather than queue the rest in memory.
    bg_start writer bash -c 'cat "$0" >&"$1"' "$big" "$s"
    if [[ $1 == epoll ]]; then
        wait_for_line "$(errs)" 'bytes queued for a slow reader: stop reading until they drain' 30
    fi
    head -c "$(stat -c %s "$big")" <&"$s" >"$BATS_TEST_TMPDIR/back"
    wait_for_exit "$BG_PID" 30
    assert_equal "$BG_STATUS" 0
    exec {s}>&-
    cmp "$big" "$BATS_TEST_TMPDIR/back"
    if [[ $1 == epoll ]]; then
        run cat "$(errs)"
        assert_output --regexp "send\([0-9]+\) = [0-9]+: a partial write; [0-9]+ bytes left"
        assert_output --regexp "send\([0-9]+\) = -1 EAGAIN: the socket buffer is full"
        assert_output --partial "queue drained: reading again"
    fi
}
@test "thread: a client that reads nothing for a while gets every byte back (27 MB)" { slow_reader thread; }
@test "epoll: a slow reader is not read until its queue drains; -x shows EAGAIN and partial writes" { slow_reader epoll; }

no_fd_leak() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0
    local before after i s reply
    before=$(fd_count "$SERVER_PID")
    for ((i = 1; i <= 2000; i++)); do
        exec {s}<>"/dev/tcp/$HOST/$PORT"
        printf '%d\n' "$i" >&"$s"
        read -r -t 5 reply <&"$s"
        exec {s}>&-
        [[ $reply == "$i" ]]
    done
    wait_for_count "$(log)" '^conn [0-9]+ closed: ' 2000 60
    after=$(fd_count "$SERVER_PID")
    assert_equal "$after" "$before"
}
@test "thread: 2,000 connections in a row leave no descriptor behind" { no_fd_leak thread; }
@test "epoll: 2,000 connections in a row leave no descriptor behind" { no_fd_leak epoll; }

# ulimit -n 64: the server can hold about 55 connections. 200 clients arrive at once.
out_of_descriptors() {
    start_server server bash -c 'ulimit -n 64 && exec "$0" "$@"' "$BIN/echoserver" --model "$1" --listen 127.0.0.1:0
    local base ticks fds=() fd i reply served=0 refused=0
    base=$(fd_count "$SERVER_PID")
    burst() {
        fds=()
        for i in $(seq 200); do
            exec {fd}<>"/dev/tcp/$HOST/$PORT"
            fds+=("$fd")
        done
        for i in "${!fds[@]}"; do (printf 'hello %d\n' "$i" >&"${fds[$i]}") 2>/dev/null || true; done
        served=0 refused=0
        for i in "${!fds[@]}"; do
            reply=
            read -r -t 10 reply <&"${fds[$i]}" 2>/dev/null || true
            if [[ $reply == "hello $i" ]]; then
                served=$((served + 1))
            else
                refused=$((refused + 1))
            fi
        done
    }
    burst
    echo "# $1: served $served, refused $refused" >&3
    ((served >= 30 && refused >= 100))
    run grep -c 'EMFILE' "$(errs)"
    assert_output 1 # once per burst, not once per client
    # While the 200 are held, the server must be idle, not retrying accept(): check the CPU time
    # it uses over one second (an observation window, not a wait for another process).
    ticks=$(cpu_ticks "$SERVER_PID")
    sleep 1
    (($(cpu_ticks "$SERVER_PID") - ticks <= 20))
    # The ones it serves are still served.
    (printf 'again\n' >&"${fds[0]}") 2>/dev/null
    read -r -t 5 reply <&"${fds[0]}"
    assert_equal "$reply" "again"
    # Clients leave: it recovers, and accepts again.
    for fd in "${fds[@]}"; do exec {fd}>&-; done
    wait_for_count "$(log)" '^conn [0-9]+ closed: ' "$served"
    run nc -N "$HOST" "$PORT" <<<"after the burst"
    assert_output "after the burst"
    run grep -E '^echoserver: accepting again; [0-9]+ connections were refused' "$(log)"
    assert_success
    # A second burst is a second report.
    burst
    ((served >= 30))
    run grep -c 'EMFILE' "$(errs)"
    assert_output 2
    for fd in "${fds[@]}"; do exec {fd}>&-; done
    wait_for_count "$(log)" '^conn [0-9]+ closed: ' $((2 * served + 1))
    assert_equal "$(fd_count "$SERVER_PID")" "$base"
}
@test "thread: ulimit -n 64 and 200 clients: serves what it can, EMFILE once, no spinning, recovers" { out_of_descriptors thread; }
@test "epoll: ulimit -n 64 and 200 clients: serves what it can, EMFILE once, no spinning, recovers" { out_of_descriptors epoll; }

# ---- SIGINT/SIGTERM: stop accepting, drain, exit 0 ----

drain() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0 --drain 10s --explain
    local idle busy reply
    exec {idle}<>"/dev/tcp/$HOST/$PORT"
    exec {busy}<>"/dev/tcp/$HOST/$PORT"
    printf 'half a ' >&"$busy"
    wait_for_line "$(errs)" '^\[[0-9]+\] conn 2: recv\(\) = 7$' # the server holds half a line
    kill -TERM "$SERVER_PID"
    wait_for_line "$(log)" '^echoserver: SIGTERM: not accepting any more; 2 open connections finish their line'
    # The idle one is closed at once; no new client is accepted.
    run timeout 5 cat <&"$idle"
    assert_success
    assert_output ""
    run bash -c 'exec 4<>"/dev/tcp/$0/$1"' "$HOST" "$PORT"
    assert_failure
    # The busy one finishes its line, gets it back, and is closed.
    printf 'line\n' >&"$busy"
    read -r -t 5 reply <&"$busy"
    assert_equal "$reply" "half a line"
    wait_for_exit "$SERVER_PID" 10
    assert_equal "$BG_STATUS" 0
    run cat "$(log)"
    assert_line --regexp '^conn 1 closed: .*; shutdown$'
    assert_line --regexp '^conn 2 closed: .*; 12 bytes in, 12 bytes out, 1 lines; shutdown$'
    assert_line "echoserver: stopped after 2 connections"
}
@test "thread: SIGTERM: idle clients closed, a line in progress finishes, exit 0" { drain thread; }
@test "epoll: SIGTERM: idle clients closed, a line in progress finishes, exit 0" { drain epoll; }

drain_deadline() {
    start_echoserver server --model "$1" --listen 127.0.0.1:0 --drain 300ms --explain
    local busy
    exec {busy}<>"/dev/tcp/$HOST/$PORT"
    printf 'a line that never ends' >&"$busy"
    wait_for_line "$(errs)" '^\[[0-9]+\] conn 1: recv\(\) = 22$'
    kill -TERM "$SERVER_PID"
    wait_for_exit "$SERVER_PID" 10
    assert_equal "$BG_STATUS" 0
    run cat "$(log)"
    assert_line "echoserver: drain deadline: closing 1 connections"
    assert_line --regexp '^conn 1 closed: .*; drain deadline$'
}
@test "thread: --drain: a line never finished is cut at the drain deadline, exit 0" { drain_deadline thread; }
@test "epoll: --drain: a line never finished is cut at the drain deadline, exit 0" { drain_deadline epoll; }

@test "a second SIGINT ends the drain at once" {
    start_echoserver server --listen 127.0.0.1:0 --drain 60s --explain
    local busy
    exec {busy}<>"/dev/tcp/$HOST/$PORT"
    printf 'unfinished' >&"$busy"
    wait_for_line "$(errs)" '^\[[0-9]+\] conn 1: recv\(\) = 10$'
    kill -INT "$SERVER_PID"
    wait_for_line "$(log)" 'SIGINT: not accepting any more'
    kill -INT "$SERVER_PID"
    wait_for_exit "$SERVER_PID" 10
    assert_equal "$BG_STATUS" 0
    run cat "$(log)"
    assert_line "echoserver: SIGINT again: closing now"
}

@test "-x narrates the system calls" {
    start_echoserver server --listen 127.0.0.1:0 --model epoll --explain
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
