// pipecmp: the OS pipe (pipe(2), Go's os.Pipe) next to an in-memory pipe (mem_pipe, Go's io.Pipe).
// Usage: pipecmp atomic [--writers 4] [--size 64K] [--rounds 100]
//        pipecmp close
//        pipecmp bench [--size 1G] [--chunk 64K] [--wait adaptive|block|spin|all]
//                      [--cpu any|same|split] [--json]
// Demonstrates the "管道" part of multiprocess-ipc.md: several writers on one pipe (atomicity and
// PIPE_BUF), what each end sees when the other closes, and what a copy through the kernel costs
// next to a one-copy hand-off between threads.
// Try: pipecmp atomic --size 64K; pipecmp atomic --size 4K; pipecmp bench --size 256M
// See also: fifo demo (PIPE_BUF on a named pipe), pipeline (pipes between processes)
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <latch>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/process.hpp"
#include "ipc/units.hpp"
#include "mem_pipe.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Shared by the subcommands: a forked child's exit, and reaping it.

// In a forked child nothing may allocate or unwind: report with write(2) and _exit(2).
[[noreturn]] void child_fail(const char* call) {
    const int err = errno;
    const char* name = ::strerrorname_np(err);
    for (const char* part : {"pipecmp: child: ", call, ": ", name ? name : "error", "\n"}) {
        (void)ipc::write_all(STDERR_FILENO, part, std::strlen(part));
    }
    ::_exit(ipc::exit_failure);
}

// Waits for a child and returns its status as a shell shows it: exit code, or 128 + signal.
int reap(pid_t pid) {
    const int shown = ipc::shell_status(ipc::wait_child(pid));
    ipc::explain("waitpid({}) = {}, status {}", pid, pid, shown);
    return shown;
}

void set_sigpipe(void (*handler)(int)) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    if (::sigaction(SIGPIPE, &sa, nullptr) == -1) ipc::die("sigaction(SIGPIPE)");
    ipc::explain("sigaction(SIGPIPE, {})", handler == SIG_IGN ? "SIG_IGN" : "SIG_DFL");
}

// ---------------------------------------------------------------------------------------------
// pipecmp atomic: several writers share one pipe; does each write arrive in one piece?
//
// Writer k fills each of its records with the letter 'A' + k. The reader cuts the stream into
// record-sized pieces: a piece that is not one letter throughout holds parts of two writes.

struct atomic_options {
    unsigned writers = 4;
    std::uint64_t size = std::uint64_t{64} * 1024;
    unsigned rounds = 100;
    std::uint64_t read = 4096;  // bytes per read: a reader slower than the writers
};

// Fills piece with reads of at most `read` bytes each, until it is full or read_some returns 0
// (end of file). Returns the count.
template <typename ReadSome>
std::size_t fill(std::span<char> piece, std::uint64_t read, ReadSome read_some) {
    std::size_t got = 0;
    while (got < piece.size()) {
        const std::size_t n = read_some(piece.subspan(got, std::min(piece.size() - got, read)));
        if (n == 0) break;
        got += n;
    }
    return got;
}

struct tear_count {
    std::uint64_t records = 0;
    std::uint64_t torn = 0;
    std::array<std::uint64_t, 256> bytes{};  // per byte value (writer letter): none was lost
    int capacity = 0;                        // the pipe's buffer, for pipe(2)
};

void classify(std::span<const char> piece, tear_count& count) {
    ++count.records;
    const char first = piece.front();
    if (std::any_of(piece.begin(), piece.end(), [first](char c) { return c != first; })) {
        ++count.torn;
    }
    for (const char c : piece) ++count.bytes[static_cast<unsigned char>(c)];
}

// pipe(2), with one child process per writer: the notes' case of several processes on a pipe.
tear_count atomic_os_pipe(const atomic_options& opt) {
    auto data = ipc::make_pipe();
    auto gate = ipc::make_pipe();  // closed by the parent to start all writers at once
    tear_count count;
    count.capacity = ::fcntl(data.write.get(), F_GETPIPE_SZ);
    if (count.capacity == -1) ipc::die("fcntl(F_GETPIPE_SZ)");
    ipc::explain("fcntl({}, F_GETPIPE_SZ) = {}", data.write.get(), count.capacity);
    std::vector<pid_t> children;
    for (unsigned k = 0; k < opt.writers; ++k) {
        const std::string record(opt.size,
                                 static_cast<char>('A' + k));  // before fork: no malloc after
        const pid_t pid = ::fork();
        if (pid == -1) ipc::die("fork");
        if (pid == 0) {
            data.read.reset();   // a writer needs only the ends it writes to and waits on
            gate.write.reset();  // else the gate could never close: this child would hold it
            char go = 0;
            if (ipc::read_some(gate.read.get(), &go, 1) == -1) child_fail("read(gate)");
            for (unsigned i = 0; i < opt.rounds; ++i) {
                // One write(2) per record: the kernel alone decides whether it goes in whole.
                if (!ipc::write_all(data.write.get(), record.data(), record.size())) {
                    child_fail("write");
                }
            }
            ::_exit(0);
        }
        ipc::explain("fork() = {} (writer '{}')", pid, static_cast<char>('A' + k));
        children.push_back(pid);
    }
    data.write.reset();  // else the reader would never see end of file
    ipc::explain("close({}) (the gate's write end): {} writers start", gate.write.get(),
                 opt.writers);
    gate.write.reset();  // every writer's read(gate) returns 0 now: go

    std::vector<char> piece(opt.size);
    while (const std::size_t n = fill(piece, opt.read, [&](std::span<char> buf) {
               const ssize_t got = ipc::read_some(data.read.get(), buf.data(), buf.size());
               if (got == -1) ipc::die("read");
               return static_cast<std::size_t>(got);
           })) {
        classify(std::span{piece}.first(n), count);
    }
    for (const pid_t pid : children) {
        if (const int status = reap(pid); status != 0) {
            ipc::fail(fmt::format("writer {} ended with status {}", pid, status));
        }
    }
    return count;
}

// mem_pipe, with one thread per writer (it connects threads, not processes).
tear_count atomic_mem_pipe(const atomic_options& opt) {
    auto [r, w] = ipc::mem_pipe();
    std::latch start{static_cast<std::ptrdiff_t>(opt.writers)};
    std::atomic<unsigned> running{opt.writers};
    std::vector<std::jthread> writers;
    for (unsigned k = 0; k < opt.writers; ++k) {
        writers.emplace_back([&, k, &w = w] {
            const std::string record(opt.size, static_cast<char>('A' + k));
            start.arrive_and_wait();
            for (unsigned i = 0; i < opt.rounds; ++i) {
                if (const auto res = w.write(std::as_bytes(std::span{record})); res.error) {
                    ipc::fail(fmt::format("mem_pipe write: {}", res.error.message()));
                }
            }
            if (running.fetch_sub(1) == 1) w.close();  // the last writer out closes
        });
    }
    tear_count count;
    std::vector<char> piece(opt.size);
    while (const std::size_t n = fill(piece, opt.read, [&r = r](std::span<char> buf) {
               const auto res = r.read(std::as_writable_bytes(buf));
               if (res.error) ipc::fail(fmt::format("mem_pipe read: {}", res.error.message()));
               return res.n;
           })) {
        classify(std::span{piece}.first(n), count);
    }
    return count;
}

void print_tears(std::string_view what, const tear_count& c, const atomic_options& opt) {
    fmt::print("{:<24} {:>8} {:>8}   {}\n", what, c.records, c.torn,
               c.torn == 0 ? "every record arrived in one piece"
                           : "records mixed with another writer's bytes");
    const std::uint64_t each = std::uint64_t{opt.rounds} * opt.size;
    std::uint64_t total = 0;
    for (const std::uint64_t n : c.bytes) total += n;
    for (unsigned k = 0; k < opt.writers; ++k) {
        const char letter = static_cast<char>('A' + k);
        if (const auto n = c.bytes[static_cast<unsigned char>(letter)]; n != each) {
            ipc::fail(
                fmt::format("{}: writer '{}' delivered {} bytes, not {}", what, letter, n, each));
        }
    }
    if (total != each * opt.writers) ipc::fail(fmt::format("{}: {} bytes arrived", what, total));
}

int run_atomic(const atomic_options& opt) {
    fmt::print(
        "{} writers x {} records of {} on one pipe, read {} at a time; PIPE_BUF is {} "
        "bytes: {}\n",
        opt.writers, opt.rounds, ipc::format_size(opt.size), ipc::format_size(opt.read), PIPE_BUF,
        opt.size <= PIPE_BUF ? "pipe(2) writes this small are atomic"
                             : "pipe(2) may split writes this large");
    fmt::print("{:<24} {:>8} {:>8}\n", "pipe", "records", "torn");
    // The processes first, while this process has no other thread (fork copies only one).
    const tear_count os = atomic_os_pipe(opt);
    print_tears(fmt::format("pipe(2), {} processes", opt.writers), os, opt);
    print_tears(fmt::format("mem_pipe, {} threads", opt.writers), atomic_mem_pipe(opt), opt);
    fmt::print("no byte was lost: each writer's bytes all arrived\n");
    if (opt.size > PIPE_BUF) {
        fmt::print(
            "POSIX keeps only writes of at most PIPE_BUF bytes whole. Linux also keeps a "
            "longer one whole while it fits in the pipe's free room (capacity {} bytes), "
            "so tearing needs a write that must wait for room midway: a record larger than "
            "the capacity, or a reader that lags ({} bytes per read here).\n",
            os.capacity, opt.read);
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// pipecmp close: what one end sees after the other end closes.

std::string errno_text(int err) {
    return fmt::format("{} ({})", ::strerror(err), ipc::errno_name(err));
}

void close_os_pipe() {
    fmt::print("pipe(2):\n");
    {
        auto p = ipc::make_pipe();
        if (!ipc::write_all(p.write.get(), "hello", 5)) ipc::die("write");
        ipc::explain("write({}, \"hello\") = 5; close({})", p.write.get(), p.write.get());
        p.write.reset();
        std::array<char, 16> buf{};
        const ssize_t first = ipc::read_some(p.read.get(), buf.data(), buf.size());
        const ssize_t second = ipc::read_some(p.read.get(), buf.data(), buf.size());
        if (first == -1 || second == -1) ipc::die("read");
        fmt::print(
            "  writer closed: read() = {} (the bytes still in the pipe), then read() = {}: "
            "end of file\n",
            first, second);
    }
    {
        set_sigpipe(SIG_IGN);
        auto p = ipc::make_pipe();
        ipc::explain("close({}): the only read end", p.read.get());
        p.read.reset();
        const bool ok = ipc::write_all(p.write.get(), "x", 1);
        const int err = errno;
        set_sigpipe(SIG_DFL);
        if (ok) ipc::fail("write to a pipe with no reader succeeded");
        fmt::print("  reader closed: write() = -1, {}, with SIGPIPE ignored\n", errno_text(err));
    }
    {
        auto p = ipc::make_pipe();
        p.read.reset();  // before fork: no process holds a read end
        const pid_t pid = ::fork();
        if (pid == -1) ipc::die("fork");
        if (pid == 0) {
            (void)ipc::write_all(p.write.get(), "x", 1);  // SIGPIPE's default action ends us here
            ::_exit(0);
        }
        ipc::explain("fork() = {} (writes to a pipe with no reader)", pid);
        const int status = reap(pid);
        fmt::print(
            "  reader closed: a writer with SIGPIPE's default action is killed: status {}{}\n",
            status, status == 128 + SIGPIPE ? " (128 + SIGPIPE)" : "");
    }
    {
        auto p = ipc::make_pipe();
        if (!ipc::write_all(p.write.get(), "hello world", 11)) ipc::die("write");
        std::array<char, 5> buf{};
        const ssize_t n = ipc::read_full(p.read.get(), buf.data(), buf.size());
        if (n == -1) ipc::die("read");
        p.read.reset();
        fmt::print(
            "  write(\"hello world\") = 11 at once (the kernel keeps them); the reader read "
            "{} and closed: the other {} are dropped, and the writer is never told\n",
            n, 11 - n);
    }
}

std::string error_text(std::error_code e) {
    return e ? fmt::format("error \"{}\" ({}:{})", e.message(), e.category().name(), e.value())
             : std::string("no error");
}

void close_mem_pipe() {
    fmt::print("mem_pipe:\n");
    std::array<std::byte, 16> buf{};
    {
        auto [r, w] = ipc::mem_pipe();
        w.close();
        const auto res = r.read(buf);
        fmt::print("  writer close(): read() = {}, {}: end of file\n", res.n,
                   error_text(res.error));
    }
    {
        auto [r, w] = ipc::mem_pipe();
        w.close_with_error(std::make_error_code(std::errc::connection_reset));
        const auto res = r.read(buf);
        fmt::print("  writer close_with_error(ECONNRESET): read() = {}, {}\n", res.n,
                   error_text(res.error));
    }
    {
        auto [r, w] = ipc::mem_pipe();
        r.close();
        const auto res = w.write(std::as_bytes(std::span{"x", 1}));
        fmt::print("  reader close(): write() = {}, {}; no signal\n", res.n, error_text(res.error));
    }
    {
        auto [r, w] = ipc::mem_pipe();
        r.close_with_error(std::make_error_code(std::errc::operation_canceled));
        const auto res = w.write(std::as_bytes(std::span{"x", 1}));
        fmt::print("  reader close_with_error(ECANCELED): write() = {}, {}\n", res.n,
                   error_text(res.error));
    }
    {
        auto [r, w] = ipc::mem_pipe();
        ipc::pipe_result res;
        std::jthread writer{[&res, &w = w] {
            res = w.write(std::as_bytes(std::span{"hello world", 11}));
        }};
        std::size_t got = 0;
        while (got < 5) got += r.read(std::span{buf}.subspan(got, 5 - got)).n;
        r.close();
        writer.join();
        fmt::print(
            "  write(\"hello world\") blocks; the reader read {} and closed: write() = {}, "
            "{}: the writer knows exactly what was taken\n",
            got, res.n, error_text(res.error));
    }
}

int run_close() {
    close_os_pipe();  // first: it forks, and this process must have no other thread then
    close_mem_pipe();
    return 0;
}

// ---------------------------------------------------------------------------------------------
// pipecmp bench: the same bytes through each pipe, checked on arrival, next to memcpy.

struct bench_options {
    std::uint64_t size = std::uint64_t{1} << 30;
    std::uint64_t chunk = std::uint64_t{64} * 1024;
    std::string wait = "adaptive";  // a wait_mode's name, or "all": one mem_pipe run for each
    std::string cpu = "any";        // where the two ends run: any, same or split
    bool json = false;
};

// Where the writer and the reader run: a CPU number, or -1 for any this process may use.
struct cpu_plan {
    cpu_set_t allowed;  // the process's own mask, restored after each run
    int writer = -1;
    int reader = -1;
};

cpu_plan plan_cpus(const std::string& choice) {
    cpu_plan plan{};
    if (::sched_getaffinity(0, sizeof plan.allowed, &plan.allowed) == -1) {
        ipc::die("sched_getaffinity");
    }
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &plan.allowed)) cpus.push_back(c);
    }
    if (choice == "same") plan.writer = plan.reader = cpus.front();
    if (choice == "split") {
        if (cpus.size() < 2) ipc::fail("--cpu split needs two CPUs; this process may use only one");
        plan.writer = cpus[0];
        plan.reader = cpus[1];
    }
    return plan;
}

// Pins the calling thread to `cpu`, or lets it run anywhere allowed again when cpu is -1.
// Async-signal-safe when it succeeds, so a forked child may call it.
bool pin(int cpu, const cpu_plan& plan) {
    cpu_set_t set = plan.allowed;
    if (cpu >= 0) {
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
    }
    return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

void pin_or_die(int cpu, const cpu_plan& plan) {
    if (!pin(cpu, plan)) ipc::die(fmt::format("sched_setaffinity(cpu {})", cpu));
    if (cpu >= 0) ipc::explain("sched_setaffinity(0, {{{}}})", cpu);
}

// The bytes to send: 16 chunks of pseudo-random bytes, sent round and round until `size`.
class source {
  public:
    source(std::uint64_t size, std::uint64_t chunk)
        : size_(size), chunk_(chunk), bytes_(chunk * 16) {
        std::uint64_t x =
            0x9E3779B97F4A7C15;  // xorshift64: cheap, and never repeats within 16 chunks
        for (auto& b : bytes_) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b = static_cast<std::byte>(x >> 32);
        }
    }
    [[nodiscard]] std::uint64_t chunks() const { return (size_ + chunk_ - 1) / chunk_; }
    [[nodiscard]] std::span<const std::byte> chunk(std::uint64_t i) const {
        const std::uint64_t len = std::min(chunk_, size_ - i * chunk_);
        return std::span{bytes_}.subspan((i % 16) * chunk_, len);
    }

  private:
    std::uint64_t size_;
    std::uint64_t chunk_;
    std::vector<std::byte> bytes_;
};

// The check on arrival: per chunk, the sum of its 64-bit words (a loop the compiler vectorises)
// and its tail bytes; chunks combined in order, so a lost, doubled or reordered chunk shows.
class checksum {
  public:
    void add(std::span<const std::byte> chunk) {
        std::uint64_t sum = 0;
        std::size_t i = 0;
        for (; i + 8 <= chunk.size(); i += 8) {
            std::uint64_t word;
            std::memcpy(&word, chunk.data() + i, 8);
            sum += word;
        }
        for (; i < chunk.size(); ++i) sum += static_cast<std::uint64_t>(chunk[i]);
        value_ = value_ * 0x100000001B3 + sum;
    }
    [[nodiscard]] std::uint64_t value() const { return value_; }

  private:
    std::uint64_t value_ = 0;
};

struct bench_result {
    std::string path;
    double seconds = 0;
    long sleeps = 0;  // voluntary context switches: how often a thread blocked
    bool checksum_ok = false;
};

long voluntary_switches(int who) {
    rusage ru{};
    if (::getrusage(who, &ru) == -1) ipc::die("getrusage");
    return ru.ru_nvcsw;
}

// The reader's side of every run: takes the chunks in order through read_chunk(buf) (which
// returns fewer bytes only at end of file), checksums them, and checks that nothing follows.
template <typename ReadChunk>
bool receive(const source& src, std::uint64_t chunk, std::uint64_t expected, ReadChunk read_chunk) {
    std::vector<std::byte> buf(chunk);
    checksum sum;
    for (std::uint64_t i = 0; i < src.chunks(); ++i) {
        const auto want = std::span{buf}.first(src.chunk(i).size());
        if (read_chunk(want) != want.size()) return false;  // end of file too soon
        sum.add(want);
    }
    return read_chunk(std::span{buf}.first(1)) == 0 && sum.value() == expected;
}

std::size_t read_fd_chunk(int fd, std::span<std::byte> buf) {
    const ssize_t n = ipc::read_full(fd, buf.data(), buf.size());
    if (n == -1) ipc::die("read");
    return static_cast<std::size_t>(n);
}

std::size_t read_mem_chunk(ipc::mem_pipe_reader& r, std::span<std::byte> buf) {
    std::size_t got = 0;
    while (got < buf.size()) {
        const auto res = r.read(buf.subspan(got));
        if (res.error) ipc::fail(fmt::format("mem_pipe read: {}", res.error.message()));
        if (res.n == 0) break;
        got += res.n;
    }
    return got;
}

// Times one run: `body` moves every byte and returns whether the checksum matched.
template <typename Body>
bench_result timed(std::string path, Body body) {
    const long before = voluntary_switches(RUSAGE_SELF) + voluntary_switches(RUSAGE_CHILDREN);
    const auto start = clock_type::now();
    const bool ok = body();
    const std::chrono::duration<double> elapsed = clock_type::now() - start;
    const long after = voluntary_switches(RUSAGE_SELF) + voluntary_switches(RUSAGE_CHILDREN);
    return {std::move(path), elapsed.count(), after - before, ok};
}

std::string_view wait_name(ipc::wait_mode m) {
    switch (m) {
        case ipc::wait_mode::block: return "block";
        case ipc::wait_mode::spin: return "spin";
        case ipc::wait_mode::adaptive: return "adaptive";
    }
    return "?";
}

// The wait modes --wait names: one, or all three (spin last: where it burns a CPU for nothing,
// it should not also slow the run after it).
std::vector<ipc::wait_mode> wait_modes(const std::string& name) {
    std::vector<ipc::wait_mode> modes;
    for (const auto m : {ipc::wait_mode::block, ipc::wait_mode::adaptive, ipc::wait_mode::spin}) {
        if (name == "all" || name == wait_name(m)) modes.push_back(m);
    }
    return modes;
}

std::vector<bench_result> run_benchmarks(const bench_options& opt, const cpu_plan& cpus) {
    const source src(opt.size, opt.chunk);
    checksum want;
    for (std::uint64_t i = 0; i < src.chunks(); ++i) want.add(src.chunk(i));
    const std::uint64_t expected = want.value();
    std::vector<bench_result> results;

    // The limit: one thread copies each chunk into its buffer and checks it. No hand-off.
    pin_or_die(cpus.reader, cpus);
    const auto copy_run = [&] {
        std::uint64_t i = 0;
        return receive(src, opt.chunk, expected, [&](std::span<std::byte> buf) -> std::size_t {
            if (i == src.chunks()) return 0;
            const auto chunk = src.chunk(i++);
            std::memcpy(buf.data(), chunk.data(), std::min(buf.size(), chunk.size()));
            return std::min(buf.size(), chunk.size());
        });
    };
    (void)copy_run();  // once untimed, to warm the caches and the CPU's clock for all runs
    results.push_back(timed("memcpy, 1 thread", copy_run));

    // pipe(2) between two processes: the writer is a forked child. First, while there is no
    // other thread in this process.
    results.push_back(timed("pipe(2), 2 processes", [&] {
        auto p = ipc::make_pipe();
        const pid_t pid = ::fork();
        if (pid == -1) ipc::die("fork");
        if (pid == 0) {
            p.read.reset();
            if (!pin(cpus.writer, cpus)) child_fail("sched_setaffinity");
            for (std::uint64_t i = 0; i < src.chunks(); ++i) {
                const auto chunk = src.chunk(i);
                if (!ipc::write_all(p.write.get(), chunk.data(), chunk.size())) child_fail("write");
            }
            ::_exit(0);
        }
        ipc::explain("fork() = {} (the writer)", pid);
        p.write.reset();
        const bool ok = receive(src, opt.chunk, expected, [&](std::span<std::byte> buf) {
            return read_fd_chunk(p.read.get(), buf);
        });
        if (const int status = reap(pid); status != 0) {
            ipc::fail(fmt::format("writer process ended with status {}", status));
        }
        return ok;
    }));

    results.push_back(timed("pipe(2), 2 threads", [&] {
        auto p = ipc::make_pipe();
        std::jthread writer{[&] {
            pin_or_die(cpus.writer, cpus);
            for (std::uint64_t i = 0; i < src.chunks(); ++i) {
                const auto chunk = src.chunk(i);
                if (!ipc::write_all(p.write.get(), chunk.data(), chunk.size())) ipc::die("write");
            }
            p.write.reset();
        }};
        return receive(src, opt.chunk, expected,
                       [&](std::span<std::byte> buf) { return read_fd_chunk(p.read.get(), buf); });
    }));

    for (const ipc::wait_mode mode : wait_modes(opt.wait)) {
        results.push_back(timed(fmt::format("mem_pipe {}", wait_name(mode)), [&] {
            auto [r, w] = ipc::mem_pipe(mode);
            std::jthread writer{[&, &w = w] {
                pin_or_die(cpus.writer, cpus);
                for (std::uint64_t i = 0; i < src.chunks(); ++i) {
                    if (const auto res = w.write(src.chunk(i)); res.error) {
                        ipc::fail(fmt::format("mem_pipe write: {}", res.error.message()));
                    }
                }
                w.close();
            }};
            return receive(src, opt.chunk, expected,
                           [&r = r](std::span<std::byte> buf) { return read_mem_chunk(r, buf); });
        }));
    }
    pin_or_die(-1, cpus);
    return results;
}

int run_bench(const bench_options& opt) {
    const cpu_plan cpus = plan_cpus(opt.cpu);
    const auto results = run_benchmarks(opt, cpus);
    const double gib = static_cast<double>(opt.size) / double(1 << 30);
    const double limit = gib / results.front().seconds;
    bool all_ok = true;
    if (opt.json) {
        fmt::print(
            "{{\"size\": {}, \"chunk\": {}, \"wait\": \"{}\", \"cpu\": \"{}\", \"results\": [",
            opt.size, opt.chunk, opt.wait, opt.cpu);
    } else {
        fmt::print("{} in {} chunks; cpu {}; mem_pipe wait {}\n", ipc::format_size(opt.size),
                   ipc::format_size(opt.chunk), opt.cpu, opt.wait);
        fmt::print("{:<22} {:>8} {:>10} {:>8}  {}\n", "path", "GiB/s", "of memcpy", "sleeps",
                   "checksum");
    }
    for (std::size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        const double rate = gib / r.seconds;
        all_ok = all_ok && r.checksum_ok;
        if (opt.json) {
            fmt::print(
                "{}{{\"path\": \"{}\", \"seconds\": {:.6f}, \"gib_per_s\": {:.3f}, "
                "\"of_memcpy\": {:.3f}, \"sleeps\": {}, \"checksum_ok\": {}}}",
                i ? ", " : "", r.path, r.seconds, rate, rate / limit, r.sleeps, r.checksum_ok);
        } else {
            fmt::print("{:<22} {:>8.2f} {:>9.0f}% {:>8}  {}\n", r.path, rate, 100 * rate / limit,
                       r.sleeps, r.checksum_ok ? "ok" : "MISMATCH");
        }
    }
    if (opt.json) fmt::print("]}}\n");
    if (!all_ok) ipc::fail("the bytes that arrived do not match the bytes sent");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Compare the OS pipe (pipe(2), Go's os.Pipe) with an in-memory pipe between threads "
        "(mem_pipe, Go's io.Pipe): atomicity of concurrent writes, closing, throughput",
        "pipecmp"};
    ipc::setup(app, "pipecmp atomic --size 64K");
    app.require_subcommand(1);

    atomic_options atomic_opt;
    auto* atomic = app.add_subcommand(
        "atomic",
        "Writers share one pipe and write records of one letter each; the reader counts "
        "records mixed with another writer's bytes (torn), for pipe(2) between processes "
        "and mem_pipe between threads");
    atomic->add_option("--writers", atomic_opt.writers, "How many writers")
        ->check(CLI::Range(1, 26))
        ->capture_default_str();
    ipc::add_size_option(*atomic, "--size", atomic_opt.size,
                         "Bytes per record (one write each); PIPE_BUF is the line between atomic "
                         "and not for pipe(2)");
    ipc::add_size_option(*atomic, "--read", atomic_opt.read,
                         "Bytes per read: a reader that takes less than a record at a time leaves "
                         "the pipe partly full, so a long write must wait for room midway");
    atomic->add_option("--rounds", atomic_opt.rounds, "Records per writer")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();

    auto* close = app.add_subcommand(
        "close",
        "Show what each end of both pipes sees after the other end closes: end of file, "
        "EPIPE and SIGPIPE, the closed-pipe error, a custom error");

    bench_options bench_opt;
    auto* bench = app.add_subcommand(
        "bench",
        "Move the same bytes through pipe(2) between processes, pipe(2) between threads "
        "and mem_pipe between threads; memcpy of the same chunks is the limit. Every run "
        "checks a checksum of the bytes that arrived");
    ipc::add_size_option(*bench, "--size", bench_opt.size, "Bytes to move in each run");
    ipc::add_size_option(*bench, "--chunk", bench_opt.chunk, "Bytes per write and per read");
    bench
        ->add_option("--wait", bench_opt.wait,
                     "How mem_pipe waits: block (sleep at once: every hand-off is a wakeup), "
                     "spin (spin up to 50us, then sleep), adaptive (spin only while the other end "
                     "runs on another CPU), or all (one run of each)")
        ->check(CLI::IsMember({"block", "spin", "adaptive", "all"}))
        ->capture_default_str();
    bench
        ->add_option("--cpu", bench_opt.cpu,
                     "Where the two ends run: any (the scheduler decides), same (both on one CPU), "
                     "split (one CPU each); set with sched_setaffinity")
        ->check(CLI::IsMember({"any", "same", "split"}))
        ->capture_default_str();
    bench->add_flag("--json", bench_opt.json, "Print one JSON object instead of the table");
    bench->footer("Example:\n  pipecmp bench --size 256M --wait all --cpu split");
    atomic->footer("Example:\n  pipecmp atomic --writers 4 --size 64K --read 4K");
    close->footer("Example:\n  pipecmp -x close");

    ipc::parse(app, argc, argv);

    if (*atomic) {
        if (atomic_opt.size == 0) ipc::usage_error("--size: a record needs at least 1 byte");
        if (atomic_opt.size > (64 << 20)) ipc::usage_error("--size: at most 64M per record");
        if (atomic_opt.read == 0) ipc::usage_error("--read: at least 1 byte");
        return run_atomic(atomic_opt);
    }
    if (*close) return run_close();
    if (bench_opt.size == 0) ipc::usage_error("--size: at least 1 byte");
    if (bench_opt.chunk == 0 || bench_opt.chunk > (64 << 20)) {
        ipc::usage_error("--chunk: between 1 byte and 64M");
    }
    return run_bench(bench_opt);
}
