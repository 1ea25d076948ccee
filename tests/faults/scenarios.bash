# tests/faults/scenarios.bash: each tool's main path, as tests/faults/inject.sh runs it twice
# (once plain, once with a fault injected) and compares. Sourced by inject.sh.
#
# A scenario is a function scenario_<tool>_<name> (the table's "tool.name", '.' and '-' as
# '_'), run in its own directory $D. It runs the tool under "${TRACE[@]}" with the helpers of
# inject.sh:
#   run_main TOOL ARGS...      foreground; $D/stdout, $D/stderr, $D/status
#   start_bg NAME TOOL ARGS... background (sets BG_PID); $D/NAME.out, .err
#   start_peer NAME TOOL ARGS... the same, never traced: the other end (a server, a target)
#   wait_line FILE REGEX [N]   until N lines match (bounded)
#   stop_bg NAME [SIG]         signal it (TERM), wait (bounded); $D/NAME.status
#   wait_bg NAME               wait (bounded) for it to end by itself; $D/NAME.status
# Every file the scenario leaves in $D is compared. normalise_<tool>_<name> FILE, if defined,
# filters each file (stdin to stdout; FILE is its name) first: it may hide what legitimately
# differs from run to run (pids, ports, times, thread interleaving) and nothing else.
# shellcheck shell=bash
# shellcheck disable=SC2154  # D, DATA, BIN, BG_PID and TRACE come from inject.sh

# start_peer NAME TOOL ARGS...: start_bg without strace, for the other end; it is stopped with
# the rest at the end of the run, and neither its status nor (unless kept) its output compared.
start_peer() {
    local -a TRACE=()
    start_bg "$@" || return
    sed -i '$d' "$D/.bg"
}

# The numbers that name a process or a port, or measure a time.
digits() { sed -E 's/[0-9]+/N/g'; }

# The port in a readiness line "... listening on tcp 127.0.0.1:PORT" or "serving on HOST:PORT".
port_of() { sed -nE 's/.*(listening|serving) on [a-z0-9 ]*127\.0\.0\.1:([0-9]+).*/\2/p' "$1" | head -n 1; }

# ---- procinfo ----
scenario_procinfo_self() { run_main procinfo --ancestors; }
# The ancestors' states are a snapshot of whoever runs at that instant (strace, the harness):
# hidden; procinfo's own (R) is kept.
normalise_procinfo_self() { digits | sed -E '/ procinfo$/! s/^( +N +N  )[A-Za-z]  /\1X  /'; }

scenario_procinfo_json() { run_main procinfo --json 1; }

# states: the children must not be ptrace-stopped (a traced child shows 't', not 'T'), so this
# one runs with follow=1 in the table: only procinfo itself is traced.
scenario_procinfo_states() { run_main procinfo states; }
# Whether /proc/PID/wchan already names the wait when it is read depends on timing.
normalise_procinfo_states() { sed -E 's/ \(wchan [a-z_0-9]+\)$//' | digits; }

scenario_procinfo_orphan() { run_main procinfo orphan --subreaper; }
normalise_procinfo_orphan() { digits; }
# Without --subreaper: adopted by pid 1 (or a subreaper above us), watched with sleeps.
scenario_procinfo_adopt() { run_main procinfo orphan; }
normalise_procinfo_adopt() { digits; }

scenario_procinfo_fork() { run_main procinfo fork; }
normalise_procinfo_fork() { sed -E 's/0x[0-9a-f]+/ADDR/g' | digits; }

# ---- cmdout ----
# The command writes its output with one write(2) of less than PIPE_BUF, so the reads are the
# same in every run; with more, where the pipe's contents are cut depends on timing.
scenario_cmdout_chunk() { run_main cmdout --chunk 100 -- head -c 4000 "$DATA/seq1000"; }
scenario_cmdout_lines() { run_main cmdout --lines --buffer 16 -- head -c 3000 "$DATA/seq1000"; }
scenario_cmdout_copy() { run_main cmdout -- seq 1 20000; }
normalise_cmdout_copy() { sed -E 's/ in [0-9]+ reads?;/ in N reads;/'; }

# ---- pipeline ----
scenario_pipeline_plain() { run_main pipeline -v -- seq 1 20000 '|' wc -l; }
scenario_pipeline_relay() { run_main pipeline -v --relay -- seq 1 20000 '|' cat; }
# Without -v: the only writes are the relay's, to a non-blocking pipe (for EAGAIN).
scenario_pipeline_relayq() { run_main pipeline --relay -- seq 1 20000 '|' cat; }
scenario_pipeline_splice() { run_main pipeline -v --relay --splice -- seq 1 20000 '|' cat; }
scenario_pipeline_three() { run_main pipeline -v --pipefail -- seq 1 5000 '|' grep 7 '|' wc -l; }

# ---- fifo ----
# read: the FIFO's open blocks until our writer (cat, untraced) opens it.
scenario_fifo_read() {
    mkfifo "$D/p"
    start_bg reader fifo read "$D/p"
    cat "$DATA/seq20000" >"$D/p"
    wait_bg reader
    rm -f "$D/p"
}
# write: stdin copied into the FIFO; cat reads the other end.
scenario_fifo_write() {
    mkfifo "$D/p"
    cat "$D/p" >"$D/copy" &
    run_main fifo write "$D/p" <"$DATA/seq20000"
    wait
    rm -f "$D/p"
}
scenario_fifo_text() {
    mkfifo "$D/p"
    cat "$D/p" >"$D/copy" &
    run_main fifo write "$D/p" -- hello, fifo -n
    wait
    rm -f "$D/p"
}

# ---- fifodemo ----
# 16 records: rule 8 still tears some (or none: the tool says it varies), and the run is short.
scenario_fifodemo_demo() { run_main fifodemo --records 16; }
# Rule 8's count of torn records varies from run to run (the tool says so).
normalise_fifodemo_demo() {
    sed -E -e 's/[0-9]+ of ([0-9]+) torn \(it varies/T of \1 torn (it varies/' \
        -e 's#/fifo-demo\.[A-Za-z0-9]+#/fifo-demo.X#g' -e 's/(child|pid) [0-9]+/\1 N/g'
}

# ---- pipecmp ----
# 4K records: at most PIPE_BUF, so none is ever torn and the counts are the same in every run.
scenario_pipecmp_atomic() { run_main pipecmp atomic --writers 4 --size 4K --rounds 50; }
scenario_pipecmp_close() { run_main pipecmp close; }

# ---- siglist ----
scenario_siglist_table() { run_main siglist; }
scenario_siglist_json() { run_main siglist --json; }
scenario_siglist_l() { run_main siglist -l; }
scenario_siglist_some() { run_main siglist TERM 9 RTMIN+2 rtmax-1; }

# ---- sigrecv ----
# Real-time signals queue (20 sends, 20 deliveries, whatever the timing); then a USR1 once the
# RTMIN+1s are all shown (standard signals merge while pending), then TERM.
scenario_sigrecv_signals() {
    start_bg recv sigrecv --signals USR1,RTMIN+1,TERM
    wait_line "$D/recv.out" 'waiting for' || return
    "$BIN/sigsend" RTMIN+1 "$BG_PID" --count 20 --value 7 >/dev/null
    wait_line "$D/recv.out" '^SIGRTMIN\+1 .*via sigqueue value' 20 || return
    kill -USR1 "$BG_PID"
    wait_line "$D/recv.out" '^SIGUSR1 ' || return
    stop_bg recv TERM
}
normalise_sigrecv_signals() {
    sed -E -e 's/(pid|kill -[A-Z0-9+]+|to) [0-9]+/\1 N/g' \
        -e 's/ in (one read|[0-9.]+s first to last)( \([0-9]+\/s\))?/ in TIME/'
}
# --watchers 2: two threads, each with its own queue (condition variables: futex). Their lines
# interleave as the threads run: compared sorted.
scenario_sigrecv_watchers() {
    start_bg recv sigrecv --signals RTMIN+1,TERM --watchers 2
    wait_line "$D/recv.out" 'waiting for' || return
    "$BIN/sigsend" RTMIN+1 "$BG_PID" --count 20 --value 3 >/dev/null
    wait_line "$D/recv.out" '^watcher 2 got .*value' 20 || return
    wait_line "$D/recv.out" '^watcher 1 got .*value' 20 || return
    stop_bg recv TERM
}
normalise_sigrecv_watchers() {
    if [[ $1 == recv.out ]]; then normalise_sigrecv_signals | sort; else normalise_sigrecv_signals; fi
}
# --block: clock_nanosleep, then sigpending.
scenario_sigrecv_block() {
    start_bg recv sigrecv --block 100ms
    wait_line "$D/recv.out" 'pending after' || return
    stop_bg recv TERM
}
normalise_sigrecv_block() { normalise_sigrecv_signals "$@" | sed -E 's#SigQ, for this user/limit\): [0-9]+/[0-9]+#SigQ): Q#'; }

# ---- sigsend ----
# The target is an untraced sigrecv; sigsend queues 50 values, then sends TERM.
scenario_sigsend_queue() {
    start_peer target sigrecv --signals RTMIN+2,TERM -q
    wait_line "$D/target.out" 'waiting for' || return
    local pid=$BG_PID
    run_main sigsend RTMIN+2 "$pid" --count 50 --value 9
    "$BIN/sigsend" TERM "$pid" >/dev/null
    wait_bg target
}
# An EAGAIN from sigqueue (the receiver's queue is full) is waited out and said on stderr, with
# how often and how long: that report is the lesson, the rest must be the same.
normalise_sigsend_queue() {
    grep -v -E "signal queue is full \(EAGAIN|^sigsend: the queue was full [0-9]+ times" |
        normalise_sigrecv_signals
}
# --name: the target found by scanning /proc; a name no other process has.
scenario_sigsend_name() {
    local name="sgr$$"
    cp "$BIN/sigrecv" "$D/$name"
    setsid timeout -k 5 $((FAULTS_TIMEOUT * 6)) "$D/$name" --signals USR2,TERM \
        >"$D/target.out" 2>"$D/target.err" </dev/null &
    echo $! >>"$work/groups"
    local target=$!
    wait_line "$D/target.out" 'waiting for' || return
    run_main sigsend USR2 --name "$name"
    wait_line "$D/target.out" '^SIGUSR2 ' || return
    kill -TERM "$target"
    wait "$target"
    echo $? >"$D/target.status"
    rm -f "$D/$name"
}
normalise_sigsend_name() { sed -E -e "s/sgr[0-9]+/sgrN/g" | normalise_sigrecv_signals; }
scenario_sigsend_probe() { run_main sigsend -0 1 $$; }
normalise_sigsend_probe() { sed -E 's/\b[0-9]{2,}\b/N/g'; }

# ---- batchlog ----
scenario_batchlog_stdin() { run_main batchlog --batch 100 <"$DATA/seq20000"; }
scenario_batchlog_generate() { run_main batchlog --generate 0 --count 20000 --batch 100; }
scenario_batchlog_file() { run_main batchlog --batch 1000 --out "$D/log" --fsync <"$DATA/seq20000"; }
# SIGTERM with a partial batch held: 450 lines in one write (less than PIPE_BUF: one read), 400
# of them written as 4 batches, then TERM: the other 50 must be written too.
scenario_batchlog_sigterm() {
    mkfifo "$D/in"
    setsid timeout -k 5 $((FAULTS_TIMEOUT * 6)) "${TRACE[@]}" "$BIN/batchlog" --batch 100 \
        <"$D/in" >"$D/batch.out" 2>"$D/batch.err" &
    local spid=$!
    echo "$spid" >>"$work/groups"
    echo "batch $spid batchlog" >>"$D/.bg"
    # shellcheck disable=SC2034  # read by stop_bg
    BG_STRACE_batch=$spid BG_TOOL_batch=batchlog
    exec 7>"$D/in"
    head -n 450 "$DATA/seq1000" >&7
    wait_line "$D/batch.out" '.' 400 || return
    stop_bg batch TERM
    exec 7>&-
    rm -f "$D/in"
}
normalise_batchlog_sigterm() { sed -E 's/\(from pid [0-9]+\)/(from pid N)/'; }

# ---- graceful ----
# curl_all PORT: a few requests, their bodies kept (pid and port hidden by the normaliser).
curl_all() {
    local i
    for i in 1 2 3; do
        curl -sS --max-time 10 "http://127.0.0.1:$1/" >>"$D/curl.out" 2>>"$D/curl.err"
        curl -sS --max-time 10 "http://127.0.0.1:$1/health" >>"$D/curl.out" 2>>"$D/curl.err"
    done
}
scenario_graceful_serve() {
    start_bg srv graceful --listen 127.0.0.1:0
    wait_line "$D/srv.out" '^serving on ' || return
    curl_all "$(port_of "$D/srv.out")"
    stop_bg srv TERM
}
normalise_graceful_serve() { sed -E -e 's/127\.0\.0\.1:[0-9]+/ADDR/g' -e 's/(pid|ppid) [0-9]+/\1 N/g' -e 's/"pid": ?[0-9]+/"pid": N/g'; }
# SIGHUP: the handover (fork, exec of a fresh copy, the readiness pipe, the drain). The new copy
# is not traced (-b execve); it is stopped by its pid from its readiness line.
scenario_graceful_restart() {
    start_bg srv graceful --listen 127.0.0.1:0
    wait_line "$D/srv.out" '^serving on .*generation 1' || return
    local port
    port=$(port_of "$D/srv.out")
    curl_all "$port"
    kill -HUP "$BG_PID"
    wait_line "$D/srv.out" '^serving on .*generation 2' || return
    wait_bg srv
    curl_all "$port"
    local new
    new=$(sed -nE 's/^serving on .*pid ([0-9]+), generation 2$/\1/p' "$D/srv.out")
    [[ -n $new ]] && kill -TERM "$new"
    local i
    for ((i = 0; i < 500; i++)); do [[ -d /proc/$new ]] || break; sleep 0.02; done
}
# The old process and the new copy write to the same file at the same time: compared sorted.
normalise_graceful_restart() {
    if [[ $1 == srv.out ]]; then normalise_graceful_serve | sort; else normalise_graceful_serve; fi
}

# ---- echoserver ----
# load PORT N: N socat clients at once, each sending 5000 lines and keeping what comes back
# ($D/client.K, compared with the baseline's: the echo must be whole).
load() {
    local port=$1 n=$2 k pids=()
    for ((k = 1; k <= n; k++)); do
        timeout 60 socat -t 10 - "TCP:127.0.0.1:$port" <"$DATA/seq5000" >"$D/client.$k" 2>>"$D/client.err" &
        pids+=($!)
    done
    wait "${pids[@]}"
}
# serve_load TOOL ARGS...: the server (traced) under load from 3 clients, then SIGTERM.
serve_load() {
    start_bg srv "$@" --listen 127.0.0.1:0
    wait_line "$D/srv.out" 'listening on' || return
    load "$(port_of "$D/srv.out")" 3
    stop_bg srv TERM
}
scenario_echoserver_thread() { serve_load echoserver; }
# The connections are numbered in the order accepted and end in any order: compared sorted,
# with the ports hidden.
normalise_echoserver_thread() {
    if [[ $1 == srv.out ]]; then
        sed -E -e 's/127\.0\.0\.1:[0-9]+/ADDR/g' -e 's/conn [0-9]+/conn N/g' | sort
    else
        sed -E 's/127\.0\.0\.1:[0-9]+/ADDR/g'
    fi
}

# ---- echoloop ----
# One loop, then two sharing the port either way; the same load as echoserver's.
scenario_echoloop_one() { serve_load echoloop; }
# With --loops 2, which loop takes each connection and how often each was woken is the kernel's
# choice: the spread lines keep their shape, not their numbers.
normalise_echoloop_one() {
    normalise_echoserver_thread "$@" | sed -E 's/^(echoloop: loop [0-9]+ of [0-9]+): .*/\1: SPREAD/'
}
scenario_echoloop_reuseport() { serve_load echoloop --loops 2 --share reuseport; }
normalise_echoloop_reuseport() { normalise_echoloop_one "$@"; }
scenario_echoloop_exclusive() { serve_load echoloop --loops 2 --share exclusive; }
normalise_echoloop_exclusive() { normalise_echoloop_one "$@"; }

# ---- echodgram ----
scenario_echodgram_udp() {
    start_bg srv echodgram --listen 127.0.0.1:0
    wait_line "$D/srv.out" 'listening on' || return
    local port k
    port=$(port_of "$D/srv.out")
    for k in 1 2 3; do
        head -c $((k * 1000)) "$DATA/seq1000" | timeout 20 socat -T 5 - "UDP:127.0.0.1:$port" >"$D/client.$k" 2>>"$D/client.err"
    done
    stop_bg srv TERM
}
normalise_echodgram_udp() { normalise_echoserver_thread "$@"; }

# ---- echoclient ----
# The peer is an untraced echoserver (echodgram for udp).
peer_echoserver() {
    local tool=echoserver
    [[ $* == *udp* ]] && tool=echodgram
    start_peer peer "$tool" --listen 127.0.0.1:0 "$@"
    wait_line "$D/peer.out" 'listening on' || return 1
    PEER_PORT=$(port_of "$D/peer.out")
    rm -f "$D/peer.out" "$D/peer.err" # the peer's log is not what is compared
}
scenario_echoclient_args() {
    peer_echoserver || return
    run_main echoclient --connect "127.0.0.1:$PEER_PORT" -v hello world "a third line"
}
normalise_echoclient_args() { sed -E 's/127\.0\.0\.1:[0-9]+/ADDR/g'; }
scenario_echoclient_stdin() {
    peer_echoserver || return
    run_main echoclient --connect "127.0.0.1:$PEER_PORT" <"$DATA/seq1000"
}
# unix: connect(2) blocks there (no non-blocking connect for unix sockets), so EINTR is real.
scenario_echoclient_unix() {
    start_peer peer echoserver --network unix --listen "$D/echo.sock"
    wait_line "$D/peer.out" 'listening on' || return
    rm -f "$D/peer.out" "$D/peer.err"
    run_main echoclient --network unix --connect "$D/echo.sock" -v hello world
}
normalise_echoclient_unix() { sed -E 's#/[^ ]*/echo\.sock#SOCK#g; s/@[0-9a-f]+|unnamed/CLIENT/g'; }
scenario_echoclient_udp() {
    peer_echoserver --network udp || return
    run_main echoclient --network udp --connect "127.0.0.1:$PEER_PORT" -v one two three
}
normalise_echoclient_udp() { normalise_echoclient_args "$@"; }

# ---- msgqueue ----
# A queue of this run's own, made and filled by untraced calls; only the receiver is traced.
scenario_msgqueue_receive() {
    local q=/faults-msgqueue-$$
    "$BIN/msgqueue" create "$q" --max-msgs 4 --msg-size 64 >/dev/null
    "$BIN/msgqueue" send "$q" one -p 1 >/dev/null
    "$BIN/msgqueue" send "$q" two -p 5 >/dev/null
    run_main msgqueue receive "$q" -n 2 --timeout 5s
    "$BIN/msgqueue" unlink "$q" >/dev/null
}
scenario_msgqueue_send() {
    local q=/faults-msgqueue-$$
    "$BIN/msgqueue" create "$q" --max-msgs 4 --msg-size 64 >/dev/null
    run_main msgqueue send "$q" hello -p 3 --timeout 5s
    "$BIN/msgqueue" receive "$q" --nonblock >"$D/received"
    "$BIN/msgqueue" unlink "$q" >/dev/null
}
normalise_msgqueue_receive() { digits; }
normalise_msgqueue_send() { digits; }
# The demo's queue is unlinked at once, so an interrupted run leaves nothing in /dev/mqueue.
scenario_msgqueue_demo() { run_main msgqueue demo --block 100ms; }
normalise_msgqueue_demo() { digits; }

# ---- fdpass ----
# A file passed from a traced sender to a traced receiver, in this run's directory.
scenario_fdpass_file() {
    cd "$D" || return
    cp "$DATA/seq1000" data.txt
    start_bg sender fdpass send --socket fd.sock --file data.txt --offset 100
    wait_line "$D/sender.out" '^waiting on ' || return
    run_main fdpass receive --socket fd.sock
    wait_bg sender
}
normalise_fdpass_file() { sed -E 's#/[^ ]*/data\.txt#data.txt#' | digits; }
# The listener handed over between two traced servers; socat (untraced) is the client.
scenario_fdpass_handover() {
    cd "$D" || return
    start_bg old fdpass serve-listener --socket ctl.sock
    wait_line "$D/old.out" '^serving on ' || return
    local port
    port=$(port_of "$D/old.out")
    socat -T 10 -u "TCP:127.0.0.1:$port" - >>"$D/clients" 2>&1
    start_bg new fdpass take-listener --socket ctl.sock --count 1
    wait_line "$D/new.out" '^serving on ' || return
    socat -T 10 -u "TCP:127.0.0.1:$port" - >>"$D/clients" 2>&1
    wait_bg new
    wait_bg old
}
normalise_fdpass_handover() { digits; }
scenario_fdpass_demo() { run_main fdpass demo; }
normalise_fdpass_demo() { digits; }

# ---- shm ----
# The demo: fork, two pipes between parent and child, waitpid; the frames and addresses differ
# from run to run (and the frames are only shown to root).
scenario_shm_demo() { run_main shm demo; }
normalise_shm_demo() { sed -E 's/0x[0-9a-f]+/ADDR/g' | digits; }
# write, then read, by name: an object of this run's own, removed at the end.
scenario_shm_read() {
    local name=faults-shm-$$
    "$BIN/shm" write "$name" "$(head -n 300 "$DATA/seq1000" | tr '\n' ' ')" >/dev/null
    run_main shm read "$name"
    "$BIN/shm" unlink "$name" >/dev/null
}
normalise_shm_read() { sed -E -e 's/faults-shm-[0-9]+/faults-shm-N/g' -e 's/0x[0-9a-f]+/ADDR/g'; }

# ---- semaphore ----
# A waiter (traced) blocks in sem_wait (futex) until an untraced post, three times over.
scenario_semaphore_wait() {
    local name=faults-sem-$$ k
    for k in 1 2 3; do
        start_bg "wait$k" semaphore wait "$name"
        wait_line "$D/wait$k.out" 'waiting' || return
        "$BIN/semaphore" post "$name" >/dev/null
        wait_bg "wait$k"
    done
    "$BIN/semaphore" unlink "$name" >/dev/null
}
# How long each wait took is timing.
normalise_semaphore_wait() { sed -E -e 's/faults-sem-[0-9]+/faults-sem-N/g' -e 's/took one (at once|after [0-9.]+[a-z]+)/took one T/'; }
# Nobody posts: sem_timedwait ends in ETIMEDOUT, exit 1, with the same deadline however often
# a signal interrupts it.
scenario_semaphore_timeout() {
    local name=faults-sem-$$
    run_main semaphore wait "$name" --timeout 300ms
    "$BIN/semaphore" unlink "$name" >/dev/null
}
normalise_semaphore_timeout() { sed -E 's/faults-sem-[0-9]+/faults-sem-N/g'; }

# ---- race ----
# The semaphore round only: with the lock none is lost, so the counter is the same every run;
# --interrupt (sched_yield inside the critical section) makes the others wait in sem_wait (futex).
scenario_race_semaphore() { run_main race --lock semaphore --interrupt --procs 3 --count 2000; }
normalise_race_semaphore() { sed -E 's/ +[0-9]+\.[0-9]+s$/ Ts/'; }
scenario_race_atomic() { run_main race --lock atomic --procs 3 --count 3000; }
normalise_race_atomic() { normalise_race_semaphore "$@"; }

# ---- robust ----
scenario_robust_demo() { run_main robust --timeout 200ms; }
normalise_robust_demo() { digits; }

# ---- ipcbench ----
# The small pipe run: what it measures varies, the lines it prints and their checksums do not.
# Its note on a busy machine comes and goes with the load (strace's too), so it is dropped.
scenario_ipcbench_pipe() { run_main ipcbench pipe --size 4M; }
normalise_ipcbench_pipe() {
    sed -E -e '/^note: the memcpy run had /d' -e 's/ +/ /g' -e 's/[0-9]+(\.[0-9]+)?/N/g'
}
# echo against an untraced echoloop: every request answered; the rates and latencies vary.
scenario_ipcbench_echo() {
    start_peer peer echoloop --listen 127.0.0.1:0
    wait_line "$D/peer.out" 'listening on' || return
    local port
    port=$(port_of "$D/peer.out")
    rm -f "$D/peer.out" "$D/peer.err"
    run_main ipcbench echo --connect "127.0.0.1:$port" --conns 4 --requests 4000
}
normalise_ipcbench_echo() { sed -E 's/127\.0\.0\.1:[0-9]+/ADDR/g' | normalise_ipcbench_pipe; }
