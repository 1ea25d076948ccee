# Shared by tests/sockets/*.bats, after `load ../helpers/ipc`:   load ../helpers/sockets
#
#   start_server NAME CMD...   bg_start NAME CMD..., then wait for the readiness line that every
#                              server prints, "echoserver: listening on NETWORK ADDR" (echoloop:,
#                              echodgram:, ...) on its stdout; sets SERVER_PID, ADDR (as
#                              printed), HOST (without brackets) and PORT
#   start_tool NAME ARGS...    start_server NAME $TOOL ARGS... (the server under test)
#   start_echoserver NAME ARGS...   start_server NAME $BIN/echoserver ARGS... (likewise
#                              start_echoloop, start_echodgram)
#   tool_name                  the name of the tool under test, as it prefixes its messages
#   wait_for_count FILE REGEX N [SECONDS]  wait (bounded, default 20 s) until N lines of FILE
#                              match the extended REGEX
#   fd_count PID               how many descriptors PID has open (entries of /proc/PID/fd)
#   cpu_ticks PID              user + system CPU time PID has used, in clock ticks (/proc/PID/stat)
#   have_ipv6                  true when the loopback interface has ::1

# shellcheck disable=SC2034 # SERVER_PID, ADDR, HOST and PORT are for the caller
start_server() {
    local name=$1
    shift
    bg_start "$name" "$@"
    SERVER_PID=$BG_PID
    wait_for_line "$(bg_out "$name")" '^[a-z]+: listening on ' 10 || return 1
    ADDR=$(sed -n 's/^[a-z]*: listening on [a-z0-9]* //p' "$(bg_out "$name")" | head -n 1)
    PORT=${ADDR##*:}
    HOST=${ADDR%:*}
    HOST=${HOST#\[}
    HOST=${HOST%\]}
}

start_tool() {
    local name=$1
    shift
    start_server "$name" "$TOOL" "$@"
}

start_echoserver() {
    local name=$1
    shift
    start_server "$name" "$BIN/echoserver" "$@"
}

start_echoloop() {
    local name=$1
    shift
    start_server "$name" "$BIN/echoloop" "$@"
}

start_echodgram() {
    local name=$1
    shift
    start_server "$name" "$BIN/echodgram" "$@"
}

tool_name() { basename "$TOOL"; }

wait_for_count() {
    local file=$1 regex=$2 want=$3 seconds=${4:-20}
    local deadline=$((SECONDS + seconds)) have
    for (( ; ; )); do
        have=$(grep -E -c -- "$regex" "$file" 2>/dev/null) || true
        ((${have:-0} >= want)) && return 0
        if ((SECONDS >= deadline)); then
            echo "timed out after ${seconds}s waiting for $want lines /$regex/ in $file (have ${have:-0}); its tail:" >&2
            tail -n 20 "$file" >&2 2>/dev/null
            return 1
        fi
        sleep 0.02
    done
}

fd_count() {
    local entries=("/proc/$1/fd/"*)
    echo "${#entries[@]}"
}

cpu_ticks() {
    local stat fields
    stat=$(<"/proc/$1/stat")
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    read -r -a fields <<<"${stat##*) }"
    echo $((fields[11] + fields[12])) # utime and stime, fields 14 and 15
}

have_ipv6() {
    grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null
}
