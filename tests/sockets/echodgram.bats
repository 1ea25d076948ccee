#!/usr/bin/env bats
# echodgram: udp, udp4, udp6 and unixgram, each datagram echoed to its sender (Go's ListenPacket,
# ReadFrom, WriteTo). Clients are the real tools: socat and nc -u.
load ../helpers/ipc
load ../helpers/sockets

log() { bg_out server; } # the server's stdout: readiness line and one line per datagram
errs() { bg_err server; }

@test "--help says what it demonstrates; --version" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "ListenPacket"
    assert_output --partial "--max-line"
    assert_output --partial "Example:"
    run "$TOOL" --version
    assert_success
    assert_output --regexp '^echodgram \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "usage errors exit 2: a stream network names echoserver; no connection options" {
    local net
    for net in tcp tcp4 tcp6 unix unixpacket; do
        run "$TOOL" --network "$net" --listen 127.0.0.1:0
        assert_usage_error "--network $net: echodgram serves datagrams (udp|udp4|udp6|unixgram); $net is echoserver's (as Go's net.ListenPacket refuses it)"
    done
    run "$TOOL" --network unixgram
    assert_usage_error "needs --listen PATH"
    run "$TOOL" --max-line 0 --listen 127.0.0.1:0
    assert_usage_error "--max-line"
    run "$TOOL" --max-conns 5 --listen 127.0.0.1:0
    assert_usage_error "--max-conns"
    run "$TOOL" --listen '[::1'
    assert_usage_error "expected [IPv6]:port"
}

@test "udp: each datagram is echoed to its sender (socat, nc -u)" {
    start_tool server --network udp --listen 127.0.0.1:0
    # UDP has no end of stream: socat would wait its whole -t for more replies. Wait for the line.
    bg_start socat bash -c 'exec socat -t 30 - "UDP:$0" <<<"a datagram"' "$ADDR"
    wait_for_line "$(bg_out socat)" '^a datagram$'
    run nc -u -W 1 -w 5 "$HOST" "$PORT" <<<"another"
    assert_output "another"
    run cat "$(log)"
    assert_line --regexp "^datagram: remote 127\.0\.0\.1:[0-9]+, local $ADDR; 11 bytes echoed$"
}

@test "udp is the default network; udp6 on [::1]:0" {
    start_tool server --listen 127.0.0.1:0
    run head -n 1 "$(log)"
    assert_output "echodgram: listening on udp 127.0.0.1:$PORT"
    have_ipv6 || skip "no ::1 on this machine"
    start_tool server6 --network udp6 --listen '[::1]:0'
    run nc -6 -u -W 1 -w 5 ::1 "$PORT" <<<"over IPv6"
    assert_output "over IPv6"
}

@test "unixgram: a client that binds a path gets the echo; an unbound one cannot (logged)" {
    local path=$BATS_TEST_TMPDIR/gram.sock
    start_tool server --network unixgram --listen "$path"
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
    run tail -n 1 "$(log)"
    assert_output "echodgram: SIGTERM: stopped after 3 datagrams"
}

@test "--max-line: a longer datagram is answered with an error, not echoed" {
    start_tool server --listen 127.0.0.1:0 --max-line 8
    run nc -u -W 1 -w 5 "$HOST" "$PORT" <<<"0123456789"
    assert_output "error: datagram longer than 8 B"
    run nc -u -W 1 -w 5 "$HOST" "$PORT" <<<"1234567"
    assert_output "1234567"
    run cat "$(log)"
    assert_line --regexp "^datagram: remote 127\.0\.0\.1:[0-9]+, local $ADDR; 11 bytes refused: longer than --max-line 8 B$"
    assert_line --regexp "^datagram: remote 127\.0\.0\.1:[0-9]+, local $ADDR; 8 bytes echoed$"
}

@test "a unix path that is not a socket is never replaced (exit 1)" {
    local path=$BATS_TEST_TMPDIR/precious
    echo "keep me" >"$path"
    run "$TOOL" --network unixgram --listen "$path"
    assert_failure 1
    assert_output "echodgram: $path exists and is not a socket: not replacing it"
}

@test "-x narrates socket, bind, recvfrom and sendto: no listen, no accept" {
    start_tool server --listen 127.0.0.1:0 --explain
    run nc -u -W 1 -w 5 "$HOST" "$PORT" <<<"narrated"
    assert_output "narrated"
    run cat "$(errs)"
    assert_line --regexp '^\[[0-9]+\] socket\(udp\) = [0-9]+$'
    assert_line --regexp "^\[[0-9]+\] bind\([0-9]+, 127\.0\.0\.1:0\)$"
    assert_line --regexp "^\[[0-9]+\] recvfrom\([0-9]+\) = 9 from 127\.0\.0\.1:[0-9]+$"
    assert_line --regexp "^\[[0-9]+\] sendto\([0-9]+, 127\.0\.0\.1:[0-9]+\) = 9$"
    refute_output --partial "listen("
    refute_output --partial "accept"
}

@test "stdout full or closed: one line, exit 1; the unix socket file is removed all the same" {
    local path=$BATS_TEST_TMPDIR/out.sock
    run bash -c '"$0" --network unixgram --listen "$1" >/dev/full' "$TOOL" "$path"
    assert_failure 1
    assert_output "echodgram: write(stdout): No space left on device (ENOSPC)"
    [[ ! -e $path ]]
    run bash -c '"$0" --listen 127.0.0.1:0 >&-' "$TOOL"
    assert_failure 1
    assert_output "echodgram: write(stdout): Bad file descriptor (EBADF)"
    run bash -c '"$0" --help >/dev/full' "$TOOL"
    assert_failure 1
    assert_output "echodgram: write(stdout): No space left on device (ENOSPC)"
}
