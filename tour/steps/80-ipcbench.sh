# shellcheck shell=bash
# Tour steps for ipcbench: the measurements, kept out of the lessons. Sourced by tour/tour.sh.
# Each run is small; the figures depend on the machine and on what else runs on it.
chapter "Measuring: ipcbench (multiprocess-ipc.md)"

step "进程的切换和调度 · a pipe through the kernel against a hand-off in memory, on one CPU" \
    'ipcbench pipe --size 64M --wait all --cpu same' \
    "every run arrives intact (checksum ok); 'sleeps' counts the context switches each hand-off costs, and the CPU table shows the spin mode burning its CPU while it waits for a thread that cannot run."

step "Socket · a server under load: one line in flight on each of 50 connections" \
    'echoserver --listen 127.0.0.1:0 >log & server=$!
for i in {1..200}; do grep -q listening log && break; sleep 0.05; done
addr=$(sed -n "s/^echoserver: listening on tcp //p" log)
ipcbench echo --connect "$addr" --conns 50 --requests 20000 --threads 2 --server-pid $server
ipcbench echo --connect "$addr" --bulk 64M
kill -TERM $server; wait' \
    "requests/s and the latency percentiles, then the CPU each side spent: a client at 100% per event loop would be measuring itself. Then 64 MiB streamed and checked byte for byte. tests/perf/sockets.sh compares the servers."
