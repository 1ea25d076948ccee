// pipecmp: the OS pipe (os.Pipe) next to an in-memory one (io.Pipe): atomic writes, closing.
// Usage: pipecmp atomic [--writers 4] [--size 64K] [--rounds 100] [--read 4K] [-x]
//        pipecmp close [-x]
// Demonstrates the end of the notes' "管道" section, and "关于同步" (multiprocess-ipc.md):
// whether concurrent writes arrive whole (PIPE_BUF), and what each end sees when the other
// closes, for the kernel's pipe between processes and an in-memory pipe between threads.
// Try: pipecmp atomic --size 64K; pipecmp atomic --size 4K; pipecmp close
// See also: fifodemo (the same count on a FIFO), ipcbench pipe (what each pipe costs per byte)
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <latch>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "ipc/child.hpp"
#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/process.hpp"
#include "ipc/units.hpp"
#include "mem_pipe.hpp"
#include "tearing.hpp"

namespace {

char letter(unsigned writer) { return static_cast<char>('A' + writer); }

// ---- pipecmp atomic: writers share one pipe; does each write arrive in one piece? ----

// A writer, in the child: waits at the gate, then one write(2) per record. Only
// async-signal-safe calls before _exit (fork copied one thread of a process that may have more).
[[noreturn]] void write_records(int gate, int out, const std::string& record,
                                std::uint64_t records) noexcept {
    char go = 0;
    if (ipc::read_some(gate, &go, 1) == -1) ipc::child::die("read(gate)", ipc::exit_failure);
    for (std::uint64_t i = 0; i < records; ++i) {
        // One write(2) per record: the kernel alone decides whether it goes in whole.
        if (!ipc::write_all(out, record.data(), record.size())) {
            ipc::child::die("write", ipc::exit_failure);
        }
    }
    ::_exit(0);
}

// pipe(2), one child process per writer: the notes' case of several processes on one pipe.
// They all start at once: each waits to read the gate pipe, which we close.
ipc::tear_counter atomic_os_pipe(const ipc::race_options& race, int& capacity) {
    ipc::pipe_fds data = ipc::make_pipe();
    capacity = ::fcntl(data.write.get(), F_GETPIPE_SZ);
    if (capacity == -1) ipc::die("fcntl(F_GETPIPE_SZ)");
    ipc::explain("fcntl({}, F_GETPIPE_SZ) = {}", data.write.get(), capacity);
    ipc::pipe_fds gate = ipc::make_pipe();
    std::vector<pid_t> writers;
    for (unsigned k = 0; k < race.writers; ++k) {
        const std::string record(race.size, letter(k));  // before fork: the child only writes
        const pid_t pid = ::fork();
        if (pid == -1) ipc::die("fork");
        if (pid == 0) {
            data.read.reset();   // a writer keeps only the ends it writes to and waits on
            gate.write.reset();  // else the gate could never open: this child would hold it
            write_records(gate.read.get(), data.write.get(), record, race.records);
        }
        ipc::explain("fork() = {} (writer '{}')", pid, letter(k));
        writers.push_back(pid);
    }
    data.write.reset();  // else the reader would never see end of file
    ipc::explain("close({}) (the gate's write end): {} writers start", gate.write.get(),
                 race.writers);
    gate.write.reset();  // every writer's read(gate) returns 0 now: go

    ipc::tear_counter counter(race.writers, race.size);
    std::vector<char> buf(race.read_size);
    while (const ssize_t n = ipc::read_some(data.read.get(), buf.data(), buf.size())) {
        if (n == -1) ipc::die("read");
        counter.feed({buf.data(), static_cast<std::size_t>(n)});
    }
    for (const pid_t pid : writers) {
        const int status = ipc::wait_child(pid);
        ipc::explain("waitpid({}) = {}, status {}", pid, pid, ipc::shell_status(status));
        if (status != 0) ipc::fail("writer {} {}", pid, ipc::describe_status(status));
    }
    return counter;
}

// mem_pipe, one thread per writer (it joins threads, not processes), counted the same way.
ipc::tear_counter atomic_mem_pipe(const ipc::race_options& race) {
    auto [r, w] = ipc::mem_pipe();
    std::latch start{static_cast<std::ptrdiff_t>(race.writers)};
    std::atomic<unsigned> running{race.writers};
    std::vector<std::jthread> writers;
    for (unsigned k = 0; k < race.writers; ++k) {
        writers.emplace_back([&, k, &w = w] {
            const std::string record(race.size, letter(k));
            start.arrive_and_wait();
            for (std::uint64_t i = 0; i < race.records; ++i) {
                if (const auto res = w.write(std::as_bytes(std::span{record})); res.error) {
                    ipc::fail("mem_pipe write: {}", res.error.message());
                }
            }
            if (running.fetch_sub(1) == 1) w.close();  // the last writer out closes
        });
    }
    ipc::tear_counter counter(race.writers, race.size);
    std::vector<char> buf(race.read_size);
    for (;;) {
        const auto res = r.read(std::as_writable_bytes(std::span{buf}));
        if (res.error) ipc::fail("mem_pipe read: {}", res.error.message());
        if (res.n == 0) return counter;  // end of file: the last writer closed
        counter.feed(std::span{buf}.first(res.n));
    }
}

void print_tears(const std::string& what, const ipc::tear_counter& c,
                 const ipc::race_options& race) {
    ipc::check_every_byte(c, race, what);
    ipc::say("{:<24} {:>8} {:>8}   {}", what, c.records(), c.torn(),
             c.torn() == 0 ? "every record arrived in one piece"
                           : "records mixed with another writer's bytes");
}

int run_atomic(const ipc::race_options& race) {
    ipc::say(
        "{} writers x {} records of {} on one pipe, read {} at a time; PIPE_BUF is {} bytes: {}",
        race.writers, race.records, ipc::format_size(race.size), ipc::format_size(race.read_size),
        PIPE_BUF,
        race.size <= PIPE_BUF ? "pipe(2) writes this small are atomic"
                              : "pipe(2) may split writes this large");
    ipc::say("{:<24} {:>8} {:>8}", "pipe", "records", "torn");
    // The processes first, while this process has no other thread (fork copies only one).
    int capacity = 0;
    print_tears(fmt::format("pipe(2), {} processes", race.writers), atomic_os_pipe(race, capacity),
                race);
    print_tears(fmt::format("mem_pipe, {} threads", race.writers), atomic_mem_pipe(race), race);
    ipc::say("no byte was lost: each writer's bytes all arrived");
    if (race.size > PIPE_BUF) {
        ipc::say(
            "POSIX keeps only writes of at most PIPE_BUF bytes whole. Linux also keeps a "
            "longer one whole while it fits in the pipe's free room (capacity {} bytes), "
            "so tearing needs a write that must wait for room midway: a record larger than "
            "the capacity, or a reader that lags ({} bytes per read here).",
            capacity, race.read_size);
    }
    return 0;
}

// ---- pipecmp close: what one end sees after the other end closes ----

std::string errno_text(int err) {
    return fmt::format("{} ({})", ::strerror(err), ipc::errno_name(err));
}

// Sets SIGPIPE's disposition and returns the one it replaces, to put back.
struct sigaction set_sigpipe(void (*handler)(int)) {
    struct sigaction sa {};
    struct sigaction old {};
    sa.sa_handler = handler;
    ::sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGPIPE, &sa, &old) == -1) ipc::die("sigaction(SIGPIPE)");
    ipc::explain("sigaction(SIGPIPE, {})", handler == SIG_IGN ? "SIG_IGN" : "SIG_DFL");
    return old;
}

void os_writer_closes() {
    ipc::pipe_fds p = ipc::make_pipe();
    if (!ipc::write_all(p.write.get(), "hello", 5)) ipc::die("write");
    ipc::explain("write({}, \"hello\") = 5; close({})", p.write.get(), p.write.get());
    p.write.reset();
    std::array<char, 16> buf{};
    const ssize_t first = ipc::read_some(p.read.get(), buf.data(), buf.size());
    const ssize_t second = ipc::read_some(p.read.get(), buf.data(), buf.size());
    if (first == -1 || second == -1) ipc::die("read");
    ipc::say(
        "  writer closed: read() = {} (the bytes still in the pipe), then read() = {}: end of file",
        first, second);
}

void os_reader_closes_sigpipe_ignored() {
    const struct sigaction old = set_sigpipe(SIG_IGN);
    ipc::pipe_fds p = ipc::make_pipe();
    ipc::explain("close({}): the only read end", p.read.get());
    p.read.reset();
    const bool ok = ipc::write_all(p.write.get(), "x", 1);
    const int err = errno;
    if (::sigaction(SIGPIPE, &old, nullptr) == -1) ipc::die("sigaction(SIGPIPE)");  // as before
    if (ok) ipc::fail("write to a pipe with no reader succeeded");
    ipc::say("  reader closed: write() = -1, {}, with SIGPIPE ignored", errno_text(err));
}

void os_reader_closes_sigpipe_default() {
    ipc::pipe_fds p = ipc::make_pipe();
    p.read.reset();  // before fork: no process holds a read end
    const pid_t pid = ::fork();
    if (pid == -1) ipc::die("fork");
    if (pid == 0) {
        // ipc::start() made SIGPIPE harmless here, and a child that does not exec keeps that:
        // give it the default action back.
        if (::signal(SIGPIPE, SIG_DFL) == SIG_ERR) ipc::child::die("signal(SIGPIPE)", 1);
        (void)ipc::write_all(p.write.get(), "x", 1);  // SIGPIPE's default action ends us here
        ::_exit(0);
    }
    ipc::explain("fork() = {} (writes to a pipe with no reader)", pid);
    const int status = ipc::shell_status(ipc::wait_child(pid));
    ipc::explain("waitpid({}) = {}, status {}", pid, pid, status);
    ipc::say("  reader closed: a writer with SIGPIPE's default action is killed: status {}{}",
             status, status == 128 + SIGPIPE ? " (128 + SIGPIPE)" : "");
}

void os_reader_leaves_bytes() {
    ipc::pipe_fds p = ipc::make_pipe();
    if (!ipc::write_all(p.write.get(), "hello world", 11)) ipc::die("write");
    std::array<char, 5> buf{};
    const ssize_t n = ipc::read_full(p.read.get(), buf.data(), buf.size());
    if (n == -1) ipc::die("read");
    p.read.reset();
    ipc::say(
        "  write(\"hello world\") = 11 at once (the kernel keeps them); the reader read {} and "
        "closed: the other {} are dropped, and the writer is never told",
        n, 11 - n);
}

std::string describe(std::error_code e) {
    return e ? fmt::format("error \"{}\" ({}:{})", e.message(), e.category().name(), e.value())
             : std::string("no error");
}

void mem_close_and_read_or_write() {
    std::array<std::byte, 16> buf{};
    const auto x = std::as_bytes(std::span{"x", 1});
    {
        auto [r, w] = ipc::mem_pipe();
        w.close();
        const auto res = r.read(buf);
        ipc::say("  writer close(): read() = {}, {}: end of file", res.n, describe(res.error));
    }
    {
        auto [r, w] = ipc::mem_pipe();
        w.close_with_error(std::make_error_code(std::errc::connection_reset));
        const auto res = r.read(buf);
        ipc::say("  writer close_with_error(ECONNRESET): read() = {}, {}", res.n,
                 describe(res.error));
    }
    {
        auto [r, w] = ipc::mem_pipe();
        r.close();
        const auto res = w.write(x);
        ipc::say("  reader close(): write() = {}, {}; no signal", res.n, describe(res.error));
    }
    {
        auto [r, w] = ipc::mem_pipe();
        r.close_with_error(std::make_error_code(std::errc::operation_canceled));
        const auto res = w.write(x);
        ipc::say("  reader close_with_error(ECANCELED): write() = {}, {}", res.n,
                 describe(res.error));
    }
}

void mem_reader_leaves_bytes() {
    auto [r, w] = ipc::mem_pipe();
    ipc::pipe_result res;
    std::jthread writer{[&res, &w = w] {
        res = w.write(std::as_bytes(std::span{"hello world", 11}));
    }};
    std::array<std::byte, 5> buf{};
    std::size_t got = 0;
    while (got < buf.size()) got += r.read(std::span{buf}.subspan(got)).n;
    r.close();
    writer.join();
    ipc::say(
        "  write(\"hello world\") blocks; the reader read {} and closed: write() = {}, {}: the "
        "writer knows exactly what was taken",
        got, res.n, describe(res.error));
}

int run_close() {
    ipc::say("pipe(2):");  // first: it forks, and this process must have no other thread then
    os_writer_closes();
    os_reader_closes_sigpipe_ignored();
    os_reader_closes_sigpipe_default();
    os_reader_leaves_bytes();
    ipc::say("mem_pipe:");
    mem_close_and_read_or_write();
    mem_reader_leaves_bytes();
    return 0;
}

// ---- the command line ----

struct options {
    bool close = false;  // pipecmp close; else pipecmp atomic
    ipc::race_options race{4, std::uint64_t{64} << 10, 100, 4096};
};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Compare the OS pipe (pipe(2), Go's os.Pipe) with an in-memory pipe between threads "
        "(mem_pipe, Go's io.Pipe): atomicity of concurrent writes, and closing. (The benchmark "
        "that was `pipecmp bench` is now `ipcbench pipe`.)",
        "pipecmp"};
    ipc::setup(app, "pipecmp atomic --size 64K");
    app.require_subcommand(1);
    options opt;
    auto* atomic = app.add_subcommand(
        "atomic",
        "Writers share one pipe and write records of one letter each; the reader counts "
        "records mixed with another writer's bytes (torn), for pipe(2) between processes "
        "and mem_pipe between threads");
    atomic->add_option("--writers", opt.race.writers, "How many writers")
        ->check(CLI::Range(1U, ipc::max_writers))
        ->capture_default_str();
    ipc::add_size_option(*atomic, "--size", opt.race.size,
                         "Bytes per record (one write each); PIPE_BUF is the line between atomic "
                         "and not for pipe(2)");
    ipc::add_size_option(*atomic, "--read", opt.race.read_size,
                         "Bytes per read: a reader that takes less than a record at a time leaves "
                         "the pipe partly full, so a long write must wait for room midway");
    atomic->add_option("--rounds", opt.race.records, "Records per writer")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    atomic->footer("Example:\n  pipecmp atomic --writers 4 --size 64K --read 4K");
    auto* close = app.add_subcommand(
        "close",
        "Show what each end of both pipes sees after the other end closes: end of file, "
        "EPIPE and SIGPIPE, the closed-pipe error, a custom error");
    close->footer("Example:\n  pipecmp -x close");
    // Gone, but named: whoever learned `pipecmp bench` is told where it went.
    auto* bench = app.add_subcommand("bench")->group("")->prefix_command();
    bench->set_help_flag();  // `pipecmp bench --help` too
    ipc::parse(app, argc, argv);

    if (*bench)
        ipc::usage_error("bench: the benchmark has moved to `ipcbench pipe` (same figures)");
    opt.close = close->parsed();
    if (opt.race.size == 0) ipc::usage_error("--size: a record needs at least 1 byte");
    if (opt.race.size > (64 << 20)) ipc::usage_error("--size: at most 64M per record");
    if (opt.race.read_size == 0 || opt.race.read_size > (64 << 20)) {
        ipc::usage_error("--read: between 1 byte and 64M");
    }
    return opt;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    return opt.close ? run_close() : run_atomic(opt.race);
} catch (...) {
    return ipc::internal_error();
}
