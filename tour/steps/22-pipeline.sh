# shellcheck shell=bash
# Tour steps for pipeline, the "管道" part of multiprocess-ipc.md. Sourced by tour/tour.sh.
chapter "管道 · pipes: pipeline (multiprocess-ipc.md)"

step "管道 · ps aux | grep go, without a shell" \
    "pipeline -v -- ps -o pid,ppid,comm '|' grep -E ' (pipeline|ps|grep)\$'" \
    "ps and grep run at the same time, both children of pipeline (their PPID is its PID); plain 'pipeline' runs the notes' ps aux | grep go."

step "管道 · who closes which end (-x)" \
    "pipeline -x -v -- yes '|' head -n 3" \
    "each child dup2s its pipe end onto 0 or 1 and closes every other end; the parent closes its copies; when head exits, yes dies of SIGPIPE (141)."

step "管道 · the exit status of a pipeline" \
    "pipeline -- printf 'go\\nrust\\n' '|' grep zzz '|' wc -l; echo \"status \$?\"; pipeline --pipefail -- printf 'go\\nrust\\n' '|' grep zzz '|' wc -l; echo \"status \$?\"" \
    "the middle grep failed (1), yet the status is wc's 0, as in bash; with --pipefail it is the last failing stage's."

step "管道 · the parent relays the bytes (the notes' bufio version)" \
    "pipeline --relay -v -- yes '|' head -c 100M '|' wc -c" \
    "the parent copies every byte of each link through a 64 KiB buffer and counts them; yes still dies of SIGPIPE once head is done."

step "管道 · a command that cannot be started" \
    "pipeline -- grepp go; echo \"status \$?\"" \
    "the child's execvp failed; it sent errno to the parent through an O_CLOEXEC pipe, and the status is 127, as a shell's."
