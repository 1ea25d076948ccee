#!/usr/bin/env bats
# echoclient against socat servers (PIPE echoes; other programs misbehave on purpose), and
# against echoserver, echoloop and echodgram when they are built. Its load generators moved to
# ipcbench echo (tests/bench/ipcbench.bats).
load ../helpers/ipc
load ../helpers/sockets

# start_socat NAME ADDRESS1 ADDRESS2: socat -d -d in the background; waits for its "listening
# on" (or "receiving on") line on stderr. Sets SOCAT_PID, and PORT for a TCP listener.
start_socat() {
    local name=$1
    shift
    bg_start "$name" socat -d -d "$@"
    SOCAT_PID=$BG_PID
    wait_for_line "$(bg_err "$name")" ' (listening|receiving) on ' 10
    PORT=$(sed -n 's/.* listening on AF=[0-9]* .*:\([0-9][0-9]*\)$/\1/p' "$(bg_err "$name")" | head -n 1)
}

# The port of PID's UDP socket, from /proc/net/udp: socat reports the port 0 it asked for.
udp_port() {
    local link target inode hex
    for link in /proc/"$1"/fd/*; do
        target=$(readlink "$link") || continue
        [[ $target == socket:* ]] || continue
        inode=${target#socket:[}
        inode=${inode%]}
        hex=$(awk -v i="$inode" '$10 == i { split($2, a, ":"); print a[2] }' /proc/net/udp)
        if [[ -n $hex ]]; then
            echo $((16#$hex))
            return 0
        fi
    done
    return 1
}

# server_up TOOL NAME ARGS...: the server TOOL in the background (skips when it is not built);
# sets ADDR from its readiness line "TOOL: listening on NETWORK ADDR".
server_up() {
    local tool=$1
    shift
    [[ -x $BIN/$tool ]] || skip "$tool not built"
    start_server "$1" "$BIN/$tool" "${@:2}"
}

teardown() {
    # A listener stopped to keep its backlog full cannot act on SIGTERM until it continues.
    if [[ -n ${STOPPED_PID:-} ]]; then kill -CONT "$STOPPED_PID" 2>/dev/null || true; fi
    bg_stop_all
}

# ---- lines ----

@test "each argument goes as a line and comes back; exit 0" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" --connect "127.0.0.1:$PORT" hello "two words"
    assert_success
    assert_output $'hello\ntwo words'
}

@test "without arguments, stdin's lines are sent; a last line without newline gets one" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run bash -c 'printf "one\n\nthree" | "$TOOL" --connect "127.0.0.1:$1"' _ "$PORT"
    assert_success
    assert_output $'one\n\nthree'
}

@test "NUL and non-UTF-8 bytes echo intact" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    printf 'a\0b\xff\xfe\n\x80\x01 \r\n' >"$BATS_TEST_TMPDIR/in"
    run bash -c '"$TOOL" --connect "127.0.0.1:$1" <"$2" >"$2.out"' _ "$PORT" "$BATS_TEST_TMPDIR/in"
    assert_success
    cmp "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/in.out"
}

@test "-v prints LocalAddr and RemoteAddr on stderr; stdout holds only the echo" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run bash -c '"$TOOL" -v --connect "127.0.0.1:$1" hi 2>"$2"' _ "$PORT" "$BATS_TEST_TMPDIR/err"
    assert_success
    assert_output "hi"
    run cat "$BATS_TEST_TMPDIR/err"
    assert_line --regexp '^echoclient: LocalAddr tcp 127\.0\.0\.1:[0-9]+ \(getsockname\)$'
    assert_line "echoclient: RemoteAddr tcp 127.0.0.1:$PORT (getpeername)"
}

@test "-x narrates the non-blocking connect and the waits for each reply" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" -x --connect "127.0.0.1:$PORT" hi
    assert_success
    assert_line --regexp '^\[[0-9]+\] socket\(AF_INET, SOCK_STREAM\|SOCK_NONBLOCK\|SOCK_CLOEXEC\) = [0-9]+$'
    assert_line --regexp "^\[[0-9]+\] connect\([0-9]+, 127\.0\.0\.1:$PORT\) = -1 EINPROGRESS"
    assert_line --regexp '^\[[0-9]+\] poll\([0-9]+, POLLOUT\) = 1; getsockopt\(SO_ERROR\) = 0$'
    assert_line --regexp '^\[[0-9]+\] send\([0-9]+, 3 bytes\) = 3$'
    assert_line --regexp '^\[[0-9]+\] recv\([0-9]+\) = 3$'
}

@test "a reply that comes in pieces is read until its newline (partial reads)" {
    # The server writes "he", pauses, then "llo\n": two reads on our side make one reply.
    # (The pause is the server's, to split the reply; nothing here waits on it.)
    start_socat slow TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 \
        SYSTEM:'read -r l; printf he; sleep 0.3; echo llo'
    run "$TOOL" -x --connect "127.0.0.1:$PORT" hello
    assert_success
    assert_line "hello"
    assert_line --regexp '^\[[0-9]+\] recv\([0-9]+\) = 2 \(partial read: no .\\n. yet, keep reading\)$'
    assert_line --regexp '^\[[0-9]+\] recv\([0-9]+\) = 4$'
}

@test "a reply that differs: the reply is printed, the mismatch named, exit 1" {
    start_socat other TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 SYSTEM:'read -r l; echo other'
    run "$TOOL" --connect "127.0.0.1:$PORT" hello
    assert_failure 1
    assert_line "other"
    assert_line 'echoclient: line 1: the reply differs from what was sent: sent "hello\n" (6 bytes), got "other\n" (6 bytes)'
}

@test "a server that closes before replying: a clear message, exit 1" {
    start_socat closer TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 SYSTEM:'read -r l'
    run "$TOOL" --connect "127.0.0.1:$PORT" hello
    assert_failure 1
    assert_output "echoclient: line 1: connection closed by the server before the reply was complete (0 bytes of it had come)"
}

@test "a server that never answers: the deadline ends the wait, exit 1" {
    start_socat mute TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 SYSTEM:'cat >/dev/null'
    run "$TOOL" --connect "127.0.0.1:$PORT" --deadline 300ms hello
    assert_failure 1
    assert_output "echoclient: line 1: no reply within 300ms (--deadline); 0 bytes of it had come"
}

@test "a closed stdout is an error (EPIPE), not a death by SIGPIPE" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run bash -c 'exec 4>&1; { "$TOOL" --connect "127.0.0.1:$1" a b 2>&4; echo "status $?" >&4; } | true' _ "$PORT"
    assert_line "status 1"
    assert_line "echoclient: write(stdout): Broken pipe (EPIPE)"
}

# ---- dialing ----

@test "connection refused: the errno, exit 1" {
    run "$TOOL" --connect 127.0.0.1:1 hello
    assert_failure 1
    assert_output "echoclient: connect(127.0.0.1:1): Connection refused (ECONNREFUSED)"
}

@test "a unix socket path that does not exist: ENOENT, exit 1" {
    run "$TOOL" --network unix --connect "$BATS_TEST_TMPDIR/none.sock" hello
    assert_failure 1
    assert_output "echoclient: connect($BATS_TEST_TMPDIR/none.sock): No such file or directory (ENOENT)"
}

@test "dial timeout: a unix listener whose backlog is full and who never accepts" {
    sock=$BATS_TEST_TMPDIR/full.sock
    start_socat full UNIX-LISTEN:"$sock",backlog=1 PIPE
    kill -STOP "$SOCAT_PID" # it accepts no more: each connect waits in its backlog
    STOPPED_PID=$SOCAT_PID
    # Clients that connect and leave stay queued; fill the backlog until a connect must wait.
    for _ in 1 2 3 4 5 6; do
        run "$TOOL" --network unix --connect "$sock" --dial-timeout 300ms </dev/null
        ((status == 0)) || break
    done
    assert_failure 1
    assert_output "echoclient: connect($sock): timed out after 300ms (--dial-timeout): the listener's backlog is full and nobody accepts (EAGAIN)"
}

@test "dial timeout: a TCP listener whose accept queue is full drops the SYN" {
    start_socat full TCP-LISTEN:0,bind=127.0.0.1,backlog=1 PIPE
    kill -STOP "$SOCAT_PID"
    STOPPED_PID=$SOCAT_PID
    for _ in 1 2 3 4 5 6; do
        run "$TOOL" --connect "127.0.0.1:$PORT" --dial-timeout 300ms </dev/null
        ((status == 0)) || break
    done
    assert_failure 1
    assert_output "echoclient: connect(127.0.0.1:$PORT): timed out after 300ms (--dial-timeout)"
}

@test "bad addresses are usage errors (exit 2)" {
    run "$TOOL" --connect 127.0.0.1 x
    assert_usage_error "--connect 127.0.0.1: missing port"
    run "$TOOL" --connect 127.0.0.1:0 x
    assert_usage_error "port '0' is not a number from 1 to 65535"
    run "$TOOL" --connect 127.0.0.1:http x
    assert_usage_error "port 'http' is not a number"
    run "$TOOL" --connect ::1:80 x
    assert_usage_error "an IPv6 address needs brackets: [::1]:80"
    run "$TOOL" --network tcp6 --connect 127.0.0.1:80 x
    assert_usage_error "127.0.0.1 is not an IPv6 address, as network tcp6 needs"
    run "$TOOL" --network unix --connect "" x
    assert_usage_error "--connect: empty socket path"
    run "$TOOL" --network sctp x
    assert_usage_error "--network"
    run "$TOOL" --deadline 5 x
    assert_usage_error "invalid duration '5' (missing unit)"
}

# ---- the other networks ----

@test "tcp6 over [::1]" {
    have_ipv6 || skip "no IPv6 loopback"
    start_socat echo6 TCP6-LISTEN:0,bind=[::1],reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" --network tcp6 --connect "[::1]:$PORT" -v hello
    assert_success
    assert_line "hello"
    assert_line "echoclient: RemoteAddr tcp6 [::1]:$PORT (getpeername)"
}

@test "unix: a stream socket by path; the client is unnamed" {
    sock=$BATS_TEST_TMPDIR/echo.sock
    start_socat echo UNIX-LISTEN:"$sock",fork PIPE
    run "$TOOL" --network unix --connect "$sock" -v hello world
    assert_success
    assert_line "hello"
    assert_line "world"
    assert_line "echoclient: LocalAddr unix unnamed (getsockname)"
    assert_line "echoclient: RemoteAddr unix $sock (getpeername)"
}

@test "unixpacket: one message per line, no newline needed" {
    sock=$BATS_TEST_TMPDIR/packet.sock
    start_socat packet UNIX-LISTEN:"$sock",fork,type=5 PIPE # 5: SOCK_SEQPACKET
    run "$TOOL" --network unixpacket --connect "$sock" -x hello
    assert_success
    assert_line "hello"
    assert_line --regexp '^\[[0-9]+\] send\([0-9]+, 5 bytes\) = 5$'
    assert_line --regexp '^\[[0-9]+\] recv\([0-9]+\) = 5: one whole message$'
}

@test "udp: one datagram per line" {
    start_socat udp UDP-RECVFROM:0,bind=127.0.0.1,fork PIPE
    port=$(udp_port "$SOCAT_PID")
    run "$TOOL" --network udp --connect "127.0.0.1:$port" -v hello "second datagram"
    assert_success
    assert_line "hello"
    assert_line "second datagram"
    assert_line --regexp '^echoclient: LocalAddr udp 127\.0\.0\.1:[0-9]+ \(getsockname\)$'
}

@test "udp with nobody there: ICMP port unreachable comes back as ECONNREFUSED" {
    run "$TOOL" --network udp --connect 127.0.0.1:1 --deadline 2s hello
    assert_failure 1
    assert_output "echoclient: line 1: recv: Connection refused (ECONNREFUSED)"
}

@test "unixgram: the client binds a temporary path for the replies and removes it" {
    sock=$BATS_TEST_TMPDIR/gram.sock
    mkdir "$BATS_TEST_TMPDIR/tmp"
    start_socat gram UNIX-RECVFROM:"$sock",fork PIPE
    TMPDIR=$BATS_TEST_TMPDIR/tmp run "$TOOL" --network unixgram --connect "$sock" -v hello world
    assert_success
    assert_line "hello"
    assert_line "world"
    assert_line --regexp "^echoclient: LocalAddr unixgram $BATS_TEST_TMPDIR/tmp/echoclient\.[A-Za-z0-9]{6}/client\.sock \(getsockname\)$"
    run ls -A "$BATS_TEST_TMPDIR/tmp"
    assert_output ""
}

@test "unixgram: the temporary path is removed on a failure too" {
    mkdir "$BATS_TEST_TMPDIR/tmp"
    TMPDIR=$BATS_TEST_TMPDIR/tmp run "$TOOL" --network unixgram --connect "$BATS_TEST_TMPDIR/none.sock" hello
    assert_failure 1
    assert_output --partial "No such file or directory (ENOENT)"
    run ls -A "$BATS_TEST_TMPDIR/tmp"
    assert_output ""
}

# ---- the load generators moved out ----

@test "--bench and --bulk are ipcbench echo's now: a usage error that names it" {
    run "$TOOL" --bench --connect 127.0.0.1:1
    assert_usage_error "--bench: the load generators moved to the benchmark tool: run ipcbench echo --connect ADDR"
    run "$TOOL" --bulk 1G
    assert_usage_error "--bulk: the load generators moved to the benchmark tool: run ipcbench echo"
    run "$TOOL" --bulk=16M --conns 4
    assert_usage_error "--bulk: the load generators moved"
}

@test "stdout full or closed: one line, exit 1 (--help and --version too)" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run bash -c '"$TOOL" --connect "127.0.0.1:$1" hello >/dev/full' _ "$PORT"
    assert_failure 1
    assert_output "echoclient: write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$TOOL" --connect "127.0.0.1:$1" hello >&-' _ "$PORT"
    assert_failure 1
    assert_output "echoclient: write(stdout): Bad file descriptor (EBADF)"
    run bash -c '"$TOOL" --help >/dev/full'
    assert_failure 1
    assert_output "echoclient: write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$TOOL" --version >&-'
    assert_failure 1
    assert_output "echoclient: write(stdout): Bad file descriptor (EBADF)"
}

@test "unixgram: the temporary path is removed when stdout fails too" {
    sock=$BATS_TEST_TMPDIR/gram.sock
    mkdir "$BATS_TEST_TMPDIR/tmp"
    start_socat gram UNIX-RECVFROM:"$sock",fork PIPE
    TMPDIR=$BATS_TEST_TMPDIR/tmp run bash -c '"$TOOL" --network unixgram --connect "$1" hello >/dev/full' _ "$sock"
    assert_failure 1
    assert_output "echoclient: write(stdout): No space left on device (ENOSPC)"
    run ls -A "$BATS_TEST_TMPDIR/tmp"
    assert_output ""
}

@test "--help says what it demonstrates; --version" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "DialTimeout"
    assert_output --partial "SetDeadline"
    assert_output --partial "ipcbench echo"
    run "$TOOL" --version
    assert_success
    assert_output --regexp '^echoclient \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

# ---- against the servers (skipped until they are built beside us) ----

@test "echoserver: lines" {
    server_up echoserver srv --listen 127.0.0.1:0
    run "$TOOL" --connect "$ADDR" hello "two words"
    assert_success
    assert_output $'hello\ntwo words'
}

@test "echoloop: bytes intact" {
    server_up echoloop srv --listen 127.0.0.1:0
    printf 'a\0b\xff\xfe\n\x80\x01 \r\n' >"$BATS_TEST_TMPDIR/in"
    run bash -c '"$TOOL" --connect "$1" <"$2" >"$2.out"' _ "$ADDR" "$BATS_TEST_TMPDIR/in"
    assert_success
    cmp "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/in.out"
}

@test "echoserver over unix and unixpacket, echodgram over udp and unixgram" {
    server_up echoserver unix --network unix --listen "$BATS_TEST_TMPDIR/s.sock"
    run "$TOOL" --network unix --connect "$ADDR" hello
    assert_success
    assert_output "hello"
    server_up echoserver packet --network unixpacket --listen "$BATS_TEST_TMPDIR/p.sock"
    run "$TOOL" --network unixpacket --connect "$ADDR" hello
    assert_success
    assert_output "hello"
    server_up echodgram udp --network udp --listen 127.0.0.1:0
    run "$TOOL" --network udp --connect "$ADDR" hello
    assert_success
    assert_output "hello"
    server_up echodgram gram --network unixgram --listen "$BATS_TEST_TMPDIR/g.sock"
    run "$TOOL" --network unixgram --connect "$ADDR" hello
    assert_success
    assert_output "hello"
}
