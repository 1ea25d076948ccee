#!/usr/bin/env bats
# The guided tour (tour/tour.sh) runs every step, in the notes' order, and leaves nothing behind.
load ../helpers/ipc

@test "the tour runs every step, each with its section, command and notice, and leaves nothing behind" {
    run "$TOOL"
    assert_success
    assert_line --regexp '^The tour ran [0-9]+ steps\.'
    refute_line --partial 'left processes behind'
    local sections commands notices
    sections=$(grep -c '^§ ' <<<"$output")
    commands=$(grep -c '^\$ ' <<<"$output")
    notices=$(grep -c '^→ ' <<<"$output")
    assert [ "$sections" -gt 0 ]
    assert_equal "$commands" "$sections"
    assert_equal "$notices" "$sections"
}

@test "one chapter can be run alone" {
    run "$TOOL" 10
    assert_success
    assert_line --partial 'procinfo'
    refute_line --partial 'sigrecv'
}

@test "a missing tools folder is a clear error" {
    BIN=/nonexistent run "$TOOL"
    assert_failure
    assert_output --partial 'build them first'
}
