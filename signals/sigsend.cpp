// sigsend: send a signal to processes, by pid or by name, safely, and say what happened.
// Usage: sigsend SIG PID... | sigsend SIG --name NAME [--full] | sigsend -0 PID...
//        [--count N] [--value V] [--group] [--force] [-x]   (a negative PID after --)
// Demonstrates "发送信号" (signals-and-graceful-restart.md: kill(2), `kill -0`) and "信号" in
// multiprocess-ipc.md: sigqueue(3) with a value, real-time signals that queue up to
// RLIMIT_SIGPENDING, and finding a process by name from /proc instead of `ps aux | grep`.
// Try: sigsend USR1 --name sigrecv;  sigsend RTMIN PID --count 5 --value 1
// See also: sigrecv (shows each delivery: sender, how, value), siglist
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/output.hpp"
#include "ipc/proc.hpp"
#include "ipc/signals.hpp"
#include "ipc/units.hpp"
#include "sigsend_args.hpp"

extern "C" {  // glibc 2.36's <sys/pidfd.h> lacks its own extern "C" (fixed in 2.37)
#include <sys/pidfd.h>
}

namespace {

using namespace std::chrono_literals;

// One process (pid > 0) or process group (pid <= 0, kill(2)'s convention) to signal.
struct target {
    pid_t pid = 0;
    std::string comm;      // the process's name when we looked, for the report
    ipc::unique_fd pidfd;  // set for --name matches: the very process we matched, even if it
                           // exits and its pid is reused before we send
};

// The process's name, as the kernel keeps it (up to 15 bytes); "" once it is gone.
std::string comm_of(pid_t pid) {
    std::string comm = ipc::read_proc(pid, "comm").value_or("");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    return comm;
}

// Does this process match NAME? Its name (comm, which the kernel cuts to 15 bytes, so only for
// a NAME that fits) or its argv[0]'s file name must equal NAME; with --full, NAME may appear
// anywhere in the command line.
bool matches(pid_t pid, const std::string& name, bool full) {
    std::string cmdline = ipc::read_proc(pid, "cmdline").value_or("");
    if (cmdline.empty()) return false;  // a kernel thread, a zombie, or gone
    const std::string argv0 = cmdline.substr(0, cmdline.find('\0'));
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    return (name.size() <= 15 && comm_of(pid) == name) ||
           argv0.substr(argv0.rfind('/') + 1) == name ||
           (full && cmdline.find(name) != std::string::npos);
}

// The pid a /proc entry names, or nullopt for the entries that are not a process ("self"...).

// Holds process pid by a pidfd, opened *before* the match is confirmed again: if the process
// exits and its pid is reused, we signal nobody rather than the newcomer. nullopt if it is gone.
std::optional<target> hold(pid_t pid, const std::string& name, bool full) {
    ipc::unique_fd pidfd{::pidfd_open(pid, 0)};
    if (!pidfd) {
        if (errno == ESRCH) return std::nullopt;  // it exited meanwhile
        ipc::die(fmt::format("pidfd_open({})", pid));
    }
    ipc::explain("pidfd_open({}) = {}", pid, pidfd.get());
    if (!matches(pid, name, full)) return std::nullopt;  // the pid now belongs to someone else
    return target{pid, comm_of(pid), std::move(pidfd)};
}

// The processes that match NAME, read from /proc, each held by a pidfd.
std::vector<target> find_by_name(const std::string& name, bool full, bool force) {
    std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
    if (!proc) ipc::die("opendir(/proc)");
    std::vector<target> found;
    const pid_t self = ::getpid();
    const pid_t parent = ::getppid();  // the shell that runs us has NAME in its command line
    for (;;) {
        errno = 0;  // readdir returns nullptr both at the end and on an error
        const dirent* entry = ::readdir(proc.get());
        if (entry == nullptr && errno != 0) ipc::die("readdir(/proc)");
        if (entry == nullptr) return found;
        const auto pid = ipc::parse_decimal<pid_t>(entry->d_name);
        if (!pid || *pid == self || *pid == parent || !matches(*pid, name, full)) continue;
        if (*pid == 1 && !force) {
            ipc::complain("skipping pid 1 ({}): init needs --force", comm_of(1));
            continue;
        }
        if (auto t = hold(*pid, name, full)) found.push_back(std::move(*t));
    }
}

// The process group kill(2) signals for a pid < 0: -pid, widened, since -INT_MIN does not fit a
// pid_t (kill(INT_MIN, sig) fails with ESRCH).
long long group_of(pid_t pid) { return -static_cast<long long>(pid); }

// A pid from the command line, with kill(2)'s special values checked (sigsend_args.cpp): exits
// 2 on a bad one.
target parse_target(const std::string& text, bool group, bool force) {
    using sigsend_args::pid_verdict;
    const sigsend_args::pid_arg arg = sigsend_args::parse_pid(text, group, force);
    const pid_t pid = arg.pid;
    switch (arg.verdict) {
        case pid_verdict::ok: break;
        case pid_verdict::not_a_pid: ipc::usage_error(fmt::format("'{}' is not a pid", text));
        case pid_verdict::every_process:
            ipc::usage_error(
                "pid -1 means every process you may signal (for root: all but init and sigsend "
                "itself); sigsend refuses it. Name the processes, or a process group with --group");
        case pid_verdict::needs_group:
            ipc::usage_error(fmt::format(
                "pid {} is a process group ({}); add --group if you mean every process in it", pid,
                pid == 0 ? "sigsend's own, which includes the shell that runs it"
                         : fmt::format("the group whose leader is {}", group_of(pid))));
        case pid_verdict::needs_force:
            ipc::usage_error(fmt::format(
                "pid 1 is init (here: {}): a signal to it can shut the system or the container "
                "down. Add --force if you mean it",
                comm_of(1)));
    }
    return {pid, pid > 0 ? comm_of(pid) : "", ipc::unique_fd{}};
}

std::string who(const target& t) {
    if (t.pid == 0) return "process group 0 (sigsend's own)";
    if (t.pid < 0) return fmt::format("process group {}", group_of(t.pid));
    if (t.comm.empty()) return std::to_string(t.pid);
    return fmt::format("{} ({})", t.pid, t.comm);
}

// How often a full queue made us wait, and for how long in all, for the final report.
struct queue_waits {
    std::uint64_t times = 0;
    std::chrono::nanoseconds waited{0};
};

// The call send_once makes, as -x and the error messages name it.
std::string call_text(const target& t, int sig, bool queue, int value) {
    const std::string signal = sig == 0 ? "0" : ipc::signal_name(sig);
    if (t.pidfd) {
        return fmt::format("pidfd_send_signal({} (pid {}), {}{})", t.pidfd.get(), t.pid, signal,
                           queue ? fmt::format(", value {}", value) : "");
    }
    if (queue) return fmt::format("sigqueue({}, {}, {})", t.pid, signal, value);
    return fmt::format("kill({}, {})", t.pid, signal);
}

// Sends one signal: kill(2), or sigqueue(3) with a value (through the pidfd when we hold one).
// Returns 0 or the errno.
int send_once(const target& t, int sig, bool queue, int value) {
    int rc = 0;
    if (t.pidfd && queue) {
        siginfo_t info{};  // what sigqueue(3) fills in for us
        info.si_signo = sig;
        info.si_code = SI_QUEUE;
        info.si_pid = ::getpid();
        info.si_uid = ::getuid();
        info.si_value.sival_int = value;
        rc = ::pidfd_send_signal(t.pidfd.get(), sig, &info, 0);
    } else if (t.pidfd) {
        rc = ::pidfd_send_signal(t.pidfd.get(), sig, nullptr, 0);  // like kill(2): SI_USER
    } else if (queue) {
        rc = ::sigqueue(t.pid, sig, sigval{.sival_int = value});
    } else {
        rc = ::kill(t.pid, sig);
    }
    const int err = rc == -1 ? errno : 0;
    if (ipc::explaining()) {
        ipc::explain("{} = {}", call_text(t, sig, queue, value),
                     err == 0 ? "0" : "-1 " + ipc::errno_name(err));
    }
    return err;
}

// Says why a send failed, with its own message for the two errors a user meets.
void report_failure(const target& t, int sig, bool queue, int value, int err) {
    std::string why;
    if (err == ESRCH) {
        why = t.pid > 0 ? fmt::format("there is no process {} (it may have exited)", t.pid)
                        : fmt::format("there is no process group {}", group_of(t.pid));
    } else if (err == EPERM) {
        struct stat st {};
        const bool known = t.pid > 0 && ::stat(fmt::format("/proc/{}", t.pid).c_str(), &st) == 0;
        why = fmt::format("{} exists but belongs to {}; only its owner or root may signal it",
                          who(t), known ? fmt::format("uid {}", st.st_uid) : "another user");
    }
    ipc::complain(ipc::error_text(err, call_text(t, sig, queue, value)) +
                  (why.empty() ? "" : ": " + why));
}

// Sends one signal, and while the receiver's queue of real-time signals is full (EAGAIN:
// RLIMIT_SIGPENDING) waits for it to drain and retries (50us, doubling to 10ms), so that no
// signal is lost; gives up after 10 s without progress. Returns 0 or the errno.
int send_patiently(const target& t, int sig, bool queue, int value, queue_waits& waits) {
    std::chrono::nanoseconds pause = 50us;
    std::chrono::nanoseconds stuck{0};
    int err = 0;
    while ((err = send_once(t, sig, queue, value)) == EAGAIN && stuck < 10s) {
        if (waits.times++ == 0) {
            ipc::complain(
                "{}'s signal queue is full (EAGAIN: RLIMIT_SIGPENDING, ulimit -i); waiting for it "
                "to drain and retrying",
                who(t));
        }
        const auto before = ipc::steady::now();
        ipc::sleep_for(pause);  // clock_nanosleep, EINTR-safe
        const auto slept = ipc::steady::now() - before;
        waits.waited += slept;
        stuck += slept;
        pause = std::min<std::chrono::nanoseconds>(pause * 2, 10ms);
    }
    return err;
}

// What was sent, on stdout: "sent SIGUSR1 to 1234 (sigrecv) 3 times with sigqueue values 1..3".
void report_sent(const target& t, int sig, bool queue, int first_value, std::uint64_t count) {
    if (sig == 0) return ipc::say("{} exists and may be signalled", who(t));
    std::string line = fmt::format("sent {} to {}", ipc::signal_name(sig), who(t));
    if (count > 1) line += fmt::format(" {} times", count);
    if (queue && count == 1) line += fmt::format(" with sigqueue value {}", first_value);
    if (queue && count > 1) {
        line += fmt::format(" with sigqueue values {}..{}", first_value,
                            first_value + static_cast<int>(count - 1));
    }
    ipc::say("{}", line);
}

// Sends `count` signals to one target, the k-th with value first_value+k. Returns true if
// every signal was sent.
bool send_all(const target& t, int sig, bool queue, int first_value, std::uint64_t count) {
    queue_waits waits;
    for (std::uint64_t k = 0; k < count; ++k) {
        const int value = first_value + static_cast<int>(k);
        const int err = send_patiently(t, sig, queue, value, waits);
        if (err == EAGAIN) {
            ipc::complain("gave up: {}'s queue stayed full for 10s; sent {} of {}", who(t), k,
                          count);
            return false;
        }
        if (err != 0) {
            report_failure(t, sig, queue, value, err);
            if (k > 0) ipc::complain("sent {} of {} before that", k, count);
            return false;
        }
    }
    report_sent(t, sig, queue, first_value, count);
    if (waits.times > 0) {
        ipc::complain("the queue was full {} times; waited {} in all and retried: none lost",
                      waits.times, ipc::format_duration(waits.waited));
    }
    return true;
}

struct options {
    int sig = 0;                    // 0: -0, only check
    std::vector<std::string> pids;  // as given: checked by parse_target
    std::string name;               // --name: find the targets in /proc
    bool full = false;
    std::uint64_t count = 1;
    std::optional<int> value;  // --value: sigqueue(3) with it
    bool group = false;        // pid 0 and -PGID allowed
    bool force = false;        // pid 1 allowed
};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Send a signal to processes and report each one sent. SIG is TERM, SIGTERM, term, 15 or "
        "RTMIN+3. Real-time signals (and any signal with --value) go by sigqueue(3), which "
        "carries a value and fails with EAGAIN instead of silently merging when the receiver's "
        "queue is full; sigsend then waits and retries. --name finds processes the way "
        "`ps aux | grep NAME | grep -v grep | awk '{print $2}'` tries to, but right: it reads "
        "/proc, compares the process name (or argv[0]) exactly instead of any text on the line, "
        "never matches itself or its parent shell, and holds each match by a pidfd so a "
        "recycled pid is never hit. Safety: pid 0 and -PGID need --group, -1 (every process) "
        "is refused, pid 1 needs --force. Exit 1 if any target failed.",
        "sigsend"};
    ipc::setup(app, "sigsend TERM 1234    sigsend USR1 --name sigrecv    sigsend -0 1234");
    options opt;
    bool check_only = false;
    app.add_option("args", opt.pids,
                   "SIG then PID...; with -0 only PIDs. Put -- before a negative PID (a process "
                   "group), as with kill: sigsend TERM --group -- -1234")
        ->type_name("SIG PID");
    app.add_flag("-0,--check", check_only,
                 "Send no signal, only check (kill(pid, 0)): does it exist, may we signal it?");
    app.add_option("-n,--name", opt.name,
                   "Signal every process whose name (comm) or argv[0] is NAME, found in /proc")
        ->type_name("NAME");
    app.add_flag("-f,--full", opt.full,
                 "With --name: match NAME anywhere in the full command line");
    app.add_option("-c,--count", opt.count,
                   "Send the signal N times (the k-th carries value V+k-1)")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}))
        ->type_name("N");
    app.add_option("--value", opt.value, "Send with sigqueue(3) carrying this int value")
        ->type_name("V");
    app.add_flag("--group", opt.group, "Allow pid 0 (our own group) and -PGID (a process group)");
    app.add_flag("--force", opt.force, "Allow pid 1 (init)");
    ipc::parse(app, argc, argv);

    if (!check_only) {
        if (opt.pids.empty()) ipc::usage_error("which signal? e.g. sigsend TERM 1234 (or -0 PID)");
        const auto parsed = ipc::parse_signal(opt.pids.front(), /*allow_null=*/true);
        if (!parsed) {
            ipc::usage_error(fmt::format("'{}' is not a signal name or number (siglist lists them)",
                                         opt.pids.front()));
        }
        opt.sig = *parsed;
        opt.pids.erase(opt.pids.begin());
    }
    if (opt.sig == 0 && (opt.value || opt.count != 1)) {
        ipc::usage_error("-0 (signal 0) sends nothing: --count and --value do not apply");
    }
    if (opt.value && !sigsend_args::values_fit(*opt.value, opt.count)) {
        ipc::usage_error(fmt::format("--value {} --count {} would go past the largest int ({})",
                                     *opt.value, opt.count, INT_MAX));
    }
    if (opt.pids.empty() && opt.name.empty())
        ipc::usage_error("no PID and no --name: whom to signal?");
    if (opt.full && opt.name.empty()) ipc::usage_error("--full goes with --name");
    return opt;
}

// Every target, checked before anything is sent: a usage error must not half-happen. Exits 1
// if --name matches nothing.
std::vector<target> choose_targets(const options& opt) {
    std::vector<target> targets;
    for (const auto& pid : opt.pids) {
        targets.push_back(parse_target(pid, opt.group, opt.force));
        if (targets.back().pid <= 0 && opt.value) {
            ipc::usage_error("--value needs sigqueue(3), which sends to one process, not a group");
        }
    }
    if (opt.name.empty()) return targets;
    auto found = find_by_name(opt.name, opt.full, opt.force);
    if (found.empty()) {
        ipc::fail("no process matches '{}' (never sigsend itself nor its parent)", opt.name);
    }
    for (auto& t : found) targets.push_back(std::move(t));
    return targets;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    const std::vector<target> targets = choose_targets(opt);

    // kill(2) of a real-time signal whose queue is full still succeeds, but the signal merges
    // with one already pending and its data is lost without a word: use sigqueue for them.
    const bool queue =
        opt.value.has_value() || (opt.sig >= ipc::rt_min() && opt.sig <= ipc::rt_max());
    bool all_ok = true;
    for (const auto& t : targets) {
        const bool use_queue = queue && t.pid > 0;  // a group can only get kill(2)
        if (!send_all(t, opt.sig, use_queue, opt.value.value_or(0), opt.count)) all_ok = false;
    }
    return all_ok ? 0 : ipc::exit_failure;
} catch (...) {
    return ipc::internal_error();
}
