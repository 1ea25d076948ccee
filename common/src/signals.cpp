#include "ipc/signals.hpp"
#include "ipc/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <csignal>

namespace ipc {
namespace {

struct standard_signal {
    std::string_view name;
    signal_action action;
    std::string_view description;
};

using enum signal_action;

// Signals 1..31 as Linux numbers them on x86 and arm (signal(7)); index = number - 1.
constexpr std::array<standard_signal, 31> standard_signals{{
    {"HUP", term, "Hangup: the terminal closed, or its controlling process died"},
    {"INT", term, "Interrupt from the keyboard (Ctrl-C)"},
    {"QUIT", core, "Quit from the keyboard (Ctrl-\\)"},
    {"ILL", core, "Illegal instruction"},
    {"TRAP", core, "Trace or breakpoint trap"},
    {"ABRT", core, "Abort signal from abort(3)"},
    {"BUS", core, "Bus error: bad memory access"},
    {"FPE", core, "Arithmetic error, e.g. integer division by zero"},
    {"KILL", term, "Kill: cannot be caught, blocked or ignored"},
    {"USR1", term, "User-defined signal 1"},
    {"SEGV", core, "Invalid memory reference"},
    {"USR2", term, "User-defined signal 2"},
    {"PIPE", term, "Broken pipe: write to a pipe or socket with no reader"},
    {"ALRM", term, "Timer signal from alarm(2)"},
    {"TERM", term, "Termination request: what kill sends by default"},
    {"STKFLT", term, "Stack fault on coprocessor (unused)"},
    {"CHLD", ign, "Child stopped, continued or terminated"},
    {"CONT", cont, "Continue if stopped"},
    {"STOP", stop, "Stop the process: cannot be caught, blocked or ignored"},
    {"TSTP", stop, "Stop typed at the terminal (Ctrl-Z)"},
    {"TTIN", stop, "Terminal input for a background process"},
    {"TTOU", stop, "Terminal output for a background process"},
    {"URG", ign, "Urgent condition on a socket"},
    {"XCPU", core, "CPU time limit exceeded (setrlimit(2))"},
    {"XFSZ", core, "File size limit exceeded (setrlimit(2))"},
    {"VTALRM", term, "Virtual alarm clock"},
    {"PROF", term, "Profiling timer expired"},
    {"WINCH", ign, "Terminal window size changed"},
    {"IO", term, "I/O now possible (also called POLL)"},
    {"PWR", term, "Power failure"},
    {"SYS", core, "Bad system call"},
}};

struct alias {
    std::string_view name;
    int number;
};
constexpr std::array<alias, 3> aliases{{{"IOT", SIGABRT}, {"POLL", SIGIO}, {"CLD", SIGCHLD}}};

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

// Decimal digits only: no sign ("-0" is no signal, "RTMIN+-0" no RTMIN; found by tests/fuzz).
std::optional<int> parse_int(std::string_view s) {
    if (s.empty() || s[0] < '0' || s[0] > '9') return std::nullopt;
    return parse_decimal<int>(s);
}

// The bare name of a valid signal: bash splits the real-time range in the middle,
// naming the lower half RTMIN+k and the upper half RTMAX-k.
std::string bare_name(int number) {
    if (number >= 1 && number <= 31) {
        return std::string(standard_signals[static_cast<std::size_t>(number - 1)].name);
    }
    const int lo = rt_min();
    const int hi = rt_max();
    if (number == lo) return "RTMIN";
    if (number == hi) return "RTMAX";
    if (number - lo <= (hi - lo) / 2) return fmt::format("RTMIN+{}", number - lo);
    return fmt::format("RTMAX-{}", hi - number);
}

}  // namespace

int rt_min() noexcept { return SIGRTMIN; }
int rt_max() noexcept { return SIGRTMAX; }

bool is_valid_signal(int number) noexcept {
    return (number >= 1 && number <= 31) || (number >= rt_min() && number <= rt_max());
}

std::string_view action_name(signal_action action) noexcept {
    switch (action) {
        case term: return "Term";
        case ign: return "Ign";
        case core: return "Core";
        case stop: return "Stop";
        case cont: return "Cont";
    }
    return "?";
}

std::optional<signal_info> signal_info_of(int number) {
    if (!is_valid_signal(number)) return std::nullopt;
    signal_info info;
    info.number = number;
    info.name = bare_name(number);
    info.catchable = number != SIGKILL && number != SIGSTOP;
    if (number <= 31) {
        const auto& s = standard_signals[static_cast<std::size_t>(number - 1)];
        info.action = s.action;
        info.description = s.description;
    } else {
        info.action = term;
        info.description = "Real-time signal: queued, delivered in order, can carry a value";
    }
    return info;
}

std::vector<signal_info> all_signals() {
    std::vector<signal_info> out;
    for (int n = 1; n <= rt_max(); ++n) {
        if (auto info = signal_info_of(n)) out.push_back(std::move(*info));
    }
    return out;
}

std::string signal_name(int number) {
    if (!is_valid_signal(number)) return fmt::format("signal {}", number);
    return "SIG" + bare_name(number);
}

std::optional<int> parse_signal(std::string_view text, bool allow_null) {
    if (auto n = parse_int(text)) {
        if (*n == 0 && allow_null) return 0;
        if (is_valid_signal(*n)) return n;
        return std::nullopt;
    }
    std::string name = upper(text);
    if (name.starts_with("SIG")) name.erase(0, 3);
    for (int n = 1; n <= 31; ++n) {
        if (name == standard_signals[static_cast<std::size_t>(n - 1)].name) return n;
    }
    for (const auto& a : aliases) {
        if (name == a.name) return a.number;
    }
    // RTMIN, RTMIN+k, RTMAX, RTMAX-k (k written in decimal, within the range: checked before
    // it is added, as RTMIN+2147483647 would overflow an int).
    const int lo = rt_min();
    const int hi = rt_max();
    std::optional<int> n;
    if (name == "RTMIN")
        n = lo;
    else if (name == "RTMAX")
        n = hi;
    else if (name.starts_with("RTMIN+")) {
        const auto k = parse_int(std::string_view(name).substr(6));
        if (k && *k <= hi - lo) n = lo + *k;
    } else if (name.starts_with("RTMAX-")) {
        if (auto k = parse_int(std::string_view(name).substr(6))) n = hi - *k;
    }
    if (n && *n >= lo && *n <= hi) return n;
    return std::nullopt;
}

}  // namespace ipc
