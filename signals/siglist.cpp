// siglist: `kill -l`, explained: every signal with its number, default action and meaning.
// Usage: siglist [--json] [-x] [SIGNAL...]     siglist -l [SIGNAL...]   (exactly as bash's kill -l)
// Demonstrates "信号类型" (signals-and-graceful-restart.md) and "信号" (multiprocess-ipc.md):
// standard signals 1-31, real-time SIGRTMIN..SIGRTMAX, why 32 and 33 are missing, which two
// signals can never be caught, and what this process inherited ignored or blocked.
// Try: siglist; siglist TERM 9 RTMIN+2; siglist -l; nohup siglist HUP
// See also: sigrecv (catch them), sigsend (send them), bash's kill -l
#include <signal.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/output.hpp"
#include "ipc/proc.hpp"
#include "ipc/signals.hpp"

namespace {

// The kernel's first real-time signal. glibc keeps the first ones for its threads
// (cancellation and set*id), so a program's SIGRTMIN is higher: 34 with NPTL.
constexpr int kernel_rtmin = __SIGRTMIN;

// What this process got from its parent: ignored dispositions and the blocked mask survive
// fork() and execve() (a caught signal goes back to its default at execve). Bit n-1 = signal n.
struct inherited {
    std::uint64_t ignored = 0;
    std::uint64_t blocked = 0;
    bool known = false;  // false if /proc could not be read
};

// The hex mask on the line "SigIgn:\t0000000000000006"; nullopt if the line is not there.
std::optional<std::uint64_t> status_mask(std::string_view status, std::string_view field) {
    const auto value = ipc::status_field(status, field);
    std::uint64_t mask = 0;
    if (!value ||
        std::from_chars(value->data(), value->data() + value->size(), mask, 16).ec != std::errc{}) {
        return std::nullopt;
    }
    return mask;
}

// Read after ipc::start(), which may have installed a handler for SIGPIPE: that shows in SigCgt
// (caught), never in SigIgn or SigBlk. An inherited SIG_IGN for SIGPIPE is kept, and shown.
inherited read_inherited() {
    inherited in;
    const auto status = ipc::read_proc(0, "status");
    if (!status) {
        ipc::warn("read(/proc/self/status)");
        return in;
    }
    const auto ignored = status_mask(*status, "SigIgn");
    const auto blocked = status_mask(*status, "SigBlk");
    if (!ignored || !blocked) {
        ipc::complain("/proc/self/status has no SigIgn or SigBlk line: INHERITED unknown");
        return in;
    }
    in.ignored = *ignored;
    in.blocked = *blocked;
    in.known = true;
    ipc::explain("read(/proc/self/status): SigIgn {:016x} SigBlk {:016x}", in.ignored, in.blocked);
    return in;
}

bool has(std::uint64_t mask, int sig) { return ((mask >> (sig - 1)) & 1U) != 0; }

std::string state_of(const inherited& in, int sig) {
    if (!in.known) return "?";
    const bool ign = has(in.ignored, sig);
    const bool blk = has(in.blocked, sig);
    if (ign && blk) return "ignored,blocked";
    if (ign) return "ignored";
    if (blk) return "blocked";
    return "-";
}

// One argument read as bash's `kill -l ARG` reads it: a name, or a number, where 129..192 is
// the exit status of a process killed by signal N-128. Either a signal or why there is none.
struct resolved {
    int number = 0;
    bool from_status = false;  // the argument was 128+number
};

std::variant<resolved, std::string> resolve(const std::string& arg) {
    const bool numeric = !arg.empty() && std::all_of(arg.begin(), arg.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    if (!numeric) {
        if (auto sig = ipc::parse_signal(arg)) return resolved{*sig, false};
        return fmt::format("{}: no such signal name (siglist -l lists them)", arg);
    }
    const auto digits = arg.size() - std::min(arg.find_first_not_of('0'), arg.size());
    const int given = digits > 9 ? -1 : std::stoi(arg);  // -1: too many digits for a signal
    const bool from_status = given > 128;
    const int n = from_status ? given - 128 : given;
    if (ipc::is_valid_signal(n)) return resolved{n, from_status};
    if (n == 0) {
        return fmt::format(
            "{}: the null signal: kill(pid, 0) sends nothing, it only checks that pid exists", arg);
    }
    if (n >= kernel_rtmin && n < ipc::rt_min()) {
        return fmt::format(
            "{}: no such signal: the kernel's real-time range starts at {}, but glibc keeps {}..{} "
            "for its threads, so SIGRTMIN is {} here (bash's kill -l {} prints nothing)",
            arg, kernel_rtmin, kernel_rtmin, ipc::rt_min() - 1, ipc::rt_min(), arg);
    }
    return fmt::format("{}: no such signal: numbers go from 1 to {} here", arg, ipc::rt_max());
}

// bash's `kill -l`: "%2d) %s", a tab after each entry but the fifth of a line, then a newline.
void print_plain_list() {
    std::string out;
    int column = 0;
    for (const auto& s : ipc::all_signals()) {
        out += fmt::format("{:2d}) SIG{}", s.number, s.name);
        if (++column < 5) {
            out += '\t';
        } else {
            out += '\n';
            column = 0;
        }
    }
    if (column != 0) out += '\n';
    ipc::print(out);
}

// bash's `kill -l ARG...`: the bare name of a number, the number of a name.
int print_plain_lookups(const std::vector<std::string>& args) {
    int status = 0;
    for (const auto& arg : args) {
        const auto r = resolve(arg);
        if (const auto* why = std::get_if<std::string>(&r)) {
            ipc::complain(*why);
            status = ipc::exit_failure;
        } else if (const int n = std::get<resolved>(r).number; arg[0] >= '0' && arg[0] <= '9') {
            ipc::say("{}", ipc::signal_info_of(n)->name);
        } else {
            ipc::say("{}", n);
        }
    }
    return status;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\')
            out += fmt::format("\\{}", c);
        else if (static_cast<unsigned char>(c) < 0x20)
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        else
            out += c;
    }
    return out + '"';
}

void print_json(const std::vector<ipc::signal_info>& rows, const inherited& in) {
    std::string out =
        fmt::format(R"({{"rtmin":{},"rtmax":{},"reserved":[)", ipc::rt_min(), ipc::rt_max());
    for (int n = kernel_rtmin; n < ipc::rt_min(); ++n) {
        out += fmt::format("{}{}", n == kernel_rtmin ? "" : ",", n);
    }
    out += R"(],"signals":[)";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& s = rows[i];
        out += fmt::format(
            R"({}{{"number":{},"name":"SIG{}","action":"{}","catchable":{},"blockable":{},)"
            R"("ignored":{},"blocked":{},"description":{}}})",
            i == 0 ? "" : ",", s.number, s.name, ipc::action_name(s.action), s.catchable,
            s.catchable, in.known && has(in.ignored, s.number),
            in.known && has(in.blocked, s.number), json_string(s.description));
    }
    ipc::say("{}]}}", out);
}

void print_table(const std::vector<ipc::signal_info>& rows, const inherited& in) {
    constexpr std::string_view row = "{:>3}  {:<12} {:<6} {:<5} {:<5} {:<15} {}\n";
    std::string out =
        fmt::format(row, "NUM", "NAME", "ACTION", "CATCH", "BLOCK", "INHERITED", "DESCRIPTION");
    for (const auto& s : rows) {
        const std::string_view yes_no = s.catchable ? "yes" : "no";
        out += fmt::format(row, s.number, "SIG" + s.name, ipc::action_name(s.action), yes_no,
                           yes_no, state_of(in, s.number), s.description);
    }
    ipc::print(out);
}

// Under the whole table: why 32 and 33 are missing, and what the columns mean.
void print_notes() {
    std::string out;
    if (ipc::rt_min() > kernel_rtmin) {
        std::string missing;
        for (int n = kernel_rtmin; n < ipc::rt_min(); ++n) {
            missing += fmt::format("{}{}", n == kernel_rtmin ? "" : ", ", n);
        }
        out = fmt::format(
            "Not listed: {}. The kernel's real-time signals start at {}, but glibc keeps the\n"
            "first {} for its threads (cancellation, set*id), so SIGRTMIN is {} here.\n",
            missing, kernel_rtmin, ipc::rt_min() - kernel_rtmin, ipc::rt_min());
    }
    ipc::print(
        out +
        "ACTION is what happens when nobody handles the signal (signal(7)). Only SIGKILL and\n"
        "SIGSTOP can be neither caught, blocked nor ignored. INHERITED is this process's own\n"
        "state, from /proc/self/status (SigIgn, SigBlk): ignored and blocked signals survive\n"
        "fork and exec, so a parent can hand them down without the child knowing.\n");
}

struct options {
    bool plain = false;  // -l: bash's kill -l
    bool json = false;
    std::vector<std::string> signals;  // empty: all of them
};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "kill -l, explained: each signal's number, name, default action, whether it can be caught\n"
        "or blocked, what it means, and whether this process inherited it ignored or blocked.",
        "siglist"};
    ipc::setup(app, "siglist TERM 9 RTMIN+2      siglist -l      nohup siglist HUP");
    options opt;
    auto* list = app.add_flag("-l,--list", opt.plain,
                              "Print the plain list exactly as bash's kill -l does; with SIGNALs, "
                              "each number's name or each name's number, as kill -l N does");
    app.add_flag("--json", opt.json,
                 "One JSON object for scripts: rtmin, rtmax, reserved, signals[]")
        ->excludes(list);
    app.add_option("SIGNAL", opt.signals,
                   "Show only these: TERM, SIGTERM, term, 15, RTMIN+2, or 143 (= 128+15, the "
                   "status of a process killed by SIGTERM)");
    ipc::parse(app, argc, argv);
    return opt;
}

// The rows to show (every signal when none is named), and a note for each exit status given.
// A bad argument is reported at once (exit status 1); the good ones are still shown.
struct selection {
    std::vector<ipc::signal_info> rows;
    std::string notes;  // "143 = 128 + 15: ..." lines
    int status = 0;
};

selection select_rows(const std::vector<std::string>& args) {
    selection out;
    if (args.empty()) out.rows = ipc::all_signals();
    for (const auto& arg : args) {
        const auto r = resolve(arg);
        if (const auto* why = std::get_if<std::string>(&r)) {
            ipc::complain(*why);
            out.status = ipc::exit_failure;
            continue;
        }
        const auto sig = std::get<resolved>(r);
        out.rows.push_back(*ipc::signal_info_of(sig.number));
        if (sig.from_status) {
            out.notes += fmt::format(
                "{} = 128 + {}: the status a shell reports for a process killed by {}\n", arg,
                sig.number, ipc::signal_name(sig.number));
        }
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    if (opt.plain && opt.signals.empty()) {
        print_plain_list();
        return 0;
    }
    if (opt.plain) return print_plain_lookups(opt.signals);

    // What this process inherited: the ignored and blocked signals, from /proc/self/status.
    const inherited in = read_inherited();
    const selection chosen = select_rows(opt.signals);
    if (opt.json) {
        print_json(chosen.rows, in);
    } else if (!chosen.rows.empty()) {
        print_table(chosen.rows, in);
        ipc::print(chosen.notes);
        if (opt.signals.empty()) print_notes();
    }
    return chosen.status;
} catch (...) {
    return ipc::internal_error();
}
