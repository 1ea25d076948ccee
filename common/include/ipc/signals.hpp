// ipc/signals.hpp: the signal table: number <-> name, default action, whether it can be caught.
//
// Names are written without "SIG" as bash's `kill -l N` prints them ("TERM", "RTMIN+3",
// "RTMAX-2"); signal_name() adds the prefix. The real-time range is read from the running
// system (SIGRTMIN is a function call in glibc, which keeps the first two for its threads).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipc {

// What the kernel does with a signal nobody handles (signal(7), "Signal dispositions").
enum class signal_action { term, ign, core, stop, cont };

struct signal_info {
    int number = 0;
    std::string name;  // "TERM", "RTMIN+3": as `kill -l 15` prints it
    signal_action action = signal_action::term;
    bool catchable = true;         // false for KILL and STOP: no handler, no block, no ignore
    std::string_view description;  // one line
};

[[nodiscard]] int rt_min() noexcept;  // SIGRTMIN of this process (34 with glibc)
[[nodiscard]] int rt_max() noexcept;  // SIGRTMAX (64 on Linux)

// True for 1..31 and SIGRTMIN..SIGRTMAX: the signals a program can name.
[[nodiscard]] bool is_valid_signal(int number) noexcept;

// "Term", "Ign", "Core", "Stop", "Cont".
[[nodiscard]] std::string_view action_name(signal_action action) noexcept;

// The row for one signal; nullopt for 0, 32, 33 and numbers out of range.
[[nodiscard]] std::optional<signal_info> signal_info_of(int number);

// Every valid signal, 1..31 then SIGRTMIN..SIGRTMAX.
[[nodiscard]] std::vector<signal_info> all_signals();

// "SIGTERM", "SIGRTMIN+3"; "signal 32" for a number with no name.
[[nodiscard]] std::string signal_name(int number);

// Accepts TERM, SIGTERM, term, sigterm, 15, RTMIN, RTMIN+3, SIGRTMAX-2 and the aliases
// IOT, POLL, CLD. "0" (the null signal of kill(2)) only when allow_null is true.
[[nodiscard]] std::optional<int> parse_signal(std::string_view text, bool allow_null = false);

}  // namespace ipc
