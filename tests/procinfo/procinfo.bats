#!/usr/bin/env bats
load ../helpers/ipc

@test "prints its own pid and its parent's" {
    run "$TOOL"
    assert_success
    assert_line --regexp '^pid [0-9]+$'
}

@test "--version prints the project version" {
    run "$TOOL" --version
    assert_success
    assert_output --regexp '^procinfo \(ipckit\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "an unknown option is a usage error" {
    run "$TOOL" --bogus
    assert_usage_error "--bogus"
}

@test "background helper: start, wait for a line, stop" {
    bg_start cat bash -c 'echo ready; exec sleep 30'
    wait_for_line "$(bg_out cat)" '^ready$' 5
    kill -TERM "$BG_PID"
    wait_for_exit "$BG_PID" 5
    assert_equal "$BG_STATUS" 143
}
