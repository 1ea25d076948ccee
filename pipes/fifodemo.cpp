// fifodemo: the rules of named pipes (FIFOs), each one made to happen, one numbered line each.
// Usage: fifodemo [--records 256] [--read-size 4K] [--pause-after N] [-x]    (or: fifo demo ...)
// Demonstrates the named pipes (命名管道) of the notes' "管道" section (multiprocess-ipc.md): opens
// that block until the other end comes, O_NONBLOCK opens, EOF, EPIPE and SIGPIPE, and which writes
// stay whole when two processes write at once (PIPE_BUF), counted as pipecmp atomic counts them.
// Try: fifodemo      or: fifodemo --pause-after 2   (then look at the FIFO in its temp dir)
// See also: fifo (make, read, write a FIFO), pipecmp atomic (N writers on pipe(2) and mem_pipe)
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "demo_sandbox.hpp"
#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/proc.hpp"
#include "ipc/process.hpp"
#include "ipc/signals.hpp"
#include "tearing.hpp"

namespace {

// ---- opening, and watching a child sleep ----

std::string flag_names(int flags) {
    std::string names = (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY" : "O_RDONLY";
    return (flags & O_NONBLOCK) != 0 ? names + "|O_NONBLOCK" : names;
}

// open(2) on the demo's FIFO, narrated: the descriptor, or -1 with errno set.
int try_open(const std::string& fifo, int flags) {
    int fd = -1;
    do {
        fd = ::open(fifo.c_str(), flags | O_CLOEXEC);  // a signal may interrupt the wait: again
    } while (fd == -1 && errno == EINTR);
    const int err = errno;
    ipc::explain("open({}, {}) = {}{}", fifo, flag_names(flags), fd,
                 fd == -1 ? " " + ipc::errno_name(err) : "");
    errno = err;
    return fd;
}

ipc::unique_fd must_open(const std::string& fifo, int flags) {
    ipc::unique_fd fd(try_open(fifo, flags));
    if (!fd) ipc::die(fmt::format("open({}, {})", fifo, flag_names(flags)));
    return fd;
}

// Bytes through a pipe: how the demo's processes tell each other "I got here" and "go".
bool send_bytes(const ipc::unique_fd& fd, std::size_t n = 1) {
    const std::string bytes(n, '!');
    return ipc::write_all(fd.get(), bytes.data(), n);
}
bool get_bytes(const ipc::unique_fd& fd, std::size_t n = 1) {
    std::string bytes(n, '\0');
    return ipc::read_full(fd.get(), bytes.data(), n) == static_cast<ssize_t>(n);
}

// What /proc says a process is doing: its state letter, the system call it is in (a number,
// "running", or "" if hidden from us), and the kernel function it sleeps in.
struct proc_view {
    char state = '?';
    std::string syscall;
    std::string wchan;
};

proc_view look_at(pid_t pid) {
    proc_view v;
    const auto stat = ipc::read_proc(pid, "stat");
    if (const auto st = stat ? ipc::parse_stat(*stat) : std::nullopt) v.state = st->state;
    const std::string sc = ipc::read_proc(pid, "syscall").value_or("");
    v.syscall = sc.substr(0, sc.find_first_of(" \n"));
    v.wchan = ipc::read_proc(pid, "wchan").value_or("");
    return v;
}

// Waits until the child sleeps inside openat(2). No event tells one process that another went
// to sleep, so this looks at /proc every millisecond, for at most 10 s.
proc_view wait_asleep_in_open(pid_t pid) {
    using namespace std::chrono_literals;
    const std::string openat = std::to_string(SYS_openat);
    const auto deadline = ipc::deadline_after(10s);
    proc_view v;
    while (ipc::steady::now() < deadline) {
        v = look_at(pid);
        if (v.state == 'S' && (v.syscall == openat || v.syscall.empty())) return v;
        ipc::sleep_for(1ms);
    }
    ipc::fail("child {} never slept in open(): state {}, syscall {}", pid, v.state, v.syscall);
}

// ---- the rules ----

// Rules 1 and 2: a child opens one end and sleeps in open(); we see it asleep in /proc, open
// the other end ourselves, and the child's open() returns.
std::string open_blocks(const std::string& fifo, int child_flags, int our_flags) {
    ipc::pipe_fds ready = ipc::make_pipe();
    ipc::pipe_fds report = ipc::make_pipe();
    const pid_t child = ipc::sandbox::spawn([&] {
        if (!send_bytes(ready.write)) return 1;
        ipc::explain("open({}, {}): going to sleep until the other end opens", fifo,
                     flag_names(child_flags));
        const int fd = try_open(fifo, child_flags);
        const int result = fd == -1 ? -errno : fd;
        return ipc::write_all(report.write.get(), &result, sizeof result) ? 0 : 1;
    });
    ready.write.reset();  // so that a child that dies early gives us EOF, not a hang
    report.write.reset();
    if (!get_bytes(ready.read)) ipc::fail("the child died before its open()");
    const proc_view v = wait_asleep_in_open(child);
    ipc::explain("/proc/{}: state {}, syscall {} (SYS_openat is {}), wchan {}", child, v.state,
                 v.syscall, SYS_openat, v.wchan);
    const std::string seen = fmt::format(
        "state {}{}", v.state, v.wchan.empty() || v.wchan == "0" ? "" : ", wchan " + v.wchan);
    const ipc::unique_fd ours = must_open(fifo, our_flags);
    int result = 0;
    if (ipc::read_full(report.read.get(), &result, sizeof result) != sizeof result) {
        ipc::fail("the child did not report its open()");
    }
    if (result < 0) {
        ipc::die_en(-result,
                    fmt::format("the child's open({}, {})", fifo, flag_names(child_flags)));
    }
    (void)ipc::sandbox::wait(child);
    return fmt::format(
        "open({}) blocks until {} opens: child {} slept in open() ({}); our open({}) = {}, then "
        "the child's open returned {}",
        flag_names(child_flags), our_flags == O_WRONLY ? "a writer" : "a reader", child, seen,
        flag_names(our_flags), ours.get(), result);
}

std::string rdonly_nonblock(const std::string& fifo) {
    const ipc::unique_fd r = must_open(fifo, O_RDONLY | O_NONBLOCK);
    char byte = 0;
    const ssize_t n = ipc::read_some(r.get(), &byte, 1);
    if (n == -1) ipc::die(fmt::format("read({})", r.get()));
    ipc::explain("read({}, 1) = {}", r.get(), n);
    return fmt::format(
        "open(O_RDONLY|O_NONBLOCK) returns at once: = {} with no writer there, and read() on it "
        "= {} (EOF: there is no writer)",
        r.get(), n);
}

std::string wronly_nonblock(const std::string& fifo) {
    const ipc::unique_fd lone(try_open(fifo, O_WRONLY | O_NONBLOCK));
    if (lone) ipc::fail("rule 4: open(O_WRONLY|O_NONBLOCK) succeeded with no reader");
    const int err = errno;
    if (err != ENXIO) ipc::die(fmt::format("open({}, O_WRONLY|O_NONBLOCK)", fifo));
    const ipc::unique_fd r = must_open(fifo, O_RDONLY | O_NONBLOCK);
    const ipc::unique_fd w = must_open(fifo, O_WRONLY | O_NONBLOCK);
    return fmt::format(
        "open(O_WRONLY|O_NONBLOCK) fails with ENXIO when no reader: = -1 {} ({}); with a reader "
        "open, the same call = {}",
        ipc::errno_name(err), std::strerror(err), w.get());
}

std::string eof_after_last_writer(const std::string& fifo) {
    // O_NONBLOCK, so that "no data yet, but a writer remains" shows as EAGAIN instead of a wait.
    const ipc::unique_fd r = must_open(fifo, O_RDONLY | O_NONBLOCK);
    ipc::unique_fd w1 = must_open(fifo, O_WRONLY);  // a reader is there: no wait
    ipc::unique_fd w2 = must_open(fifo, O_WRONLY);
    if (!ipc::write_all(w1.get(), "x", 1)) ipc::die(fmt::format("write({})", w1.get()));
    w1.reset();
    std::array<char, 8> buf{};
    const ssize_t got = ipc::read_some(r.get(), buf.data(), buf.size());
    const ssize_t again = ipc::read_some(r.get(), buf.data(), buf.size());
    const int again_err = errno;
    ipc::explain("close(w1); read({}) = {}; read({}) = {} {}", r.get(), got, r.get(), again,
                 ipc::errno_name(again_err));
    if (got != 1 || again != -1 || again_err != EAGAIN) ipc::fail("rule 5: unexpected reads");
    w2.reset();
    const ssize_t last = ipc::read_some(r.get(), buf.data(), buf.size());
    if (last == -1) ipc::die(fmt::format("read({})", r.get()));
    ipc::explain("close(w2); read({}) = {}", r.get(), last);
    return fmt::format(
        "the reader sees EOF when the last writer closes: 2 writers; after the 1st closed, read() "
        "= {} (its byte), then -1 {} (a writer remains); after the 2nd closed, read() = {} (EOF)",
        got, ipc::errno_name(again_err), last);
}

// Rule 6: two writers open the FIFO while a reader is there; the reader closes; then each
// writes. One ignores SIGPIPE and sees EPIPE; the other has the default action and is killed.
// Both set it: a child that does not exec keeps our disposition (ipc::start() made it harmless).
std::string epipe_and_sigpipe(const std::string& fifo) {
    ipc::unique_fd r = must_open(fifo, O_RDONLY | O_NONBLOCK);
    ipc::pipe_fds ready = ipc::make_pipe();
    ipc::pipe_fds go = ipc::make_pipe();
    ipc::pipe_fds report = ipc::make_pipe();
    auto writer = [&](void (*disposition)(int)) {
        return [&, disposition] {
            r.reset();  // our copy of the read end: only the parent's may keep the FIFO read
            if (::signal(SIGPIPE, disposition) == SIG_ERR) return 1;
            const ipc::unique_fd w(try_open(fifo, O_WRONLY));
            if (!w || !send_bytes(ready.write)) return 1;
            ready.write.reset();  // sent: a sibling that dies unready leaves the parent EOF
            if (!get_bytes(go.read)) return 1;
            ipc::explain("write({}, 1) with SIGPIPE {}", w.get(),
                         disposition == SIG_IGN ? "ignored" : "at its default action");
            const int err = ipc::write_all(w.get(), "x", 1) ? 0 : errno;
            ipc::explain("write({}, 1) = -1 {}", w.get(), ipc::errno_name(err));
            return ipc::write_all(report.write.get(), &err, sizeof err) ? 0 : 1;
        };
    };
    const pid_t ignoring = ipc::sandbox::spawn(writer(SIG_IGN));
    const pid_t defaulting = ipc::sandbox::spawn(writer(SIG_DFL));
    // Our copies closed, and each writer closes its own once it has said "ready": a writer that
    // dies early gives us EOF, not a hang, even while the other one waits for "go".
    ready.write.reset();
    report.write.reset();
    if (!get_bytes(ready.read, 2)) ipc::fail("a writer died before open()");
    r.reset();  // the last reader closes
    ipc::explain("close(reader): the FIFO has no reader now");
    if (!send_bytes(go.write, 2)) ipc::die("write(go pipe)");
    int err = 0;
    if (ipc::read_full(report.read.get(), &err, sizeof err) != sizeof err) {
        ipc::fail("the writer that ignores SIGPIPE did not report");
    }
    const int status = ipc::sandbox::wait(defaulting);
    if (ipc::sandbox::wait(ignoring) != 0) ipc::fail("the writer that ignores SIGPIPE failed");
    return fmt::format(
        "a writer gets EPIPE and SIGPIPE after the reader closes: SIGPIPE ignored: write() = -1 "
        "{}; SIGPIPE default: child {} {}",
        err == 0 ? "(no error!)" : ipc::errno_name(err), defaulting,
        WIFSIGNALED(status)
            ? fmt::format("killed by {} (status {})", ipc::signal_name(WTERMSIG(status)),
                          128 + WTERMSIG(status))
            : fmt::format("not killed: it exited {}", WEXITSTATUS(status)));
}

// Rules 7 and 8: two writers, started together, each write race.records records with one
// write(2) per record; we read race.read_size bytes at a time and count the torn records
// (pipes/tearing.hpp). A write that does not fit in the pipe's free room copies what fits and
// waits, and the other writer can go in between: so a reader that frees room in small pieces
// lets large writes tear, while one that drains the whole pipe at each read lets them in whole.
std::string count_torn(const std::string& fifo, const ipc::race_options& race) {
    const ipc::unique_fd r = must_open(fifo, O_RDONLY | O_NONBLOCK);
    if (::fcntl(r.get(), F_SETFL, 0) == -1) ipc::die("fcntl(F_SETFL, 0)");  // reads block again
    const int capacity = ::fcntl(r.get(), F_GETPIPE_SZ);
    if (capacity == -1) ipc::die("fcntl(F_GETPIPE_SZ)");
    ipc::pipe_fds ready = ipc::make_pipe();
    ipc::pipe_fds go = ipc::make_pipe();
    auto writer = [&](char tag) {
        return [&, tag] {
            const std::string record(race.size, tag);
            const ipc::unique_fd w(try_open(fifo, O_WRONLY));
            if (!w || !send_bytes(ready.write)) return 1;
            ready.write.reset();  // sent: a sibling that dies unready leaves the parent EOF
            if (!get_bytes(go.read)) return 1;
            ipc::explain("writer {}: {} x write({}, {} bytes of '{}')", tag, race.records, w.get(),
                         race.size, tag);
            for (std::uint64_t i = 0; i < race.records; ++i) {
                if (!ipc::write_all(w.get(), record.data(), record.size())) return 1;
            }
            return 0;
        };
    };
    const pid_t a = ipc::sandbox::spawn(writer('A'));
    const pid_t b = ipc::sandbox::spawn(writer('B'));
    // Both must have opened before we read: with no writer yet, read() returns 0 at once.
    ready.write.reset();  // as in rule 6: a writer that dies early gives us EOF, not a hang
    if (!get_bytes(ready.read, 2)) ipc::fail("a writer died before open()");
    if (!send_bytes(go.write, 2)) ipc::die("write(go pipe)");
    ipc::tear_counter counter(race.writers, race.size);
    std::vector<char> buf(race.read_size);
    while (const ssize_t n = ipc::read_some(r.get(), buf.data(), buf.size())) {
        if (n == -1) ipc::die(fmt::format("read({})", r.get()));
        counter.feed({buf.data(), static_cast<std::size_t>(n)});
    }
    ipc::explain("read({}, {}) ... = 0 (EOF: both writers closed)", r.get(), race.read_size);
    if (ipc::sandbox::wait(a) != 0 || ipc::sandbox::wait(b) != 0) ipc::fail("a writer failed");
    ipc::check_every_byte(counter, race, "rule 7/8");
    return fmt::format("2 writers x {} writes of {} bytes{}, read {} at a time: {} of {} torn",
                       race.records, race.size,
                       race.size > PIPE_BUF ? fmt::format(" into a pipe of {}", capacity) : "",
                       race.read_size, counter.torn(), counter.records());
}

using rule = std::function<std::string()>;

std::vector<rule> the_rules(const std::string& fifo, const ipc::race_options& race) {
    const ipc::race_options large{race.writers, std::uint64_t{64} << 10, race.records,
                                  race.read_size};
    return {
        [=] { return open_blocks(fifo, O_RDONLY, O_WRONLY); },
        [=] { return open_blocks(fifo, O_WRONLY, O_RDONLY); },
        [=] { return rdonly_nonblock(fifo); },
        [=] { return wronly_nonblock(fifo); },
        [=] { return eof_after_last_writer(fifo); },
        [=] { return epipe_and_sigpipe(fifo); },
        [=] {
            return fmt::format("writes of at most PIPE_BUF ({}) bytes never interleave: {}",
                               PIPE_BUF, count_torn(fifo, race));
        },
        [=] {
            return fmt::format(
                "larger writes can interleave: {} (it varies from run to run; 0 is possible)",
                count_torn(fifo, large));
        },
    };
}

// The private temp dir and the FIFO in it; returns the FIFO's path.
std::string make_demo_fifo() {
    const std::string dir = ipc::sandbox::make_dir("fifo-demo");  // mkdtemp
    ipc::say("demo dir: {} (private; removed at the end, or on Ctrl-C)", dir);
    const std::string fifo = dir + "/demo.fifo";
    ipc::sandbox::adopt(fifo);
    if (::mkfifo(fifo.c_str(), 0600) == -1) ipc::die(fmt::format("mkfifo({})", fifo));
    ipc::explain("mkfifo({}, 0600) = 0", fifo);
    return fifo;
}

struct options {
    ipc::race_options race{2, PIPE_BUF, 256, 4096};  // 4096: bufio.Reader's default buffer
    int pause_after = 0;                             // 0: never
};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Make each rule of named pipes (FIFOs) happen, one numbered line each, in a private\n"
        "temp dir: opens that block until the other end comes, O_NONBLOCK opens, EOF, EPIPE\n"
        "and SIGPIPE, and PIPE_BUF atomicity with two writers, counted. Ctrl-C (or SIGTERM,\n"
        "SIGHUP) stops it, and the temp dir is removed all the same.",
        "fifodemo"};
    ipc::setup(app, "fifodemo --pause-after 2");
    app.footer(
        "The rules, in order:\n"
        "  1 open(O_RDONLY) blocks until a writer opens\n"
        "  2 open(O_WRONLY) blocks until a reader opens\n"
        "  3 open(O_RDONLY|O_NONBLOCK) returns at once\n"
        "  4 open(O_WRONLY|O_NONBLOCK) fails with ENXIO when no reader\n"
        "  5 the reader sees EOF when the last writer closes\n"
        "  6 a writer gets EPIPE and SIGPIPE after the reader closes\n"
        "  7 writes of at most PIPE_BUF bytes never interleave\n"
        "  8 larger writes can interleave\n"
        "Example:\n  fifodemo --pause-after 2     (also: fifo demo --pause-after 2)");
    options opt;
    app.add_option("--records", opt.race.records, "Writes per writer in the atomicity rules 7, 8")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    ipc::add_size_option(app, "--read-size", opt.race.read_size,
                         "How much the reader of rules 7 and 8 asks for per read(2); try 64K");
    app.add_option("--pause-after", opt.pause_after,
                   "Stop after rule N (1-8) until Ctrl-C, to look at the temp dir")
        ->check(CLI::Range(1, 8));
    ipc::parse(app, argc, argv);
    if (opt.race.read_size == 0 || opt.race.read_size > (std::uint64_t{1} << 20)) {
        ipc::usage_error("--read-size: must be 1 byte to 1M");
    }
    return opt;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    const std::string fifo = make_demo_fifo();  // mkdtemp, mkfifo
    const std::vector<rule> rules = the_rules(fifo, opt.race);
    for (std::size_t i = 0; i < rules.size(); ++i) {
        ipc::say("{}. {}", i + 1, rules[i]());  // open, read, write, close, fork, waitpid
        if (static_cast<int>(i) + 1 == opt.pause_after) {
            ipc::say(
                "paused after rule {}: look at {} (ls -l shows the FIFO with type p); Ctrl-C ends "
                "the demo and removes it",
                opt.pause_after, ipc::sandbox::dir());
            for (;;) ::pause();  // until a signal, whose handler cleans up and ends us
        }
    }
    ipc::sandbox::clean_up();  // unlink, rmdir
    ipc::say("removed {}", ipc::sandbox::dir());
    return 0;
} catch (...) {
    return ipc::internal_error();
}
