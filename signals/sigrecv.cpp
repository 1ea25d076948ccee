// sigrecv: receive signals and show everything the kernel records about each delivery.
// Usage: sigrecv [--signals LIST | --all] [--stop-after N] [--block DURATION] [--watchers N]
//                [-q] [-x]
// Demonstrates "信号" in multiprocess-ipc.md (signal.Notify, signal.Stop, standard vs real-time
// signals) and "处理信号" in signals-and-graceful-restart.md: the signals are blocked with
// sigprocmask and read from a signalfd, so no code ever runs inside a signal handler.
// Try: sigrecv   then, from another terminal: kill -USR1 <pid>; kill <pid>
// See also: sigsend (sends signals, with values), siglist (the table of signals)
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "channel.hpp"
#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/proc.hpp"
#include "ipc/signals.hpp"
#include "ipc/units.hpp"

namespace {

// One delivery, as the kernel recorded it when the signal was sent (signalfd_siginfo).
struct delivery {
    int signo = 0;
    int code = 0;  // si_code: who or what sent it
    std::uint32_t pid = 0;
    std::uint32_t uid = 0;
    int value = 0;  // sigqueue's value; meaningful only when code == SI_QUEUE
};

// How the signal was sent, from si_code (sigaction(2), "The siginfo_t argument").
std::string how_sent(const delivery& d) {
    switch (d.code) {
        case SI_USER: return "kill";
        case SI_QUEUE: return fmt::format("sigqueue value {}", d.value);
        case SI_TKILL: return "tgkill/raise";
        case SI_TIMER: return "timer";
        case SI_MESGQ: return "mq_notify";
        case SI_ASYNCIO: return "aio";
        case SI_SIGIO: return "sigio";
        case SI_KERNEL:
            // The terminal driver sends Ctrl-C, Ctrl-\, Ctrl-Z and hangups as the kernel.
            if (d.signo == SIGINT || d.signo == SIGQUIT || d.signo == SIGTSTP ||
                d.signo == SIGHUP || d.signo == SIGWINCH) {
                return "tty/kernel";
            }
            return "kernel";
        default:
            if (d.code > 0) return fmt::format("kernel (si_code {})", d.code);
            return fmt::format("si_code {}", d.code);
    }
}

delivery from_siginfo(const signalfd_siginfo& si) {
    return {static_cast<int>(si.ssi_signo), si.ssi_code, si.ssi_pid, si.ssi_uid, si.ssi_int};
}

std::string describe(const delivery& d) {
    return fmt::format("{} ({}) from pid {} uid {} via {}", ipc::signal_name(d.signo), d.signo,
                       d.pid, d.uid, how_sent(d));
}

// N independent subscribers, each a thread reading its own channel.
class watchers {
  public:
    watchers(int count, bool quiet) : channels_(static_cast<std::size_t>(count)) {
        for (int i = 0; i < count; ++i) {
            threads_.emplace_back([this, i, quiet] { run(i + 1, quiet); });
        }
    }
    watchers(const watchers&) = delete;
    watchers& operator=(const watchers&) = delete;
    ~watchers() { close(); }

    void send(const delivery& d) {
        for (auto& c : channels_) c.send(d);
    }
    // Like signal.Stop(ch) then close(ch): each watcher drains what it has, reports, and ends.
    void close() {
        for (auto& c : channels_) c.close();
        for (auto& t : threads_) {
            if (t.joinable()) t.join();
        }
    }

  private:
    void run(int id, bool quiet) {
        auto& ch = channels_[static_cast<std::size_t>(id - 1)];
        std::uint64_t received = 0;
        while (auto d = ch.receive()) {
            ++received;
            if (!quiet) ipc::say("watcher {} got {}", id, describe(*d));
        }
        ipc::say("watcher {}: channel closed after {} deliveries", id, received);
    }

    // A watcher's own queue, like a Go channel given to signal.Notify: the dispatcher sends every
    // delivery to every channel; a closed channel ends its watcher once it is drained. Unlike
    // Go's (which drops a signal when the channel is full) it never drops one.
    std::vector<signals::channel<delivery>> channels_;
    std::vector<std::thread> threads_;
};

// Everything received so far: a count per signal and when the first and last arrived.
struct tally {
    std::array<std::uint64_t, 65> per_signal{};
    std::uint64_t total = 0;
    ipc::steady::time_point first, last;

    void add(int signo, ipc::steady::time_point now) {
        if (total++ == 0) first = now;
        last = now;
        ++per_signal[static_cast<std::size_t>(signo)];
    }
    std::string summary(bool with_rate) const {
        const std::chrono::duration<double> span = last - first;
        std::string out =
            fmt::format("sigrecv: received {} signal{}", total, total == 1 ? "" : "s");
        if (total > 1 && span.count() == 0) out += " in one read";
        if (total > 1 && span.count() > 0) {
            out += fmt::format(" in {:.6f}s first to last", span.count());
            if (with_rate) {
                out += fmt::format(" ({:.0f}/s)", static_cast<double>(total - 1) / span.count());
            }
        }
        out += "\n";
        for (int s = 1; s <= 64; ++s) {
            const auto n = per_signal[static_cast<std::size_t>(s)];
            if (n != 0) out += fmt::format("  {} ({}): {}\n", ipc::signal_name(s), s, n);
        }
        return out;
    }
};

// One word of --signals as a signal a program can catch; exits 2 on a bad one.
int catchable_signal(std::string_view word) {
    const auto s = ipc::parse_signal(word);
    if (!s)
        ipc::usage_error(fmt::format("--signals: '{}' is not a signal (siglist shows them)", word));
    if (*s == SIGKILL) {
        ipc::usage_error(
            "--signals: SIGKILL cannot be caught, blocked or ignored: the kernel always ends the "
            "process, which is what makes kill -9 a last resort that works");
    }
    if (*s == SIGSTOP) {
        ipc::usage_error(
            "--signals: SIGSTOP cannot be caught, blocked or ignored: the kernel always stops the "
            "process (SIGTSTP, Ctrl-Z, is the stop signal a program can catch)");
    }
    return *s;
}

// The signals chosen on the command line, in the order given, each once; exits 2 on a bad one.
std::vector<int> choose_signals(const std::vector<std::string>& list, bool all) {
    std::vector<int> out;
    auto add = [&out](int s) {
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    };
    if (all) {
        for (const auto& info : ipc::all_signals()) {
            if (info.catchable) add(info.number);
        }
        return out;
    }
    if (list.empty()) return {SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGTERM};
    for (const std::string_view item : list) {
        // Each item may itself be "USR1,USR2" or "USR1 USR2".
        for (auto rest = item; !rest.empty();) {
            const auto end = std::min(rest.find_first_of(", "), rest.size());
            const auto word = rest.substr(0, end);
            rest.remove_prefix(std::min(end + 1, rest.size()));
            if (!word.empty()) add(catchable_signal(word));
        }
    }
    if (out.empty()) ipc::usage_error("--signals: the list is empty");
    return out;
}

std::string names_of(const std::vector<int>& signals) {
    std::string out;
    for (int s : signals) {
        if (!out.empty()) out += ' ';
        out += ipc::signal_name(s);
    }
    return out;
}

std::string names_of(const sigset_t& set) {
    std::vector<int> in;
    for (int s = 1; s <= ipc::rt_max(); ++s) {
        if (::sigismember(&set, s) == 1) in.push_back(s);
    }
    return in.empty() ? "(none)" : names_of(in);
}

// "SigQ: 5/96365" from /proc/self/status: signals queued for this real user / RLIMIT_SIGPENDING.
std::string queued_signals() {
    const auto status = ipc::read_proc(0, "status");
    const auto sigq = status ? ipc::status_field(*status, "SigQ") : std::nullopt;
    return sigq ? std::string(*sigq) : "?";
}

struct options {
    std::vector<int> signals;           // what to receive, in the order given
    std::uint64_t stop_after = 0;       // 0: until SIGINT or SIGTERM
    std::chrono::nanoseconds block{0};  // keep them blocked and unread this long first
    int watchers = 0;
    bool quiet = false;
};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Receive signals and print, for each delivery, the signal, who sent it (pid, uid), how "
        "(kill, sigqueue with its value, tgkill/raise, the terminal, the kernel). The signals "
        "are blocked with sigprocmask(2) and read from a signalfd(2): no code runs in a handler. "
        "SIGINT and SIGTERM end it with a count per signal (exit 0). SIGKILL and SIGSTOP can "
        "never be caught.",
        "sigrecv"};
    ipc::setup(app, "sigrecv    (then from another terminal: kill -USR1 PID; kill PID)");
    options opt;
    std::vector<std::string> signal_list;
    bool all = false;
    auto* signals_opt =
        app.add_option("-s,--signals", signal_list,
                       "The signals to receive, comma or space separated, any spelling: "
                       "USR1,SIGUSR2,term,10,RTMIN+1 (default: INT QUIT HUP USR1 USR2 TERM)")
            ->expected(1, -1)
            ->type_name("LIST");
    app.add_flag("-a,--all", all, "Receive every signal that can be caught (all but KILL and STOP)")
        ->excludes(signals_opt);
    app.add_option("--stop-after", opt.stop_after,
                   "After N deliveries restore the default dispositions and unblock (Go's "
                   "signal.Stop): the next SIGTERM then ends the process (status 143)")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}))
        ->type_name("N");
    ipc::add_duration_option(app, "--block", opt.block,
                             "Keep the signals blocked (and unread) this long first, then show "
                             "what is pending: a standard signal sent 5 times is pending once, "
                             "a real-time one 5 times");
    app.add_option("--watchers", opt.watchers,
                   "N independent subscribers (threads, each with its own queue) that each "
                   "receive every delivery, like calling signal.Notify with N channels")
        ->check(CLI::Range(1, 64))
        ->type_name("N");
    app.add_flag("-q,--quiet", opt.quiet,
                 "No line per delivery: count them, print the summary at the end");
    ipc::parse(app, argc, argv);
    opt.signals = choose_signals(signal_list, all);
    return opt;
}

// ipc::start() gave SIGPIPE a handler that does nothing, so that a write to a reader that has
// gone fails with EPIPE. Here every signal not taken must keep its default action, SIGPIPE too:
// kill -PIPE ends sigrecv (141), and so does a write into a pipe nobody reads any more. A
// SIGPIPE taken with --signals is blocked and read like the others; one inherited ignored stays.
void default_sigpipe() {
    struct sigaction sa {};
    if (::sigaction(SIGPIPE, nullptr, &sa) == -1) ipc::die("sigaction(SIGPIPE)");
    if (sa.sa_handler == SIG_IGN) return;
    sa.sa_handler = SIG_DFL;
    if (::sigaction(SIGPIPE, &sa, nullptr) == -1) ipc::die("sigaction(SIGPIPE, SIG_DFL)");
}

// --block: the signals stay pending meanwhile; then sigpending(2) shows which.
void hold_then_show_pending(std::chrono::nanoseconds block) {
    ipc::say("sigrecv: blocking for {}: signals sent now stay pending",
             ipc::format_duration(block));
    ipc::sleep_for(block);
    sigset_t pending;
    if (::sigpending(&pending) == -1) ipc::die("sigpending");
    ipc::explain("sigpending() = {{{}}}", names_of(pending));
    ipc::say("sigrecv: pending after {}: {}; queued (SigQ, for this user/limit): {}",
             ipc::format_duration(block), names_of(pending), queued_signals());
}

// Reads deliveries from the signalfd and prints them, until SIGINT or SIGTERM (returns that
// signal) or --stop-after deliveries (returns 0).
int receive(int sfd, const options& opt, tally& counts, std::optional<watchers>& subscribers) {
    std::array<signalfd_siginfo, 64> batch{};
    for (;;) {
        // Read several deliveries per read(2) when many are queued, but never past --stop-after:
        // what we read is consumed, and after the stop the rest must meet the default action.
        std::size_t want = batch.size();
        if (opt.stop_after != 0)
            want = std::min<std::uint64_t>(want, opt.stop_after - counts.total);
        const ssize_t n = ipc::read_some(sfd, batch.data(), want * sizeof(signalfd_siginfo));
        if (n == -1) ipc::die("read(signalfd)");
        const auto got = static_cast<std::size_t>(n) / sizeof(signalfd_siginfo);
        ipc::explain("read(signalfd) = {} deliveries", got);

        const auto now = ipc::steady::now();
        std::string lines;
        int end_signal = 0;  // SIGINT or SIGTERM among them: finish this batch, then end
        for (std::size_t i = 0; i < got; ++i) {
            const delivery d = from_siginfo(batch[i]);
            counts.add(d.signo, now);
            if (!opt.quiet) lines += describe(d) + "\n";
            if (d.signo == SIGINT || d.signo == SIGTERM) end_signal = d.signo;
        }
        ipc::print(lines);
        // The watchers speak after the dispatcher's own line.
        for (std::size_t i = 0; subscribers && i < got; ++i) {
            subscribers->send(from_siginfo(batch[i]));
        }
        if (end_signal != 0) return end_signal;
        if (opt.stop_after != 0 && counts.total >= opt.stop_after) return 0;
    }
}

// --stop-after: like signal.Stop, hand every signal back to its default action.
[[noreturn]] void hand_back(const options& opt, const sigset_t& set, ipc::unique_fd& sfd) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    for (int s : opt.signals) {
        // The disposition may have been inherited as SIG_IGN (a shell starts background jobs
        // with SIGINT and SIGQUIT ignored): set SIG_DFL explicitly.
        if (::sigaction(s, &dfl, nullptr) == -1) {
            ipc::die(fmt::format("sigaction({}, SIG_DFL)", ipc::signal_name(s)));
        }
    }
    ipc::explain("sigaction(each, SIG_DFL) = 0");
    sfd.reset();
    if (::sigprocmask(SIG_UNBLOCK, &set, nullptr) == -1) ipc::die("sigprocmask(SIG_UNBLOCK)");
    ipc::explain("sigprocmask(SIG_UNBLOCK, {{{}}}) = 0", names_of(opt.signals));
    for (;;) ::pause();  // sleeps until a signal's default action ends (or stops) the process
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    default_sigpipe();

    // Block the signals first, before anything else runs: a blocked signal stays pending until
    // we read it, and threads started later inherit the mask (the signal must be blocked in
    // every thread, or the kernel delivers it to one that is not, with its default action).
    sigset_t set;
    ::sigemptyset(&set);
    for (int s : opt.signals) ::sigaddset(&set, s);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) == -1) ipc::die("sigprocmask(SIG_BLOCK)");
    ipc::explain("sigprocmask(SIG_BLOCK, {{{}}}) = 0", names_of(opt.signals));
    ipc::unique_fd sfd{::signalfd(-1, &set, SFD_CLOEXEC)};
    if (!sfd) ipc::die("signalfd");
    ipc::explain("signalfd(-1, {{{} signals}}, SFD_CLOEXEC) = {}", opt.signals.size(), sfd.get());

    // The first line is printed only now that the signals are blocked: once a test (or a
    // student) sees it, sending is safe.
    const pid_t self = ::getpid();
    const bool usr1 =
        std::find(opt.signals.begin(), opt.signals.end(), SIGUSR1) != opt.signals.end();
    ipc::say("sigrecv: pid {} waiting for {} (try: kill -{} {})", self, names_of(opt.signals),
             ipc::signal_info_of(usr1 ? SIGUSR1 : opt.signals.front())->name, self);
    ipc::say(
        "sigrecv: SIGKILL and SIGSTOP cannot be caught: kill -KILL {} always ends it, "
        "kill -STOP {} always stops it",
        self, self);
    if (opt.block.count() > 0) hold_then_show_pending(opt.block);

    std::optional<watchers> subscribers;
    if (opt.watchers > 0) subscribers.emplace(opt.watchers, opt.quiet);
    tally counts;
    const int end_signal = receive(sfd.get(), opt, counts, subscribers);
    if (subscribers) subscribers->close();
    if (end_signal != 0) {
        ipc::say("sigrecv: {} received: exiting", ipc::signal_name(end_signal));
        ipc::print(counts.summary(opt.quiet));
        return 0;
    }
    ipc::say(
        "sigrecv: stopped after {} deliveries: default dispositions restored and signals "
        "unblocked (Go's signal.Stop); kill {} now ends it by the default action",
        counts.total, self);
    ipc::print(counts.summary(opt.quiet));
    hand_back(opt, set, sfd);
} catch (...) {
    return ipc::internal_error();
}
