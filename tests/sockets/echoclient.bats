#!/usr/bin/env bats
# echoclient against socat servers (PIPE echoes; other programs misbehave on purpose), and
# against echoserver when it is built.
load ../helpers/ipc

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

# echoserver_up NAME ARGS...: echoserver in the background (skips when it is not built); sets
# ADDR from its readiness line "echoserver: listening on NETWORK ADDR".
echoserver_up() {
    [[ -x $BIN/echoserver ]] || skip "echoserver not built"
    local name=$1
    shift
    bg_start "$name" "$BIN/echoserver" "$@"
    wait_for_line "$(bg_out "$name")" '^echoserver: listening on ' 10
    ADDR=$(sed -n 's/^echoserver: listening on [a-z0-9]* //p' "$(bg_out "$name")" | head -n 1)
}

have_ipv6() {
    grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null
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
    assert_usage_error "127.0.0.1 is not an IPv6 address, as --network tcp6 needs"
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

# ---- --bench and --bulk ----
# For --bulk, socat runs with -b 4096: with its default 8 KiB blocks, socat's PIPE can block for
# good writing into its own full pipe (it is that pipe's only reader) once the echo backs up.

@test "--bench: small run against socat PIPE prints the table" {
    start_socat echo TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" --connect "127.0.0.1:$PORT" --bench --conns 4 --requests 2000
    assert_success
    assert_line --regexp '^network +address +conns +size +requests +seconds +requests/s +p50_us +p99_us +max_us$'
    assert_line --regexp "^tcp +127\.0\.0\.1:$PORT +4 +32 +2000 +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$"
}

@test "--bench --json over a unix socket" {
    sock=$BATS_TEST_TMPDIR/echo.sock
    start_socat echo UNIX-LISTEN:"$sock",fork,backlog=128 PIPE
    run "$TOOL" --network unix --connect "$sock" --bench --conns 3 --requests 500 --size 100 --json
    assert_success
    assert_output --regexp '^\{"mode":"bench","network":"unix",.*"conns":3,"size":100,"requests":500,"seconds":[0-9.]+,"requests_per_sec":[0-9]+,"p50_us":[0-9.]+,"p99_us":[0-9.]+,"max_us":[0-9.]+\}$'
}

@test "--bench: a server that answers something else fails the run" {
    start_socat other TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 \
        SYSTEM:'while read -r l; do echo "${l}X" | cut -c2-; done'
    run "$TOOL" --connect "127.0.0.1:$PORT" --bench --conns 2 --requests 10
    assert_failure 1
    assert_output --regexp '^echoclient: bench: connection [01]: the echo differs: sent ".*", got ".*"$'
}

@test "--bench: a server that never answers hits the deadline" {
    start_socat mute TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 SYSTEM:'cat >/dev/null'
    run "$TOOL" --connect "127.0.0.1:$PORT" --bench --conns 2 --requests 10 --deadline 300ms
    assert_failure 1
    assert_output "echoclient: bench: no echo for 300ms (--deadline) with 2 requests in flight"
}

@test "--bulk 16M through socat PIPE: verified, GiB/s reported" {
    start_socat echo -b 4096 TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" --connect "127.0.0.1:$PORT" --bulk 16M
    assert_success
    assert_line --regexp '^network +address +line +bytes +seconds +GiB/s$'
    assert_line --regexp "^tcp +127\.0\.0\.1:$PORT +4096 +16777216 +[0-9.]+ +[0-9.]+$"
}

@test "--bulk --duration stops early and still verifies what was sent" {
    start_socat echo -b 4096 TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 PIPE
    run "$TOOL" --connect "127.0.0.1:$PORT" --bulk 100G --duration 200ms --json
    assert_success
    assert_output --regexp '^\{"mode":"bulk","network":"tcp",.*"line":4096,"bytes":[0-9]+,"seconds":[0-9.]+,"gib_per_sec":[0-9.]+\}$'
}

@test "--bulk: a server that corrupts a byte is caught" {
    start_socat tr TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 SYSTEM:'tr A B'
    run "$TOOL" --connect "127.0.0.1:$PORT" --bulk 1M --size 64
    assert_failure 1
    assert_output --regexp '^echoclient: bulk: the echo differs at byte [0-9]+: sent "A.*", got "B.*"$'
}

@test "--bulk: a server that stops reading: the deadline ends it, the writer is unblocked" {
    # A stopped listener: the kernel completes the handshake and buffers what we send, then
    # nothing more is read and nothing comes back.
    start_socat mute TCP-LISTEN:0,bind=127.0.0.1,backlog=128 PIPE
    kill -STOP "$SOCAT_PID"
    STOPPED_PID=$SOCAT_PID
    run "$TOOL" --connect "127.0.0.1:$PORT" --bulk 1G --deadline 300ms
    assert_failure 1
    assert_output "echoclient: bulk: no echo for 300ms (--deadline) after 0 bytes"
}

@test "--bulk: a server that closes early" {
    start_socat short TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=128 SYSTEM:'head -c 1000'
    run "$TOOL" --connect "127.0.0.1:$PORT" --bulk 16M
    assert_failure 1
    # socat closes with our bytes unread, so its kernel sends a reset, which also discards what
    # it had not sent yet: we may see up to 1000 bytes, then end of stream or ECONNRESET (end of
    # stream when our writer thread's send took the one-shot error first).
    assert_output --regexp '^echoclient: bulk: (connection closed by the server after [0-9]+ of [0-9]+ bytes echoed|after [0-9]+ bytes echoed: recv: Connection reset by peer \(ECONNRESET\))$'

}

@test "--bench and --bulk usage errors" {
    run "$TOOL" --bench --network udp
    assert_usage_error "--bench needs a stream network (tcp, tcp4, tcp6, unix), not udp"
    run "$TOOL" --bulk 1M --network unixgram
    assert_usage_error "--bulk needs a stream network"
    run "$TOOL" --bench hello
    assert_usage_error "--bench sends its own lines: no LINE arguments"
    run "$TOOL" --bench --bulk 1M
    assert_usage_error "--bench excludes --bulk"
    run "$TOOL" --bench --size 1
    assert_usage_error "--size 1: must be 2 to 64K"
    run "$TOOL" --bench --conns 0
    assert_usage_error "--conns"
    run "$TOOL" --bulk 0
    assert_usage_error "--bulk: give a size above 0"
}

@test "--help says what it demonstrates; --version" {
    run "$TOOL" --help
    assert_success
    assert_output --partial "DialTimeout"
    assert_output --partial "SetDeadline"
    assert_output --partial "--bench"
    run "$TOOL" --version
    assert_success
    assert_output --regexp '^echoclient \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

# ---- against echoserver (skipped until it is built beside us) ----

@test "echoserver (thread model): lines, bench and bulk" {
    echoserver_up srv --listen 127.0.0.1:0 --model thread
    run "$TOOL" --connect "$ADDR" hello "two words"
    assert_success
    assert_output $'hello\ntwo words'
    run "$TOOL" --connect "$ADDR" --bench --conns 4 --requests 2000
    assert_success
    assert_line --regexp "^tcp +$ADDR +4 +32 +2000 "
    run "$TOOL" --connect "$ADDR" --bulk 16M
    assert_success
    assert_line --regexp "^tcp +$ADDR +4096 +16777216 "
}

@test "echoserver (epoll model): bytes intact, bench and bulk" {
    echoserver_up srv --listen 127.0.0.1:0 --model epoll
    printf 'a\0b\xff\xfe\n\x80\x01 \r\n' >"$BATS_TEST_TMPDIR/in"
    run bash -c '"$TOOL" --connect "$1" <"$2" >"$2.out"' _ "$ADDR" "$BATS_TEST_TMPDIR/in"
    assert_success
    cmp "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/in.out"
    run "$TOOL" --connect "$ADDR" --bench --conns 4 --requests 2000
    assert_success
    run "$TOOL" --connect "$ADDR" --bulk 16M
    assert_success
}

@test "echoserver over unix, unixpacket, udp and unixgram" {
    echoserver_up unix --network unix --listen "$BATS_TEST_TMPDIR/s.sock"
    run "$TOOL" --network unix --connect "$ADDR" hello
    assert_success
    assert_output "hello"
    echoserver_up packet --network unixpacket --listen "$BATS_TEST_TMPDIR/p.sock"
    run "$TOOL" --network unixpacket --connect "$ADDR" hello
    assert_success
    assert_output "hello"
    echoserver_up udp --network udp --listen 127.0.0.1:0
    run "$TOOL" --network udp --connect "$ADDR" hello
    assert_success
    assert_output "hello"
    echoserver_up gram --network unixgram --listen "$BATS_TEST_TMPDIR/g.sock"
    run "$TOOL" --network unixgram --connect "$ADDR" hello
    assert_success
    assert_output "hello"
}
