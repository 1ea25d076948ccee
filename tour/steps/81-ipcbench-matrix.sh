# shellcheck shell=bash
# Tour step for ipcbench matrix: every mechanism, the same exchange, side by side. Sourced by
# tour/tour.sh after 80-ipcbench.sh (its chapter). The counts are tiny: the figures are noisy.

step "the map of IPC · \"shared memory is the fastest\": the same ping-pong over every mechanism" \
    'ipcbench matrix --size 7 --count 2000 --cpu same
ipcbench matrix --size 100K --count 200 --only pipe,udp,mq,shm-futex' \
    "one row per mechanism: p50/p99/max of a round trip, the CPU each side spent on it, a bar for round trips/s, and the verdict computed from the rows. At 100K the message queue and UDP say n/a with their limit instead of carrying less."
