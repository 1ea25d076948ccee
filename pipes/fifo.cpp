// fifo: named pipes: make one, read it, write it, and watch the kernel's rules for them happen.
// Usage: fifo make PATH [--mode 600] | fifo read PATH | fifo write PATH [TEXT...] | fifo demo
// Demonstrates the notes' "管道" section (multiprocess-ipc.md), its named pipes (命名管道):
// mkfifo, opens that block until the other end is there, EOF, EPIPE and SIGPIPE, and which
// writes are atomic when several processes write at once.
// Try: fifo demo        or: fifo make p; cat p & fifo write p hello
// See also: mkfifo(1), cmdout (an anonymous pipe), pipecmp atomic (tearing, in more detail)
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/process.hpp"
#include "ipc/signals.hpp"

namespace {

constexpr std::size_t copy_buffer = std::size_t{64} << 10;

// ---- make, read, write: the FIFO as a student uses it beside mkfifo, cat and echo ----

std::string flag_names(int flags) {
    std::string names = (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY" : "O_RDONLY";
    return (flags & O_NONBLOCK) != 0 ? names + "|O_NONBLOCK" : names;
}

[[noreturn]] void not_a_fifo(const std::string& path) {
    ipc::fail(fmt::format("{}: not a FIFO", path));
}

int make(const std::string& path, mode_t mode) {
    if (::mkfifo(path.c_str(), mode) == -1) {
        const int err = errno;
        struct stat st {};
        if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && !S_ISFIFO(st.st_mode)) {
            not_a_fifo(path);
        }
        ipc::die_en(err, fmt::format("mkfifo({}, {:04o})", path, mode));
    }
    ipc::explain("mkfifo({}, {:04o}) = 0", path, mode);
    struct stat st {};
    if (::stat(path.c_str(), &st) == -1) ipc::die(fmt::format("stat({})", path));
    const mode_t got = st.st_mode & 07777;
    fmt::print("{}: FIFO made, mode {:04o} (asked for {:04o}; the umask took away {:04o})\n", path,
               got, mode, mode & ~got);
    return 0;
}

// Opens an existing FIFO. stat() first, so that a file that is not a FIFO is never opened
// (a write-open would not change a regular file, but a device could mind); fstat() after, in
// case the path was replaced in between. A blocking open waits here for the other end.
ipc::unique_fd open_fifo(const std::string& path, int flags) {
    const std::string flag_name = flag_names(flags);
    struct stat st {};
    if (::stat(path.c_str(), &st) == -1) ipc::die(fmt::format("stat({})", path));
    if (!S_ISFIFO(st.st_mode)) not_a_fifo(path);
    ipc::explain("open({}, {}): waits until the other end is opened", path, flag_name);
    int fd = -1;
    do {
        fd = ::open(path.c_str(), flags | O_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    if (fd == -1) ipc::die(fmt::format("open({}, {})", path, flag_name));
    ipc::unique_fd owned(fd);
    ipc::explain("open({}, {}) = {}", path, flag_name, fd);
    if (::fstat(fd, &st) == -1) ipc::die(fmt::format("fstat({})", fd));
    if (!S_ISFIFO(st.st_mode)) not_a_fifo(path);
    return owned;
}

// Copies from one descriptor to another until EOF; the names are for the messages.
void copy(int from, int to, std::string_view from_name, std::string_view to_name) {
    std::vector<char> buf(copy_buffer);
    for (;;) {
        const ssize_t n = ipc::read_some(from, buf.data(), buf.size());
        if (n == -1) ipc::die(fmt::format("read({})", from_name));
        ipc::explain("read({}) = {}", from_name, n);
        if (n == 0) return;
        if (!ipc::write_all(to, buf.data(), static_cast<std::size_t>(n))) {
            ipc::die(fmt::format("write({})", to_name));
        }
    }
}

int read_fifo(const std::string& path) {
    const ipc::unique_fd fd = open_fifo(path, O_RDONLY);
    copy(fd.get(), STDOUT_FILENO, path, "stdout");  // EOF once the last writer has closed
    return 0;
}

int write_fifo(const std::string& path, const std::vector<std::string>& text) {
    // A reader that goes away should give us EPIPE to report, not a silent death by SIGPIPE.
    if (::signal(SIGPIPE, SIG_IGN) == SIG_ERR) ipc::die("signal(SIGPIPE, SIG_IGN)");
    const ipc::unique_fd fd = open_fifo(path, O_WRONLY);
    if (text.empty()) {
        copy(STDIN_FILENO, fd.get(), "stdin", path);
        return 0;
    }
    const std::string line = fmt::format("{}\n", fmt::join(text, " "));
    if (!ipc::write_all(fd.get(), line.data(), line.size())) {
        ipc::die(fmt::format("write({})", path));
    }
    ipc::explain("write({}, {} bytes): {}", fd.get(), line.size(),
                 line.size() <= PIPE_BUF ? "one atomic write (<= PIPE_BUF)" : "may be split");
    return 0;
}

// ---- demo: the rules, each one made to happen ----

void say(const std::string& line) {
    fmt::print("{}\n", line);
    // One line at a time, so that a test or a pager sees progress.
    if (std::fflush(stdout) == EOF) ipc::die("write(stdout)");
}

// A process of the demo: forked, runs fn, and _exit()s with fn's result (1 if it throws).
// If the demo has not waited for it, the destructor kills and reaps it.
class demo_child {
  public:
    explicit demo_child(const std::function<int()>& fn) {
        (void)std::fflush(stdout);  // else the child inherits unwritten lines
        pid_ = ::fork();
        if (pid_ == -1) ipc::die("fork");
        if (pid_ == 0) {
            int rc = 1;
            try {
                rc = fn();
            } catch (...) {}
            ::_exit(rc);
        }
        ipc::explain("fork() = {}", pid_);
    }
    demo_child(const demo_child&) = delete;
    demo_child& operator=(const demo_child&) = delete;
    ~demo_child() {
        if (pid_ > 0) {
            (void)::kill(pid_, SIGKILL);
            (void)wait();
        }
    }
    [[nodiscard]] pid_t pid() const { return pid_; }

    // waitpid(); returns the raw status.
    int wait() {
        const int status = ipc::wait_child(pid_);
        ipc::explain("waitpid({}) = status {:#x}", pid_, status);
        pid_ = -1;
        return status;
    }

  private:
    pid_t pid_ = -1;
};

// Bytes through a pipe: how the demo's processes tell each other "I got here" and "go".
bool send_bytes(const ipc::unique_fd& fd, std::size_t n = 1) {
    const std::string bytes(n, '!');
    return ipc::write_all(fd.get(), bytes.data(), n);
}
bool get_bytes(const ipc::unique_fd& fd, std::size_t n = 1) {
    std::string bytes(n, '\0');
    return ipc::read_full(fd.get(), bytes.data(), n) == static_cast<ssize_t>(n);
}

std::string read_small_file(const std::string& path) {
    const ipc::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {};
    std::array<char, 1024> buf{};
    const ssize_t n = ipc::read_some(fd.get(), buf.data(), buf.size());
    return n > 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : std::string{};
}

// What /proc says a process is doing: its state letter, the system call it is in, where it sleeps.
struct proc_view {
    char state = '?';
    std::string syscall;  // first field of /proc/PID/syscall: a number, "running", or "" if hidden
    std::string wchan;
};

proc_view look_at(pid_t pid) {
    const std::string base = fmt::format("/proc/{}/", pid);
    proc_view v;
    const std::string stat = read_small_file(base + "stat");
    if (const auto paren = stat.rfind(')'); paren != std::string::npos && paren + 2 < stat.size()) {
        v.state = stat[paren + 2];  // "pid (comm) S ...": comm may hold spaces and parens
    }
    const std::string sc = read_small_file(base + "syscall");
    v.syscall = sc.substr(0, sc.find_first_of(" \n"));
    v.wchan = read_small_file(base + "wchan");
    return v;
}

// Waits until the child sleeps inside openat(2). No event tells one process that another went
// to sleep, so this polls /proc, 1 ms apart, for at most 10 s.
proc_view wait_asleep_in_open(pid_t pid) {
    const std::string openat = std::to_string(SYS_openat);
    proc_view v;
    for (int i = 0; i < 10000; ++i) {
        v = look_at(pid);
        if (v.state == 'S' && (v.syscall == openat || v.syscall.empty())) return v;
        const timespec ms{0, 1000000};
        ::nanosleep(&ms, nullptr);
    }
    ipc::fail(fmt::format("child {} never slept in open(): state {}, syscall {}", pid, v.state,
                          v.syscall));
}

// open(2) on the demo's FIFO, narrated: the descriptor, or -1 with errno set.
int try_open(const std::string& fifo, int flags) {
    const int fd = ::open(fifo.c_str(), flags | O_CLOEXEC);
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

// Rules 1 and 2: a child opens one end and sleeps in open(); we see it asleep in /proc, open the
// other end ourselves, and the child's open() returns.
std::string open_blocks(const std::string& fifo, int child_flags, int our_flags) {
    ipc::pipe_fds ready = ipc::make_pipe();
    ipc::pipe_fds report = ipc::make_pipe();
    demo_child child([&] {
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
    const proc_view v = wait_asleep_in_open(child.pid());
    ipc::explain("/proc/{}: state {}, syscall {} (SYS_openat is {}), wchan {}", child.pid(),
                 v.state, v.syscall, SYS_openat, v.wchan);
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
    const pid_t sleeper = child.pid();
    (void)child.wait();
    return fmt::format(
        "open({}) blocks until {} opens: child {} slept in open() ({}); our open({}) = {}, then "
        "the child's open returned {}",
        flag_names(child_flags), our_flags == O_WRONLY ? "a writer" : "a reader", sleeper, seen,
        flag_names(our_flags), ours.get(), result);
}

std::string rdonly_nonblock(const std::string& fifo) {
    const ipc::unique_fd r = must_open(fifo, O_RDONLY | O_NONBLOCK);
    char byte = 0;
    const ssize_t n = ::read(r.get(), &byte, 1);
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
    const ssize_t got = ::read(r.get(), buf.data(), buf.size());
    const ssize_t again = ::read(r.get(), buf.data(), buf.size());
    const int again_err = errno;
    ipc::explain("close(w1); read({}) = {}; read({}) = {} {}", r.get(), got, r.get(), again,
                 ipc::errno_name(again_err));
    if (got != 1 || again != -1 || again_err != EAGAIN) ipc::fail("rule 5: unexpected reads");
    w2.reset();
    const ssize_t last = ::read(r.get(), buf.data(), buf.size());
    if (last == -1) ipc::die(fmt::format("read({})", r.get()));
    ipc::explain("close(w2); read({}) = {}", r.get(), last);
    return fmt::format(
        "the reader sees EOF when the last writer closes: 2 writers; after the 1st closed, read() "
        "= {} (its byte), then -1 {} (a writer remains); after the 2nd closed, read() = {} (EOF)",
        got, ipc::errno_name(again_err), last);
}

// Rule 6: two writers open the FIFO while a reader is there; the reader closes; then each
// writes. One ignores SIGPIPE and sees EPIPE; the other keeps the default and is killed.
std::string epipe_and_sigpipe(const std::string& fifo) {
    ipc::unique_fd r = must_open(fifo, O_RDONLY | O_NONBLOCK);
    ipc::pipe_fds ready = ipc::make_pipe();
    ipc::pipe_fds go = ipc::make_pipe();
    ipc::pipe_fds report = ipc::make_pipe();
    auto writer = [&](void (*disposition)(int)) {
        return [&, disposition] {
            r.reset();  // our copy of the read end: only the parent's may keep the FIFO read
            sigset_t pipe_sig;
            sigemptyset(&pipe_sig);
            sigaddset(&pipe_sig, SIGPIPE);
            if (::signal(SIGPIPE, disposition) == SIG_ERR ||
                ::sigprocmask(SIG_UNBLOCK, &pipe_sig, nullptr) == -1) {
                return 1;
            }
            const ipc::unique_fd w(try_open(fifo, O_WRONLY));
            if (!w || !send_bytes(ready.write) || !get_bytes(go.read)) return 1;
            ipc::explain("write({}, 1) with SIGPIPE {}", w.get(),
                         disposition == SIG_IGN ? "ignored" : "at its default action");
            const int err = ::write(w.get(), "x", 1) == -1 ? errno : 0;
            ipc::explain("write({}, 1) = -1 {}", w.get(), ipc::errno_name(err));
            return ipc::write_all(report.write.get(), &err, sizeof err) ? 0 : 1;
        };
    };
    demo_child ignoring(writer(SIG_IGN));
    demo_child defaulting(writer(SIG_DFL));
    ready.write.reset();  // so that writers that die early give us EOF, not a hang
    if (!get_bytes(ready.read, 2)) ipc::fail("a writer died before open()");
    r.reset();  // the last reader closes
    ipc::explain("close(reader): the FIFO has no reader now");
    if (!send_bytes(go.write, 2)) ipc::die("write(go pipe)");
    int err = 0;
    if (ipc::read_full(report.read.get(), &err, sizeof err) != sizeof err) {
        ipc::fail("the writer that ignores SIGPIPE did not report");
    }
    const pid_t victim = defaulting.pid();
    const int status = defaulting.wait();
    if (ignoring.wait() != 0) ipc::fail("the writer that ignores SIGPIPE failed");
    const std::string fate =
        WIFSIGNALED(status)
            ? fmt::format("killed by {} (status {})", ipc::signal_name(WTERMSIG(status)),
                          128 + WTERMSIG(status))
            : fmt::format("not killed: it exited {}", WEXITSTATUS(status));
    return fmt::format(
        "a writer gets EPIPE and SIGPIPE after the reader closes: SIGPIPE ignored: write() = -1 "
        "{}; SIGPIPE default: child {} {}",
        err == 0 ? "(no error!)" : ipc::errno_name(err), victim, fate);
}

// Counts torn records in what two writers wrote, each `records` records of `size` bytes filled
// with its tag ('A' or 'B'). A pipe keeps each writer's bytes in order, so a record is whole
// exactly when no byte of the other writer lands inside it.
class tear_counter {
  public:
    explicit tear_counter(std::uint64_t size) : size_(size) {}

    void feed(const char* p, const char* end) {
        while (p < end) {
            const char tag = *p;
            if (tag != 'A' && tag != 'B') ipc::fail("rule 7/8: a byte no writer wrote");
            const char* run_end = std::find_if(p, end, [tag](char c) { return c != tag; });
            if (last_ != 0 && tag != last_) run_ended(last_ - 'A');
            offset_[tag - 'A'] += static_cast<std::uint64_t>(run_end - p);
            last_ = tag;
            p = run_end;
        }
    }
    [[nodiscard]] std::uint64_t torn() const { return torn_; }
    [[nodiscard]] std::uint64_t bytes(int writer) const { return offset_[writer]; }

  private:
    // The other writer's bytes come next: if this writer was inside a record, that one is torn.
    void run_ended(int writer) {
        const std::uint64_t off = offset_[writer];
        if (off % size_ == 0) return;
        const std::uint64_t record = off / size_;
        if (torn_at_[writer] != record) ++torn_;  // a record cut twice counts once
        torn_at_[writer] = record;
    }

    std::uint64_t size_;
    std::array<std::uint64_t, 2> offset_{};                         // bytes seen from each writer
    std::array<std::uint64_t, 2> torn_at_{UINT64_MAX, UINT64_MAX};  // last torn record of each
    std::uint64_t torn_ = 0;
    char last_ = 0;
};

struct tearing {
    std::uint64_t torn;
    int capacity;  // of the FIFO's pipe buffer, F_GETPIPE_SZ
};

// Rules 7 and 8: two writers, started together, each write `records` records of `size` bytes
// with one write(2) per record; we read the stream `read_size` bytes at a time and count the
// torn records. A write that does not fit in the pipe's free space copies what fits and waits,
// and the other writer can go in between: so a reader that frees space in small pieces lets
// large writes tear, while one that drains the whole pipe at each read lets them go in whole.
tearing count_torn(const std::string& fifo, std::uint64_t size, std::uint64_t records,
                   std::uint64_t read_size) {
    const ipc::unique_fd r = must_open(fifo, O_RDONLY | O_NONBLOCK);
    if (::fcntl(r.get(), F_SETFL, 0) == -1) ipc::die("fcntl(F_SETFL, 0)");  // reads block again
    const int capacity = ::fcntl(r.get(), F_GETPIPE_SZ);
    if (capacity == -1) ipc::die("fcntl(F_GETPIPE_SZ)");
    ipc::pipe_fds ready = ipc::make_pipe();
    ipc::pipe_fds go = ipc::make_pipe();
    auto writer = [&](char tag) {
        return [&, tag] {
            const std::string record(size, tag);
            const ipc::unique_fd w(try_open(fifo, O_WRONLY));
            if (!w || !send_bytes(ready.write) || !get_bytes(go.read)) return 1;
            ipc::explain("writer {}: {} x write({}, {} bytes of '{}')", tag, records, w.get(), size,
                         tag);
            for (std::uint64_t i = 0; i < records; ++i) {
                if (!ipc::write_all(w.get(), record.data(), record.size())) return 1;
            }
            return 0;
        };
    };
    demo_child a(writer('A'));
    demo_child b(writer('B'));
    // Both must have opened before we read: with no writer yet, read() returns 0 at once.
    ready.write.reset();  // so that writers that die early give us EOF, not a hang
    if (!get_bytes(ready.read, 2)) ipc::fail("a writer died before open()");
    if (!send_bytes(go.write, 2)) ipc::die("write(go pipe)");
    tear_counter counter(size);
    std::vector<char> buf(read_size);
    std::uint64_t reads = 0;
    while (const ssize_t n = ipc::read_some(r.get(), buf.data(), buf.size())) {
        if (n == -1) ipc::die(fmt::format("read({})", r.get()));
        counter.feed(buf.data(), buf.data() + n);
        ++reads;
    }
    ipc::explain("read({}, {}) x {} until 0 (EOF: both writers closed)", r.get(), read_size, reads);
    if (a.wait() != 0 || b.wait() != 0) ipc::fail("a writer failed");
    if (counter.bytes(0) != size * records || counter.bytes(1) != size * records) {
        ipc::fail("rule 7/8: bytes were lost");
    }
    return {counter.torn(), capacity};
}

struct demo_options {
    std::uint64_t records = 256;
    int pause_after = 0;
    std::uint64_t read_size = 4096;  // bufio.Reader's default buffer
};

// The demo proper, in the worker process. Each rule prints one numbered line.
int run_rules(const std::string& dir, const demo_options& o) {
    say(fmt::format("demo dir: {} (private; removed at the end, or on Ctrl-C)", dir));
    const std::string fifo = dir + "/demo.fifo";
    if (::mkfifo(fifo.c_str(), 0600) == -1) ipc::die(fmt::format("mkfifo({})", fifo));
    ipc::explain("mkfifo({}, 0600) = 0", fifo);
    const auto pipe_buf = static_cast<std::uint64_t>(PIPE_BUF);
    const std::uint64_t big = std::uint64_t{64} << 10;
    const std::vector<std::function<std::string()>> rules = {
        [&] { return open_blocks(fifo, O_RDONLY, O_WRONLY); },
        [&] { return open_blocks(fifo, O_WRONLY, O_RDONLY); },
        [&] { return rdonly_nonblock(fifo); },
        [&] { return wronly_nonblock(fifo); },
        [&] { return eof_after_last_writer(fifo); },
        [&] { return epipe_and_sigpipe(fifo); },
        [&] {
            const tearing t = count_torn(fifo, pipe_buf, o.records, o.read_size);
            return fmt::format(
                "writes of at most PIPE_BUF ({}) bytes never interleave: 2 writers x {} writes "
                "of {} bytes, read {} at a time: {} of {} torn",
                pipe_buf, o.records, pipe_buf, o.read_size, t.torn, 2 * o.records);
        },
        [&] {
            const tearing t = count_torn(fifo, big, o.records, o.read_size);
            return fmt::format(
                "larger writes can interleave: 2 writers x {} writes of {} bytes into a pipe of "
                "{}, read {} at a time: {} of {} torn (it varies from run to run; 0 is possible)",
                o.records, big, t.capacity, o.read_size, t.torn, 2 * o.records);
        },
    };
    for (std::size_t i = 0; i < rules.size(); ++i) {
        say(fmt::format("{}. {}", i + 1, rules[i]()));
        if (static_cast<int>(i) + 1 == o.pause_after) {
            say(
                fmt::format("paused after rule {}: look at {} (ls -l shows the FIFO with type p); "
                            "Ctrl-C ends the demo and removes it",
                            o.pause_after, dir));
            for (;;) ::pause();
        }
    }
    return 0;
}

// The demo runs in a worker process in its own process group; this process only waits, with
// SIGINT, SIGTERM, SIGHUP and SIGCHLD blocked and taken by sigwaitinfo() (no handler; blocked
// signals are queued even if the shell started us with SIGINT ignored, as it does with `&`).
// Whatever ends the demo, it kills what is left of the group, reaps every process (it is a
// subreaper, so the worker's orphans come back to it), and removes the temp dir. The worker
// ends with _exit(), or with exit() in ipc::die when a call fails: stdout was flushed before
// the fork, so no line comes out twice.
int demo(const demo_options& o) {
    sigset_t ending;
    sigemptyset(&ending);
    for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&ending, sig);
    sigset_t old;
    if (::sigprocmask(SIG_BLOCK, &ending, &old) == -1) ipc::die("sigprocmask(SIG_BLOCK)");
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) == -1) ipc::die("prctl(PR_SET_CHILD_SUBREAPER)");

    const char* tmp = std::getenv("TMPDIR");
    std::string dir = fmt::format("{}/fifo-demo.XXXXXX", tmp != nullptr && *tmp ? tmp : "/tmp");
    if (::mkdtemp(dir.data()) == nullptr) ipc::die(fmt::format("mkdtemp({})", dir));
    const pid_t worker = ::fork();
    if (worker == -1) {
        const int err = errno;
        (void)::rmdir(dir.c_str());
        ipc::die_en(err, "fork");
    }
    if (worker == 0) {
        if (::setpgid(0, 0) == -1) ipc::die("setpgid(0, 0)");
        if (::sigprocmask(SIG_SETMASK, &old, nullptr) == -1) ipc::die("sigprocmask(SIG_SETMASK)");
        // Not the terminal's foreground group: with `stty tostop`, writing to the terminal
        // would stop us with SIGTTOU, unless it is ignored.
        if (::signal(SIGTTOU, SIG_IGN) == SIG_ERR) ipc::die("signal(SIGTTOU, SIG_IGN)");
        int rc = 1;
        try {
            rc = run_rules(dir, o);
        } catch (const std::exception& e) {
            ipc::fail(e.what());
        }
        (void)std::fflush(stdout);
        ::_exit(rc);
    }
    ipc::explain("fork() = {} (the worker, in its own process group)", worker);
    (void)::setpgid(worker, worker);  // also here: the group must exist before we may kill it

    int stopped_by = 0;
    for (;;) {
        siginfo_t si{};
        const int sig = ::sigwaitinfo(&ending, &si);
        if (sig == -1) {
            if (errno == EINTR) continue;
            ipc::die("sigwaitinfo");
        }
        if (sig != SIGCHLD) {
            stopped_by = sig;
            break;
        }
        siginfo_t wi{};  // WNOWAIT: a dead but unreaped worker keeps its pid, and its group id
        if (::waitid(P_PID, static_cast<id_t>(worker), &wi, WEXITED | WNOHANG | WNOWAIT) == -1) {
            ipc::die("waitid");
        }
        if (wi.si_pid == worker) break;
    }
    if (::kill(-worker, SIGKILL) == -1 && errno != ESRCH) ipc::warn("kill(-worker, SIGKILL)");
    // Reap the whole group: the worker, and its children, which are ours since it died.
    int worker_status = 0;
    for (;;) {
        int status = 0;
        const pid_t pid = ::waitpid(-worker, &status, 0);
        if (pid == -1) {
            if (errno == EINTR) continue;
            if (errno == ECHILD) break;  // every process of the demo is gone
            ipc::die(fmt::format("waitpid(-{})", worker));
        }
        if (pid == worker) worker_status = status;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec) ipc::warn_en(ec.value(), fmt::format("remove_all({})", dir));
    if (stopped_by != 0) {
        ipc::complain(
            fmt::format("demo stopped by {}; removed {}", ipc::signal_name(stopped_by), dir));
        return 128 + stopped_by;
    }
    say(fmt::format("removed {}", dir));
    if (WIFSIGNALED(worker_status)) return 128 + WTERMSIG(worker_status);
    return WEXITSTATUS(worker_status);
}

mode_t parse_mode(const std::string& text) {
    if (text.empty() || text.size() > 4 ||
        text.find_first_not_of("01234567") != std::string::npos) {
        ipc::usage_error(fmt::format("--mode: '{}' is not an octal mode like 600", text));
    }
    const auto mode = static_cast<mode_t>(std::stoul(text, nullptr, 8));
    if (mode > 0777) ipc::usage_error(fmt::format("--mode: {} has bits beyond 0777", text));
    return mode;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Named pipes (FIFOs): make one, read it or write it beside mkfifo, cat and echo, or\n"
        "run the demo, which makes each rule of FIFOs happen in a private temp dir: opens that\n"
        "block until the other end comes, O_NONBLOCK opens, EOF, EPIPE and SIGPIPE, and\n"
        "PIPE_BUF atomicity with two writers, counted.",
        "fifo"};
    ipc::setup(app, "fifo make p; cat p & fifo write p hello");
    app.require_subcommand(1, 1);
    app.fallthrough();  // -x after the subcommand works too

    std::string path;
    std::string mode_text = "666";
    std::vector<std::string> text;
    demo_options demo_opts;

    auto* make_cmd = app.add_subcommand(
        "make", "Create a FIFO with mkfifo(3); the umask applies to --mode, as with mkfifo(2)");
    make_cmd->add_option("path", path, "Where to make it")->required();
    make_cmd->add_option("--mode", mode_text, "Permission bits, in octal (the umask applies)")
        ->capture_default_str();
    auto* read_cmd = app.add_subcommand(
        "read", "Open a FIFO for reading (waits for a writer) and copy it to stdout until EOF");
    read_cmd->add_option("path", path, "The FIFO")->required();
    auto* write_cmd = app.add_subcommand(
        "write",
        "Open a FIFO for writing (waits for a reader) and write TEXT joined by spaces plus a "
        "newline, in one write(2); or copy stdin when no TEXT is given");
    write_cmd->add_option("path", path, "The FIFO")->required();
    write_cmd->add_option("text", text, "The words to write (use -- before words starting with -)");
    auto* demo_cmd = app.add_subcommand(
        "demo", "Make each rule of FIFOs happen, one numbered line each, in a private temp dir");
    demo_cmd->footer(
        "The rules, in order:\n"
        "  1 open(O_RDONLY) blocks until a writer opens\n"
        "  2 open(O_WRONLY) blocks until a reader opens\n"
        "  3 open(O_RDONLY|O_NONBLOCK) returns at once\n"
        "  4 open(O_WRONLY|O_NONBLOCK) fails with ENXIO when no reader\n"
        "  5 the reader sees EOF when the last writer closes\n"
        "  6 a writer gets EPIPE and SIGPIPE after the reader closes\n"
        "  7 writes of at most PIPE_BUF bytes never interleave\n"
        "  8 larger writes can interleave\n"
        "Example:\n  fifo demo --pause-after 2");
    demo_cmd
        ->add_option("--records", demo_opts.records,
                     "Writes per writer in the atomicity rules 7 and 8")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    ipc::add_size_option(*demo_cmd, "--read-size", demo_opts.read_size,
                         "How much the reader of rules 7 and 8 asks for per read(2); try 64K");
    demo_cmd
        ->add_option("--pause-after", demo_opts.pause_after,
                     "Stop after rule N (1-8) until Ctrl-C, to look at the temp dir")
        ->check(CLI::Range(1, 8));
    ipc::parse(app, argc, argv);
    if (demo_opts.read_size == 0 || demo_opts.read_size > (std::uint64_t{1} << 20)) {
        ipc::usage_error("--read-size: must be 1 byte to 1M");
    }

    if (*make_cmd) return make(path, parse_mode(mode_text));
    if (*read_cmd) return read_fifo(path);
    if (*write_cmd) return write_fifo(path, text);
    return demo(demo_opts);
}
