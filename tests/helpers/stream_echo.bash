# The tests of the line-echo service over stream sockets, shared by tests/sockets/echoserver.bats
# and echoloop.bats: the two servers differ in how they serve (a thread per connection, one
# epoll loop), not in what a client sees, so both pass the same assertions.
# After `load ../helpers/ipc` and `load ../helpers/sockets`:   load ../helpers/stream_echo
#
# Each function starts $TOOL with --listen 127.0.0.1:0 (or a socket path) and any ARGS given
# (echoloop's tests pass --loops 2 too), and checks what clients get and what the log says.
# Clients are the real tools: socat, nc, and bash's /dev/tcp. Sockets opened by a test use
# descriptors from {var} (10 and up): fd 3 is bats' own.

log() { bg_out server; } # the server's stdout: readiness line and connection log
errs() { bg_err server; }

echo_lines() {
    start_tool server --listen 127.0.0.1:0 "$@"
    printf 'hello\nworld\nno newline at the end' >"$BATS_TEST_TMPDIR/in"
    socat -t 5 - "TCP:$ADDR" <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out"
    cmp "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out"
    wait_for_line "$(log)" '^conn 1 closed:'
    run cat "$(log)"
    assert_line --regexp "^conn 1 open: remote 127\.0\.0\.1:[0-9]+, local $ADDR$"
    assert_line --regexp "^conn 1 closed: remote 127\.0\.0\.1:[0-9]+, local $ADDR; 33 bytes in, 33 bytes out, 3 lines; eof$"
}

binary_bytes() {
    start_tool server --listen 127.0.0.1:0 "$@"
    local in=$BATS_TEST_TMPDIR/in
    head -c 300000 /dev/urandom >"$in"
    printf '\0\0\n\xff\xfe\xc3\x28 not UTF-8\n\0' >>"$in"
    socat -t 10 - "TCP:$ADDR" <"$in" >"$BATS_TEST_TMPDIR/socat.out"
    cmp "$in" "$BATS_TEST_TMPDIR/socat.out"
    nc -N "$HOST" "$PORT" <"$in" >"$BATS_TEST_TMPDIR/nc.out"
    cmp "$in" "$BATS_TEST_TMPDIR/nc.out"
}

many_clients() {
    start_tool server --listen 127.0.0.1:0 "$@"
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

bash_client() {
    start_tool server --listen 127.0.0.1:0 "$@"
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

unix_stream() {
    local path=$BATS_TEST_TMPDIR/echo.sock
    start_tool server --network unix --listen "$path" "$@"
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

unixpacket() {
    local path=$BATS_TEST_TMPDIR/packet.sock
    start_tool server --network unixpacket --listen "$path" --max-line 8 "$@"
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

idle_timeout() {
    start_tool server --listen 127.0.0.1:0 --timeout 300ms "$@"
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

deadline_per_line() {
    start_tool server --listen 127.0.0.1:0 --timeout 1s "$@"
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

max_line() {
    start_tool server --listen 127.0.0.1:0 --max-line 16 "$@"
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

max_conns() {
    start_tool server --listen 127.0.0.1:0 --max-conns 1 "$@"
    # Each client is its own process: a socket the test shell opened would be inherited by the
    # next client, and closing it here would not close the connection.
    bg_start first bash -c 'exec 4<>"/dev/tcp/$0/$1"; echo first >&4; read -r r <&4; echo "$r"; exec sleep 60' "$HOST" "$PORT"
    local first=$BG_PID
    wait_for_line "$(bg_out first)" '^first$'
    bg_start second bash -c 'exec 4<>"/dev/tcp/$0/$1"; echo second >&4; read -r -t 20 r <&4; echo "$r"' "$HOST" "$PORT"
    wait_for_line "$(log)" "^$(tool_name): 1 connections open \(--max-conns 1\): not accepting until one closes$"
    run cat "$(bg_out second)"
    assert_output "" # queued by the kernel, not served yet
    # At the limit the server waits for a place to free, idle: check the CPU time it uses over
    # one second (an observation window, not a wait for another process).
    local ticks
    ticks=$(cpu_ticks "$SERVER_PID")
    sleep 1
    (($(cpu_ticks "$SERVER_PID") - ticks <= 20))
    kill -KILL "$first"
    wait_for_line "$(bg_out second)" '^second$'
    wait_for_line "$(log)" '^conn 2 open:'
}

vanishing_clients() {
    start_tool server --listen 127.0.0.1:0 "$@"
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

# The writer sends 27 MB while nobody reads the echo: the kernel buffers fill, and the server
# must stop reading rather than queue the rest in memory; then every byte comes back. echoloop's
# test also checks its -x trace (its arguments include --explain).
slow_reader() {
    start_tool server --listen 127.0.0.1:0 "$@"
    local big=$BATS_TEST_TMPDIR/big s
    yes 'a line that comes back only once the client reads again, 0123456789' | head -n 400000 >"$big"
    exec {s}<>"/dev/tcp/$HOST/$PORT"
    bg_start writer bash -c 'cat "$0" >&"$1"' "$big" "$s"
    if [[ -n ${SLOW_READER_WAIT_FOR:-} ]]; then wait_for_line "$(errs)" "$SLOW_READER_WAIT_FOR" 30; fi
    head -c "$(stat -c %s "$big")" <&"$s" >"$BATS_TEST_TMPDIR/back"
    wait_for_exit "$BG_PID" 30
    assert_equal "$BG_STATUS" 0
    exec {s}>&-
    cmp "$big" "$BATS_TEST_TMPDIR/back"
}

no_fd_leak() {
    start_tool server --listen 127.0.0.1:0 "$@"
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

# ulimit -n 64: the server can hold about 55 connections. 200 clients arrive at once. (--timeout
# 60s: on a busy machine the bursts take longer than the default 10s deadline of the first client.)
out_of_descriptors() {
    start_server server bash -c 'ulimit -n 64 && exec "$0" "$@"' "$TOOL" --listen 127.0.0.1:0 --timeout 60s "$@"
    local base ticks fds=() fd i reply served=0 refused=0 reports max_reports=1 first_served
    ((${LOOPS:-1} == 1)) || max_reports=$((10 * LOOPS))
    base=$(fd_count "$SERVER_PID")
    burst() {
        fds=()
        for i in $(seq 200); do
            exec {fd}<>"/dev/tcp/$HOST/$PORT"
            fds+=("$fd")
        done
        for i in "${!fds[@]}"; do (printf 'hello %d\n' "$i" >&"${fds[$i]}") 2>/dev/null || true; done
        served=0 refused=0
        # At most 10 s for a reply, and 30 s for the whole burst: with several loops a client
        # may wait in the backlog (no loop has a spare descriptor left to refuse it with) until
        # descriptors come back; it counts as refused, and must not cost 10 s each.
        local end=$((SECONDS + 30)) patience
        for i in "${!fds[@]}"; do
            reply='' patience=10
            ((SECONDS < end)) || patience=0.05
            read -r -t "$patience" reply <&"${fds[$i]}" 2>/dev/null || true
            if [[ $reply == "hello $i" ]]; then
                served=$((served + 1))
            else
                refused=$((refused + 1))
            fi
        done
    }
    burst
    echo "# $(tool_name) $*: served $served, refused $refused" >&3
    ((served >= 30 && refused >= 100))
    first_served=$served
    # Once per burst, not once per client. (With LOOPS=N loops a few times: the loops share one
    # descriptor table, and one loop's freed spare may go to another loop's accept4.)
    reports=$(grep -c 'EMFILE' "$(errs)")
    ((reports >= 1 && reports <= max_reports))
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
    run grep -E "^$(tool_name): accepting again; [0-9]+ connections were refused" "$(log)"
    assert_success
    # A second burst is a second report.
    burst
    ((served >= 30))
    reports=$(grep -c 'EMFILE' "$(errs)")
    ((reports >= 2 && reports <= 2 * max_reports))
    for fd in "${fds[@]}"; do exec {fd}>&-; done
    wait_for_count "$(log)" '^conn [0-9]+ closed: ' $((first_served + 1 + served))
    # Clients that left while still in the backlog are accepted, read to EOF and closed too; and
    # a loop whose spare another loop's accept4 took has taken one back, even if it is idle.
    for ((i = 0; i < 100; i++)); do
        (($(fd_count "$SERVER_PID") == base)) && break
        sleep 0.1
    done
    assert_equal "$(fd_count "$SERVER_PID")" "$base"
}

drain() {
    start_tool server --listen 127.0.0.1:0 --drain 10s --explain "$@"
    local idle busy reply
    exec {idle}<>"/dev/tcp/$HOST/$PORT"
    wait_for_line "$(log)" '^conn 1 open:' # so the busy one is conn 2, whichever loop takes it
    exec {busy}<>"/dev/tcp/$HOST/$PORT"
    printf 'half a ' >&"$busy"
    wait_for_line "$(errs)" '^\[[0-9]+\] conn 2: recv\(\) = 7$' # the server holds half a line
    kill -TERM "$SERVER_PID"
    wait_for_line "$(log)" "^$(tool_name): SIGTERM: not accepting any more; 2 open connections finish their line"
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
    assert_line "$(tool_name): stopped after 2 connections"
}

# A line that has arrived but was not read yet when the stop comes is still echoed: the server
# is stopped (SIGSTOP) while the client sends it, then gets SIGTERM and goes on (SIGCONT).
line_at_stop() {
    start_tool server --listen 127.0.0.1:0 --drain 10s "$@"
    local s reply
    exec {s}<>"/dev/tcp/$HOST/$PORT"
    wait_for_line "$(log)" '^conn 1 open:'
    kill -STOP "$SERVER_PID"
    printf 'sent before the stop\n' >&"$s"
    kill -TERM "$SERVER_PID"
    kill -CONT "$SERVER_PID"
    read -r -t 10 reply <&"$s"
    assert_equal "$reply" "sent before the stop"
    wait_for_exit "$SERVER_PID" 10
    assert_equal "$BG_STATUS" 0
    run cat "$(log)"
    assert_line --regexp '^conn 1 closed: .*; 21 bytes in, 21 bytes out, 1 lines; shutdown$'
}

drain_deadline() {
    start_tool server --listen 127.0.0.1:0 --drain 300ms --explain "$@"
    local busy
    exec {busy}<>"/dev/tcp/$HOST/$PORT"
    printf 'a line that never ends' >&"$busy"
    wait_for_line "$(errs)" '^\[[0-9]+\] conn 1: recv\(\) = 22$'
    kill -TERM "$SERVER_PID"
    wait_for_exit "$SERVER_PID" 10
    assert_equal "$BG_STATUS" 0
    run cat "$(log)"
    assert_line "$(tool_name): drain deadline: closing 1 connections"
    assert_line --regexp '^conn 1 closed: .*; drain deadline$'
}

second_signal() {
    start_tool server --listen 127.0.0.1:0 --drain 60s --explain "$@"
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
    assert_line "$(tool_name): SIGINT again: closing now"
}

# stdout full or closed: the readiness line cannot be written; one line, exit 1, and the unix
# socket file made just before is removed all the same.
stdout_failures() {
    local path=$BATS_TEST_TMPDIR/out.sock
    run bash -c '"$0" --network unix --listen "$1" >/dev/full' "$TOOL" "$path"
    assert_failure 1
    assert_output "$(tool_name): write(stdout): No space left on device (ENOSPC)"
    [[ ! -e $path ]]
    run bash -c '"$0" --listen 127.0.0.1:0 >&-' "$TOOL"
    assert_failure 1
    assert_output "$(tool_name): write(stdout): Bad file descriptor (EBADF)"
    run bash -c '"$0" --help >/dev/full' "$TOOL"
    assert_failure 1
    assert_output "$(tool_name): write(stdout): No space left on device (ENOSPC)"
    run bash -c '"$0" --version >&-' "$TOOL"
    assert_failure 1
    assert_output "$(tool_name): write(stdout): Bad file descriptor (EBADF)"
}
