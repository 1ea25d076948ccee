#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# fdpass: descriptors passed over unix sockets (SCM_RIGHTS) with credentials (SCM_CREDENTIALS),
# between fdpass processes, Python's socket.send_fds/recvmsg, socat and other users; and the
# listener handed to a successor, with socat as the TCP client.
load ../helpers/ipc

bats_require_minimum_version 1.5.0

setup() {
    cd "$BATS_TEST_TMPDIR" || return 1
    export IPC_TEST_MARK=$BATS_TEST_TMPDIR # test_processes_with: what this test started
    SOCK="$BATS_TEST_TMPDIR/fd.sock"
    printf 'line one\nline two\n' >data.txt
}

# start_sender NAME ARGS...: `fdpass send ARGS...` in the background, ready once it waits.
start_sender() {
    local name=$1
    shift
    bg_start "$name" "$TOOL" send "$@"
    SENDER=$BG_PID
    wait_for_line "$(bg_out "$name")" '^waiting on ' 30
}

# start_server NAME CMD ARGS...: `fdpass CMD ARGS...` (serve-listener or take-listener) in the
# background, ready once it says "serving on ADDR as pid P"; sets PORT and SERVER.
start_server() {
    local name=$1
    shift
    bg_start "$name" "$TOOL" "$@"
    SERVER=$BG_PID
    wait_for_line "$(bg_out "$name")" '^serving on ' 30
    PORT=$(sed -nE 's/^serving on 127\.0\.0\.1:([0-9]+) .*/\1/p' "$(bg_out "$name")" | head -n 1)
}

# What a TCP client on $PORT gets: "served by pid P".
client() { socat -T 30 -u "TCP:127.0.0.1:$PORT" -; }

# socat_one_line PATH: socat connects to PATH; we read the first line the peer sends (30 s at
# most), then end socat: a peer that takes the offer and vanishes without answering.
socat_one_line() {
    coproc SOCAT { exec socat -u "UNIX-CONNECT:$1" - 3>&-; }
    local line=""
    read -r -t 30 line <&"${SOCAT[0]}" || true
    kill "$SOCAT_PID" 2>/dev/null || true
    wait "$SOCAT_PID" 2>/dev/null || true
    echo "$line"
}

# python_peer SCRIPT ARGS...: a peer written with Python's own socket module.
python_peer() { python3 -c "$@"; }

@test "send/receive: the receiver reads the sender's file from its offset, and the offset is shared" {
    start_sender s --socket "$SOCK" --file data.txt --offset 9
    run head -n 1 "$(bg_out s)"
    assert_output --regexp "^opened data.txt as fd [0-9]+: regular file, device $(stat -c '%Hd:%Ld' data.txt), inode $(stat -c %i data.txt), 18 bytes; offset 9$"
    [[ -S $SOCK ]]
    run "$TOOL" receive --socket "$SOCK"
    assert_success
    assert_line --index 0 --regexp "^received fd ([0-9]+) from pid $SENDER \(uid $(id -u), gid $(id -g)\) \(SCM_CREDENTIALS\), with \"file data.txt\"$"
    assert_line --index 1 --regexp "^fd [0-9]+ is $BATS_TEST_TMPDIR/data.txt: regular file, device $(stat -c '%Hd:%Ld' data.txt), inode $(stat -c %i data.txt), 18 bytes$"
    assert_line --index 2 "line two"
    assert_line --index 3 "read 9 bytes from offset 9 (where the sender left it); the offset is now 18"
    wait_for_exit "$SENDER" 30
    assert_equal "$BG_STATUS" 0
    run cat "$(bg_out s)"
    assert_line --regexp "^pid [0-9]+ \(uid $(id -u), gid $(id -g)\) connected \(SO_PEERCRED\): passing it fd [0-9]+ \(SCM_RIGHTS\)$"
    assert_line --regexp '^pid [0-9]+ answered "read 9 bytes"; our offset was 9 and is now 18: its read moved ours'
    [[ ! -e $SOCK ]]
}

@test "a long path (over 1,000 bytes) is passed whole" {
    local dir long
    dir=$(printf 'd%.0s' {1..200})
    long="$dir/$dir/$dir/$dir/$dir/data.txt"
    mkdir -p "${long%/*}"
    cp data.txt "$long"
    start_sender s --socket "$SOCK" --file "$long"
    run "$TOOL" receive --socket "$SOCK"
    assert_success
    assert_line --index 0 --regexp "^received fd [0-9]+ from pid $SENDER .*, with \"file $long\"$"
    assert_line --index 2 "line one"
    assert_line --index 3 "line two"
    wait_for_exit "$SENDER" 30
    assert_equal "$BG_STATUS" 0
}

@test "Python's socket.recvmsg gets the same file and the sender's real pid, uid and gid" {
    start_sender s --socket "$SOCK" --file data.txt
    run python_peer '
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.connect(sys.argv[1])
data, anc, flags, _ = s.recvmsg(256, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(4))
for level, kind, body in anc:
    if kind == socket.SCM_CREDENTIALS:
        print("pid %d uid %d gid %d" % struct.unpack("iII", body))
    if kind == socket.SCM_RIGHTS:
        fd = struct.unpack("i", body[:4])[0]
print(data.decode().strip(), "inode", os.fstat(fd).st_ino, repr(os.read(fd, 100).decode()))
s.sendall(b"read by python\n")
' "$SOCK"
    assert_success
    assert_line "pid $SENDER uid $(id -u) gid $(id -g)"
    assert_line "file data.txt inode $(stat -c %i data.txt) 'line one\\nline two\\n'"
    wait_for_exit "$SENDER" 30
    assert_equal "$BG_STATUS" 0
    run grep answered "$(bg_out s)"
    assert_output --regexp 'answered "read by python"; our offset was 0 and is now 18'
}

@test "a descriptor is a capability: another user reads a file it may not open" {
    [[ $(id -u) == 0 ]] || skip "needs root to run the receiver as nobody"
    printf 'secret\n' >secret.txt
    chmod 600 secret.txt
    local abstract="@ipckit-fdpass-$$-$BATS_TEST_NUMBER"  # no file: no permissions to pass
    run setpriv --reuid=nobody --regid=nogroup --clear-groups cat "$BATS_TEST_TMPDIR/secret.txt"
    assert_failure
    start_sender s --socket "$abstract" --file secret.txt
    run setpriv --reuid=nobody --regid=nogroup --clear-groups "$TOOL" receive --socket "$abstract"
    assert_success
    assert_line --index 0 --regexp "^received fd [0-9]+ from pid $SENDER \(uid 0, gid 0\) \(SCM_CREDENTIALS\), with \"file secret.txt\"$"
    assert_line "secret"
    wait_for_exit "$SENDER" 30
    run grep connected "$(bg_out s)"
    assert_output --regexp "^pid [0-9]+ \(uid $(id -u nobody), gid $(id -g nobody)\) connected \(SO_PEERCRED\)"
}

@test "a receiver that vanishes without answering (socat): the sender says so, exit 1, file removed" {
    start_sender s --socket "$SOCK" --file data.txt
    # socat reads the line (the descriptor, which it does not ask for, is closed by the kernel)
    run socat_one_line "$SOCK"
    assert_output "file data.txt"
    wait_for_exit "$SENDER" 30
    assert_equal "$BG_STATUS" 1
    run cat "$(bg_err s)"
    assert_output --regexp '^fdpass: pid [0-9]+ closed the connection without answering$'
    [[ ! -e $SOCK ]]
}

@test "a sender that vanishes before passing anything: the receiver says so, exit 1" {
    bg_start fake python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
s.accept()[0].close()
' "$SOCK"
    wait_for_line "$(bg_out fake)" '^listening$' 30
    run --separate-stderr "$TOOL" receive --socket "$SOCK"
    assert_failure 1
    assert_equal "$stderr" "fdpass: $SOCK: the sender closed the connection before passing a file"
}

# python_sender N: a Python peer on $SOCK that sends N descriptors with "file x".
python_sender() {
    bg_start py python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
socket.send_fds(c, [b"file x\n"], [os.open("/dev/null", os.O_RDONLY) for _ in range(int(sys.argv[2]))])
c.recv(100)
' "$SOCK" "$1"
    wait_for_line "$(bg_out py)" '^listening$' 30
}

@test "two descriptors where one was expected: refused, exit 1 (both closed with the process)" {
    python_sender 2
    run --separate-stderr "$TOOL" receive --socket "$SOCK"
    assert_failure 1
    assert_equal "$stderr" "fdpass: $SOCK: expected one file and \"file PATH\", got 2 descriptor(s) and \"file x\""
}

@test "more descriptors than the control buffer holds: MSG_CTRUNC is reported, exit 1" {
    python_sender 9
    run --separate-stderr "$TOOL" receive --socket "$SOCK"
    assert_failure 1
    assert_equal "$stderr" "fdpass: recvmsg: MSG_CTRUNC: more descriptors than we make room for; the kernel closed those that did not fit
fdpass: $SOCK: the sender closed the connection before passing a file"
}

@test "SIGTERM or SIGINT while the sender waits: exit 128+n, and its socket file is removed" {
    start_sender s --socket "$SOCK" --file data.txt
    kill -TERM "$SENDER"
    wait_for_exit "$SENDER" 30
    assert_equal "$BG_STATUS" 143
    assert_equal "$(tail -n 1 "$(bg_out s)")" "SIGTERM from pid $$: stopping"
    [[ ! -e $SOCK ]]
    start_sender s2 --socket "$SOCK" --file data.txt # SIGINT is ignored in a background job, but blocked, so it arrives
    kill -INT "$SENDER"
    wait_for_exit "$SENDER" 30
    assert_equal "$BG_STATUS" 130
    [[ ! -e $SOCK ]]
}

@test "accept4 failing with EMFILE (injected): one line and exit 1, not a spin; the socket file is removed" {
    command -v strace >/dev/null || skip "strace is not installed"
    # LeakSanitizer cannot run under ptrace: leaks are checked by every other test.
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" bg_start s strace -f -qq -o /dev/null \
        -e trace=accept4 -e inject=accept4:error=EMFILE "$TOOL" send --socket "$SOCK" --file data.txt
    SENDER=$BG_PID
    wait_for_line "$(bg_out s)" '^waiting on ' 30
    run timeout 30 "$TOOL" receive --socket "$SOCK"
    assert_failure 1
    wait_for_exit "$SENDER" 30
    assert_equal "$BG_STATUS" 1
    assert_equal "$(cat "$(bg_err s)")" "fdpass: accept4: Too many open files (EMFILE)"
    [[ ! -e $SOCK ]]
}

# in_fifo_open SIGNAL STATUS: `fdpass send --file FIFO` waits in open(2) until the FIFO has a
# writer (there is none); SIGNAL must end it there with STATUS, leaving no socket file. (env
# --default-signal: a background job of a script starts with SIGINT ignored.)
in_fifo_open() {
    local openat
    case $(uname -m) in
        x86_64) openat=257 ;;
        aarch64) openat=56 ;;
        *) skip "openat's number on $(uname -m) is not known here" ;;
    esac
    mkfifo fifo
    bg_start s env --default-signal="$1" "$TOOL" send --socket "$SOCK" --file fifo
    SENDER=$BG_PID
    local deadline=$((SECONDS + 30))
    # /proc/PID/syscall: the call a sleeping process is in, by number.
    until [[ $(cut -d ' ' -f 1 "/proc/$SENDER/syscall" 2>/dev/null) == "$openat" &&
        $(ps -o stat= -p "$SENDER") == S* ]]; do
        ((SECONDS < deadline)) || fail "fdpass send never waited in openat"
        sleep 0.02
    done
    kill -s "$1" "$SENDER"
    wait_for_exit "$SENDER" 30
    assert_equal "$BG_STATUS" "$2"
    [[ ! -e $SOCK ]]
}

@test "send --file FIFO waits in open(2) for a writer; SIGTERM ends it there" {
    in_fifo_open TERM 143
}

@test "send --file FIFO: SIGINT (Ctrl-C) ends that wait too" {
    in_fifo_open INT 130
}

@test "the socket path: a stale socket is replaced, a live one or a plain file is refused" {
    python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SOCK"
    start_sender s --socket "$SOCK" --file data.txt
    run cat "$(bg_err s)"
    assert_output "fdpass: replacing the stale socket $SOCK: connect($SOCK): Connection refused (ECONNREFUSED)"
    run --separate-stderr "$TOOL" send --socket "$SOCK" --file data.txt
    assert_failure 1
    assert_equal "$stderr" "fdpass: bind($SOCK): a server is listening there: Address already in use (EADDRINUSE)"
    echo keep >plain
    run --separate-stderr "$TOOL" send --socket plain --file data.txt
    assert_failure 1
    assert_equal "$stderr" "fdpass: plain exists and is not a socket: not replacing it"
    assert_equal "$(cat plain)" keep
}

@test "serve-listener, then take-listener: the same port, served by the new process; the old one exits 0" {
    start_server old serve-listener --socket "$SOCK"
    local old=$SERVER port=$PORT
    assert_equal "$(client)" "served by pid $old"
    start_server new take-listener --socket "$SOCK"
    local new=$SERVER
    assert_equal "$PORT" "$port"
    assert_equal "$(client)" "served by pid $new"
    wait_for_exit "$old" 30
    assert_equal "$BG_STATUS" 0
    run cat "$(bg_out old)"
    assert_line --regexp "^pid $new \(uid $(id -u)\) asks for the listener: passing fd [0-9]+ \(SCM_RIGHTS\)$"
    assert_line "handed over to pid $new: not accepting any more"
    run cat "$(bg_out new)"
    assert_line --index 0 --regexp "^received fd [0-9]+ from pid $old \(uid $(id -u), gid $(id -g)\) \(SCM_CREDENTIALS\): a listening socket on 127\.0\.0\.1:$port, O_NONBLOCK as the old server set it \(file status flags are shared, like the offset\)$"
    assert_line "pid $new served connection 1 from 127.0.0.1:${lines[2]##*:}"
    # The control socket is now the new server's: a third process takes over from it.
    start_server third take-listener --socket "$SOCK" --count 1
    assert_equal "$(client)" "served by pid $SERVER"
    wait_for_exit "$SERVER" 30
    assert_equal "$BG_STATUS" 0
    wait_for_exit "$new" 30
    [[ ! -e $SOCK ]]
}

@test "no connection is lost while the listener changes hands" {
    start_server old serve-listener --socket "$SOCK"
    local i
    for ((i = 0; i < 20; i++)); do client >>got.txt & done
    start_server new take-listener --socket "$SOCK"
    for ((i = 0; i < 20; i++)); do client >>got.txt & done
    wait_for_count() { (($(grep -c '^served by pid ' got.txt) >= 40)); }
    local deadline=$((SECONDS + 60))
    until wait_for_count || ((SECONDS > deadline)); do sleep 0.05; done
    assert_equal "$(grep -c '^served by pid ' got.txt)" 40
}

@test "a successor that vanishes after the offer (socat): the old server goes on serving" {
    start_server old serve-listener --socket "$SOCK"
    run socat_one_line "$SOCK"
    assert_output --regexp '^listener 127\.0\.0\.1:[0-9]+$'
    wait_for_line "$(bg_err old)" 'went away: still serving' 30
    assert_equal "$(client)" "served by pid $SERVER"
    [[ -S $SOCK ]]
}

@test "a successor that answers wrong, with descriptors: refused, and none of them is kept" {
    start_server old serve-listener --socket "$SOCK"
    local before
    before=$(find "/proc/$SERVER/fd" -mindepth 1 | wc -l)
    python_peer '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
msg, fds, _, _ = socket.recv_fds(s, 256, 4)
socket.send_fds(s, [b"nope\n"], [os.open("/dev/null", os.O_RDONLY) for _ in range(3)])
s.recv(10)
' "$SOCK"
    wait_for_line "$(bg_err old)" 'answered "nope": still serving' 30
    assert_equal "$(find "/proc/$SERVER/fd" -mindepth 1 | wc -l)" "$before"
    assert_equal "$(client)" "served by pid $SERVER"
}

@test "a successor of another user is refused (SO_PEERCRED)" {
    [[ $(id -u) == 0 ]] || skip "needs root to run the successor as nobody"
    local abstract="@ipckit-fdpass-$$-$BATS_TEST_NUMBER"
    start_server old serve-listener --socket "$abstract"
    run --separate-stderr setpriv --reuid=nobody --regid=nogroup --clear-groups "$TOOL" take-listener --socket "$abstract"
    assert_failure 1
    assert_equal "$stderr" "fdpass: $abstract: no listener came (the server closed the connection)"
    run cat "$(bg_err old)"
    assert_output --regexp "^fdpass: refusing pid [0-9]+: uid $(id -u nobody) is not ours \(0\)$"
    assert_equal "$(client)" "served by pid $SERVER"
}

@test "take-listener: SIGTERM while it waits for the listener: exit 143, by its normal path" {
    bg_start py python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
c.recv(100)  # never answers; end of file once take-listener has gone
' "$SOCK"
    wait_for_line "$(bg_out py)" '^listening$' 30
    bg_start new "$TOOL" take-listener --socket "$SOCK"
    local new=$BG_PID deadline=$((SECONDS + 30)) blocked
    # SIGTERM blocked (bit 15 of SigBlk): it has connected and made its signalfd.
    until blocked=$(sed -n 's/^SigBlk:\t//p' "/proc/$new/status" 2>/dev/null) &&
        ((0x${blocked:-0} & 1 << 14)); do
        ((SECONDS < deadline)) || fail "take-listener never blocked SIGTERM"
        sleep 0.02
    done
    kill -TERM "$new"
    wait_for_exit "$new" 30
    assert_equal "$BG_STATUS" 143
    assert_equal "$(cat "$(bg_out new)")" "SIGTERM from pid $$: stopping"
}

@test "each side refuses what is not its kind of descriptor" {
    start_sender s --socket "$SOCK" --file data.txt
    run --separate-stderr "$TOOL" take-listener --socket "$SOCK"
    assert_failure 1
    assert_equal "$stderr" "fdpass: $SOCK: expected one listener and \"listener ADDR\", got 1 descriptor(s) and \"file data.txt\""
    bg_stop_all
    start_server old serve-listener --socket "$SOCK"
    run --separate-stderr "$TOOL" receive --socket "$SOCK"
    assert_failure 1
    assert_equal "$stderr" "fdpass: $SOCK: expected one file and \"file PATH\", got 1 descriptor(s) and \"listener 127.0.0.1:$PORT\" (take-listener takes a listener)"
    bg_stop_all
    bg_start py python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
t = socket.socket()  # a TCP socket, not listening
socket.send_fds(c, [b"listener fake\n"], [t.fileno()])
c.recv(100)
' "$SOCK"
    wait_for_line "$(bg_out py)" '^listening$' 30
    run --separate-stderr "$TOOL" take-listener --socket "$SOCK"
    assert_failure 1
    assert_equal "$stderr" "fdpass: the descriptor received is not a listening stream socket (SO_ACCEPTCONN 0, SO_TYPE 1)"
}

@test "nobody on the socket: connect fails, exit 1; bad command lines: exit 2" {
    run --separate-stderr "$TOOL" receive --socket "$SOCK"
    assert_failure 1
    assert_equal "$stderr" "fdpass: connect($SOCK): No such file or directory (ENOENT)"
    run "$TOOL" receive
    assert_usage_error "--socket is required"
    run "$TOOL" send --socket "$SOCK"
    assert_usage_error "--file is required"
    run "$TOOL" receive --socket "/$(printf 'd%.0s' {1..120})"
    assert_usage_error "--socket"
    run "$TOOL" serve-listener --socket "$SOCK" --listen nonsense
    assert_usage_error "--listen"
    run "$TOOL"
    assert_usage_error "A subcommand is required"
}

@test "-x narrates SO_PASSCRED, sendmsg with SCM_RIGHTS, recvmsg and SO_PEERCRED" {
    bg_start s "$TOOL" send -x --socket "$SOCK" --file data.txt
    wait_for_line "$(bg_out s)" '^waiting on ' 30
    run --separate-stderr "$TOOL" receive -x --socket "$SOCK"
    assert_success
    [[ $stderr == *"setsockopt(SO_PASSCRED, 1); connect($SOCK) = 0"* ]]
    [[ $stderr == *"recvmsg("*") = 14 bytes, 1 descriptor(s), SCM_CREDENTIALS pid "* ]]
    wait_for_exit "$BG_PID" 30
    run cat "$(bg_err s)"
    assert_output --regexp 'sendmsg\([0-9]+, "file data.txt\\n", SCM_RIGHTS \[[0-9]+\]\) = 14'
    assert_output --partial "SO_PEERCRED: pid "
}

@test "demo: the file and the listener, each passed to a process that asked for it" {
    run "$TOOL" demo
    assert_success
    local pid
    pid=$(sed -nE 's/^serving on .* as pid ([0-9]+); .*/\1/p' <<<"$output" | head -n 1)
    assert_line --regexp '^1\. a file, passed to a receiver forked before the file exists; they meet on @fdpass-demo-[0-9]+-file$'
    assert_line --regexp "^received fd [0-9]+ from pid $pid \(uid $(id -u), gid $(id -g)\) \(SCM_CREDENTIALS\), with \"file memfd:fdpass-demo\"$"
    assert_line "the receiver reads on from the sender's offset"
    assert_line "read 47 bytes from offset 8 (where the sender left it); the offset is now 55"
    assert_line --regexp 'answered "read 47 bytes"; our offset was 8 and is now 55'
    assert_line "the first client, queued before the handover, got \"served by pid $pid\""
    assert_line --regexp '^the second client, after it, got "served by pid [0-9]+": the same port, another process$'
    refute_line --partial "served by pid $pid\": the same port"
}

# demo_under_strace INJECT: `fdpass demo` under `strace -f -e inject=INJECT` (a call made to
# take SIGKILL); strace.log shows the calls and the end of every process. Bounded: on a hang,
# timeout kills its whole process group, the demo's processes with it.
demo_under_strace() {
    command -v strace >/dev/null || skip "strace is not installed"
    # LeakSanitizer cannot run under ptrace: leaks are checked by every other test.
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" run --separate-stderr \
        timeout -s KILL 60 strace -f -q -o strace.log -e trace=connect,signalfd4,wait4 \
        -e inject="$1" "$TOOL" demo
}

# The pids that strace saw killed by SIGKILL, one a line.
killed_by_sigkill() { sed -nE 's/^([0-9]+) +\+\+\+ killed by SIGKILL \+\+\+$/\1/p' strace.log; }

# reaped PARENT CHILD: PARENT's wait4 returned CHILD, so it left no zombie.
reaped() { grep -qE "^$1 +(wait4\($2, |<\.\.\. wait4 resumed>).* = $2\$" strace.log; }

# nothing_left PARENT: no process this test started still runs, no socket of the demo is open.
nothing_left() {
    run test_processes_with "$TOOL"
    assert_output ""
    run grep -c "@fdpass-demo-$1-" /proc/net/unix
    assert_output 0
}

@test "demo: a receiver killed before it connects (strace): the parent says so, exit 1, nothing left" {
    # connect(2) is the receiver's alone in part 1 (the parent's first is in part 2): it dies
    # entering it, while the parent waits for its connection, which would never come.
    demo_under_strace connect:signal=KILL
    assert_failure 1
    local parent receiver
    parent=$(sed -nE 's/.* they meet on @fdpass-demo-([0-9]+)-file$/\1/p' <<<"$output")
    receiver=$(sed -nE 's/.*; the receiver is pid ([0-9]+)$/\1/p' <<<"$output")
    assert_equal "$(killed_by_sigkill)" "$receiver"
    assert_equal "$stderr" "fdpass: the receiver (pid $receiver) killed by SIGKILL (137)"
    reaped "$parent" "$receiver"
    nothing_left "$parent"
}

@test "demo: a successor killed at the handover (strace): the old server says so, exit 1, nothing left" {
    # signalfd4 is the successor's alone (stop_signals, once it has connected to the control
    # socket): it dies there, and the old server, in its serve loop, would wait for ever.
    demo_under_strace signalfd4:signal=KILL
    assert_failure 1
    assert_line --regexp 'answered "read 47 bytes"'
    local parent successor
    parent=$(sed -nE 's/^serving on .* as pid ([0-9]+); .*/\1/p' <<<"$output")
    successor=$(killed_by_sigkill)
    [[ $successor =~ ^[0-9]+$ ]]
    # Before it, the old server may have seen the connection end ("went away: still serving",
    # or EPIPE), depending on when it looked; its last word is the successor's end.
    assert_equal "${stderr##*$'\n'}" "fdpass: the successor (pid $successor) killed by SIGKILL (137)"
    reaped "$parent" "$successor"
    nothing_left "$parent"
}

@test "demo: killed after the handover (strace), it leaves no successor waiting (PR_SET_PDEATHSIG)" {
    # The parent's 2nd connect(2) (strace counts per process) dials the second client, once the
    # successor has the listener: it dies there, and the successor, which would wait for that
    # client for ever, is killed with it.
    demo_under_strace connect:signal=KILL:when=2
    assert_failure 137
    local parent successor
    parent=$(sed -nE 's/^serving on .* as pid ([0-9]+); .*/\1/p' <<<"$output" | head -n 1)
    successor=$(sed -nE 's/^handed over to pid ([0-9]+): .*/\1/p' <<<"$output")
    [[ $successor =~ ^[0-9]+$ ]]
    # Both ends seen by strace, which a timeout would have killed first.
    assert_equal "$(killed_by_sigkill | sort)" "$(printf '%s\n' "$parent" "$successor" | sort)"
    nothing_left "$parent"
}

@test "demo: a stranger connects before the receiver (strace): the receiver is never left waiting" {
    command -v strace >/dev/null || skip "strace is not installed"
    # setsockopt(2) is the receiver's alone in part 1 (SO_PASSCRED, before its connect): SIGSTOP
    # holds it there, so that another process, which an abstract socket cannot keep out, is first.
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" bg_start demo \
        timeout -s KILL 60 strace -f -q -o strace.log -e trace=setsockopt \
        -e inject=setsockopt:signal=STOP "$TOOL" demo
    local demo=$BG_PID parent receiver deadline=$((SECONDS + 30))
    wait_for_line "$(bg_out demo)" '; the receiver is pid [0-9]+$' 30
    parent=$(sed -nE 's/.* they meet on @fdpass-demo-([0-9]+)-file$/\1/p' "$(bg_out demo)")
    receiver=$(sed -nE 's/.*; the receiver is pid ([0-9]+)$/\1/p' "$(bg_out demo)")
    until grep -qE "^$receiver +--- stopped by SIGSTOP ---" strace.log; do
        ((SECONDS < deadline)) || fail "the receiver never stopped"
        sleep 0.02
    done
    run python_peer '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect("\0" + sys.argv[1])
msg, fds, _, _ = socket.recv_fds(s, 256, 4)
print(msg.decode().strip(), len(fds))
s.sendall(b"read by a stranger\n")
s.recv(10)  # end of file: the demo is done with us
' "fdpass-demo-$parent-file"
    assert_output "file memfd:fdpass-demo 1"
    # The demo now waits for its receiver, which must not find the listener still open and
    # wait in its queue for ever: it is refused, and the demo says how it ended.
    kill -CONT "$receiver"
    wait_for_exit "$demo" 90
    assert_equal "$BG_STATUS" 1
    assert_equal "$(cat "$(bg_err demo)")" "fdpass: connect(@fdpass-demo-$parent-file): Connection refused (ECONNREFUSED)
fdpass: the receiver (pid $receiver) exited 1"
    nothing_left "$parent"
}

@test "EINTR injected (strace) into each blocking call of the demo changes nothing" {
    command -v strace >/dev/null || skip "strace is not installed"
    local want got call
    want=$("$TOOL" demo | sed -E 's/[0-9]+/N/g')
    # when=1+2: the 1st, 3rd, 5th... call fails with EINTR, and the retry after each succeeds.
    for call in sendmsg recvmsg connect accept4 poll wait4 write; do
        got=$(strace -f -o /dev/null -e trace="$call" -e inject="$call:error=EINTR:when=1+2" \
            "$TOOL" demo | sed -E 's/[0-9]+/N/g')
        assert_equal "$got" "$want"
    done
}

@test "stdout full or closed: exit 1 and one line, --help and --version included" {
    local cmd
    for cmd in demo --help --version "send --help"; do
        # shellcheck disable=SC2086 # the words of cmd are meant to split
        run --separate-stderr bash -c '"$0" "$@" >/dev/full' "$TOOL" $cmd
        assert_failure 1
        assert_equal "$stderr" "fdpass: write(stdout): No space left on device (ENOSPC)"
        # shellcheck disable=SC2086
        run --separate-stderr bash -c '"$0" "$@" >&-' "$TOOL" $cmd
        assert_failure 1
        assert_equal "$stderr" "fdpass: write(stdout): Bad file descriptor (EBADF)"
    done
}
