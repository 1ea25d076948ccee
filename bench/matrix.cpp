// ipcbench matrix: the same ping-pong between two processes over every mechanism ipckit teaches.
// The client (this process) sends --size bytes, the echo side (a forked child) sends the same
// bytes back, the client checks them: --count round trips after an untimed warm-up. Per row:
// latency p50/p99/max, round trips/s, each side's CPU time per round trip, and MB/s one way
// for the byte streams. Ends with a verdict, from the figures, on "shared memory is the
// fastest IPC method". The mechanisms: matrix_kernel.cpp, matrix_shm.cpp; the report:
// matrix_report.cpp; how a run ends early (Ctrl-C, the echo side's death): matrix_stop.cpp.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ipc/child.hpp"
#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/process.hpp"
#include "matrix.hpp"

namespace ipcbench {
namespace matrix {
namespace {

struct matrix_options {
    std::uint64_t size = 64;
    std::uint64_t count = 100000;
    std::string cpu = "none";  // same, split or none
    std::string only;          // mechanism names, comma-separated; empty: all
    bool json = false;
};

// ---- The messages ----

// Round trip `seq`'s message: seq in its first 8 bytes (fewer when --size is smaller) and a
// byte made from it at the end; the bytes between keep the pattern they were filled with.
void stamp(std::span<std::byte> msg, std::uint64_t seq) {
    std::memcpy(msg.data(), &seq, std::min<std::size_t>(8, msg.size()));
    if (msg.size() > 8) msg.back() = static_cast<std::byte>(seq ^ 0xA5);
}

bool same_stamp(std::span<const std::byte> a, std::span<const std::byte> b) {
    return std::memcmp(a.data(), b.data(), std::min<std::size_t>(8, a.size())) == 0 &&
           a.back() == b.back();
}

std::vector<std::byte> filled(std::uint64_t size) {
    std::vector<std::byte> msg(size);
    for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<std::byte>(i * 131 + 7);
    return msg;
}

// ---- The echo side (the child) ----

struct plan {
    const matrix_options& opt;
    cpu_plan cpus;
    std::uint64_t warmup = 0;
};

double own_cpu() noexcept {
    rusage ru{};
    if (::getrusage(RUSAGE_SELF, &ru) == -1) ipc::child::die("getrusage", 1);
    const auto secs = [](const timeval& tv) {
        return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    };
    return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// Answers every warm-up message with the same bytes, then the timed ones too (one_way: takes
// them all, checking their order, and answers only the last); then reports the CPU time it
// spent while timed.
void serve(link& l, const plan& p, bool one_way, int report_fd) {
    std::vector<std::byte> msg(p.opt.size);
    for (std::uint64_t i = 0; i < p.warmup; ++i) {
        l.receive(msg);
        l.send(msg);
    }
    const double start = own_cpu();
    for (std::uint64_t i = 0; i < p.opt.count; ++i) {
        l.receive(msg);
        if (!one_way) {
            l.send(msg);
            continue;
        }
        std::array<std::byte, 8> want{};
        stamp(want, p.warmup + i);
        if (std::memcmp(want.data(), msg.data(), std::min<std::size_t>(8, msg.size())) != 0) {
            errno = EPROTO;  // a message lost, doubled or out of order
            ipc::child::die("stream: message out of order", 1);
        }
    }
    if (one_way) l.send(msg);
    const double cpu = own_cpu() - start;
    if (!ipc::write_all(report_fd, &cpu, sizeof cpu)) ipc::child::die("write(report)", 1);
}

// The child's whole life: it ends in _exit, whatever happens.
[[noreturn]] void echo_side(link& l, const plan& p, pid_t parent, bool one_way,
                            int report_fd) noexcept {
    try {
        // Ctrl-C reaches both processes: the echo side just ends (the client cleans up).
        for (const int sig : {SIGINT, SIGTERM, SIGALRM, SIGCHLD}) (void)::signal(sig, SIG_DFL);
        // Killed when the client dies, whatever way, rather than left waiting (or spinning).
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) ipc::child::die("prctl", 1);
        if (::getppid() != parent) ::_exit(1);  // the client died before prctl
        if (!pin(p.cpus.reader, p.cpus)) ipc::child::die("sched_setaffinity", 1);
        l.open(side::server, parent);
        serve(l, p, one_way, report_fd);
        ::_exit(0);
    } catch (...) {
        ::_exit(1);
    }
}

// ---- The client ----

// Forks the echo side over a fresh `m`, runs client(link) here, and returns the echo side's
// CPU seconds over the timed part. The child is always reaped, also when the run is stopped.
template <typename Client>
double with_echo_side(const mechanism& m, const plan& p, bool one_way, Client client) {
    const std::unique_ptr<link> l = m.make(p.opt.size);
    auto report = ipc::make_pipe();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == -1) ipc::die("fork");
    if (pid == 0) {
        report.read.reset();
        echo_side(*l, p, parent, one_way, report.write.get());
    }
    watch_echo_side(pid);
    ipc::explain("fork() = {} (the echo side, {})", pid, m.name);
    report.write.reset();  // the child's copy alone: its end of file if it dies
    l->open(side::client, pid);
    const auto reap = [pid] {
        forget_echo_side();
        return ipc::wait_child(pid);
    };
    try {
        client(*l);
    } catch (const interrupted&) {
        (void)::kill(pid, SIGKILL);  // it may be waiting for our next message
        (void)reap();
        throw;
    } catch (const echo_died&) {
        const int status = reap();
        ipc::fail("{}: the echo side {} in the middle of the run", m.name,
                  ipc::describe_status(status));
    }
    double cpu = 0;
    const ssize_t n = ipc::read_full(report.read.get(), &cpu, sizeof cpu);
    if (n == -1) ipc::die("read(report)");
    const int status = reap();
    if (stop_requested()) throw interrupted{};  // the handler killed it: not its failure
    if (status != 0 || n != sizeof cpu) {
        ipc::fail("{}: the echo side {}", m.name, ipc::describe_status(status));
    }
    return cpu;
}

void exchange(link& l, std::span<std::byte> out, std::span<std::byte> in, std::uint64_t seq,
              const mechanism& m) {
    if (stop_requested()) throw interrupted{};
    stamp(out, seq);
    l.send(out);
    l.receive(in);
    if (!same_stamp(in, out)) {
        ipc::fail("{}: round trip {}: the answer differs from the message", m.name, seq);
    }
}

// The timed ping-pong: one latency sample per round trip, and this side's CPU time.
void ping_pong(link& l, const plan& p, const mechanism& m, row& r, progress& bar) {
    std::vector<std::byte> out = filled(p.opt.size);
    std::vector<std::byte> in(p.opt.size);
    for (std::uint64_t i = 0; i < p.warmup; ++i) exchange(l, out, in, i, m);
    const cpu_seconds cpu = process_cpu();
    const auto start = ipc::steady::now();
    for (std::uint64_t i = 0; i < p.opt.count; ++i) {
        const auto sent = ipc::steady::now();
        exchange(l, out, in, p.warmup + i, m);
        r.latency.record(ipc::steady::now() - sent);
        if (bar.on() && i % 1024 == 0) {
            bar.show(fmt::format("matrix: {}: {} of {} round trips", m.name, i, p.opt.count));
        }
    }
    r.seconds = std::chrono::duration<double>(ipc::steady::now() - start).count();
    r.client_cpu = process_cpu() - cpu;
}

// One way: after the warm-up round trips (the echo side is running and ready), count messages
// back to back, then the answer to the last. MB/s: the counted bytes over that time.
double one_way(link& l, const plan& p, const mechanism& m) {
    std::vector<std::byte> out = filled(p.opt.size);
    std::vector<std::byte> in(p.opt.size);
    for (std::uint64_t i = 0; i < p.warmup; ++i) exchange(l, out, in, i, m);
    const auto start = ipc::steady::now();
    for (std::uint64_t i = 0; i < p.opt.count; ++i) {
        if (stop_requested()) throw interrupted{};
        stamp(out, p.warmup + i);
        l.send(out);
    }
    l.receive(in);
    if (!same_stamp(in, out)) ipc::fail("{}: the stream's last message came back changed", m.name);
    const double seconds = std::chrono::duration<double>(ipc::steady::now() - start).count();
    return static_cast<double>(p.opt.size * p.opt.count) / 1e6 / seconds;
}

row measure(const mechanism& m, const plan& p, progress& bar) {
    row r;
    r.mech = &m;
    if (m.fits != nullptr) r.na = m.fits(p.opt.size);
    if (r.na) return r;
    r.server_cpu = with_echo_side(m, p, false, [&](link& l) { ping_pong(l, p, m, r, bar); });
    if (m.stream) {
        bar.show(fmt::format("matrix: {}: one way", m.name));
        (void)with_echo_side(m, p, true, [&](link& l) { r.stream_mb_s = one_way(l, p, m); });
    }
    return r;
}

// ---- The command line ----

std::vector<mechanism> chosen(const std::string& only) {
    std::vector<mechanism> all = kernel_mechanisms();
    for (const mechanism& m : shm_mechanisms()) all.push_back(m);
    if (only.empty()) return all;
    std::vector<mechanism> picked;
    std::string names;
    for (const mechanism& m : all) names += fmt::format("{}{}", names.empty() ? "" : ", ", m.name);
    for (std::size_t at = 0; at <= only.size();) {
        const std::size_t end = std::min(only.find(',', at), only.size());
        const std::string name = only.substr(at, end - at);
        const auto it =
            std::find_if(all.begin(), all.end(), [&](auto& m) { return m.name == name; });
        if (it == all.end())
            ipc::usage_error(fmt::format("--only: no mechanism '{}' ({})", name, names));
        picked.push_back(*it);
        at = end + 1;
    }
    return picked;
}

// --cpu: same (both on the first CPU this process may use), split (the first two), none.
// split on a single CPU is not refused: the report says it was not possible (n/a).
run_info placement(const matrix_options& opt, cpu_plan& cpus) {
    run_info info{opt.size, opt.count, 0, opt.cpu, ""};
    cpu_set_t allowed;
    if (::sched_getaffinity(0, sizeof allowed, &allowed) == -1) ipc::die("sched_getaffinity");
    std::string choice = opt.cpu == "none" ? "any" : opt.cpu;
    if (choice == "split" && CPU_COUNT(&allowed) < 2) {
        info.cpu_note =
            "--cpu split: n/a, this process may use only one CPU; the scheduler placed both";
        info.cpu = "none";
        choice = "any";
    }
    cpus = plan_cpus(choice);
    if (cpus.writer >= 0)
        info.cpu = fmt::format("{} (client on CPU {}, echo side on CPU {})", opt.cpu, cpus.writer,
                               cpus.reader);
    return info;
}

int run_matrix(const matrix_options& opt) {
    if (opt.size == 0 || opt.size > (std::uint64_t{16} << 20))
        ipc::usage_error("--size: 1 byte to 16M");
    if (opt.count == 0 || opt.count > 1000000000) ipc::usage_error("--count: 1 to 1000000000");
    const std::vector<mechanism> mechs = chosen(opt.only);
    plan p{opt, {}, std::max<std::uint64_t>(opt.count / 10, 100)};
    run_info info = placement(opt, p.cpus);
    info.warmup = p.warmup;
    catch_stop_signals();
    pin_or_die(p.cpus.writer, p.cpus);
    std::vector<row> rows;
    try {
        progress bar;
        for (const mechanism& m : mechs) rows.push_back(measure(m, p, bar));
        if (stop_requested()) throw interrupted{};  // after the last mechanism's own look
    } catch (const interrupted&) {
        const int sig = stop_signal_number();
        ipc::complain("matrix: stopped by {} after {} of {} mechanisms; nothing left behind",
                      sig == SIGINT ? "SIGINT" : "SIGTERM", rows.size(), mechs.size());
        (void)::signal(sig, SIG_DFL);  // end the way a shell expects: killed by that signal
        (void)::raise(sig);
        return 128 + sig;
    }
    pin_or_die(-1, p.cpus);
    if (opt.json) {
        print_json(info, rows);
    } else {
        print_table(info, rows);
    }
    return 0;
}

}  // namespace

std::string unique_name(std::string_view what) {
    const auto now = ipc::steady::now().time_since_epoch();  // with O_EXCL: never another's
    return fmt::format("/ipcbench-{}-{}-{}", what, ::getpid(),
                       std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
}

}  // namespace matrix

mode add_matrix_mode(CLI::App& app) {
    auto opt = std::make_shared<matrix::matrix_options>();
    CLI::App* cmd = app.add_subcommand(
        "matrix",
        "The same ping-pong between two processes over every mechanism: pipe, socketpair, unix "
        "seqpacket and datagram, TCP and UDP over loopback, FIFO, POSIX message queue, shared "
        "memory with a futex, a spin or a semaphore, eventfd, signals. The payload travels "
        "both ways; its stamp (a sequence number in the first 8 bytes, and the last byte) is "
        "checked on each return; a mechanism that cannot carry --size says n/a and its limit");
    ipc::add_size_option(*cmd, "--size", opt->size, "Bytes in each message, both ways")
        ->capture_default_str();
    cmd->add_option("--count", opt->count,
                    "Timed round trips per mechanism (after a warm-up "
                    "of count/10, at least 100)")
        ->capture_default_str();
    cmd->add_option("--cpu", opt->cpu,
                    "Where the two processes run: same (one CPU), split (two CPUs), none (the "
                    "scheduler decides); set with sched_setaffinity")
        ->check(CLI::IsMember({"same", "split", "none"}))
        ->capture_default_str();
    cmd->add_option("--only", opt->only,
                    "Only these mechanisms, comma-separated (e.g. pipe,shm-futex)");
    cmd->add_flag("--json", opt->json, "Print one JSON object instead of the table");
    cmd->footer("Example:\n  ipcbench matrix --size 8 --count 20000 --cpu split");
    return {cmd, [opt] { return matrix::run_matrix(*opt); }};
}

}  // namespace ipcbench
