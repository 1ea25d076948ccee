// signals/sigsend_args.hpp: sigsend's PID and --value arguments, checked. No I/O: a file of its
// own so that tests/fuzz/fuzz_sigsend.cpp reaches it; sigsend.cpp says what each refusal means.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>

namespace sigsend_args {

// A PID argument as kill(2) reads it: > 0 one process, 0 the caller's process group, -1 every
// process the caller may signal, < -1 the process group -pid.
enum class pid_verdict {
    ok,
    not_a_pid,      // not a decimal number that fits pid_t (no '+', no spaces, no "0x")
    every_process,  // -1: always refused
    needs_group,    // 0 or < -1 without --group
    needs_force,    // 1 (init) without --force
};

struct pid_arg {
    pid_t pid = 0;
    pid_verdict verdict = pid_verdict::not_a_pid;
};

[[nodiscard]] pid_arg parse_pid(std::string_view text, bool group, bool force);

// --value V --count N sends V, V+1, ..., V+N-1: true if the last one still fits an int
// (sigqueue's sival_int), which a wrap-around past INT_MAX would not.
[[nodiscard]] bool values_fit(int first, std::uint64_t count);

}  // namespace sigsend_args
