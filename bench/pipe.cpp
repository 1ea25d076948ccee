// ipcbench pipe: the same bytes through pipe(2) between two processes, pipe(2) between two
// threads, and mem_pipe (pipes/mem_pipe.hpp, Go's io.Pipe in C++) between two threads, with
// memcpy of the same chunks in one thread as the limit. Every run checks a checksum of what
// arrived, counts how often a side had to sleep, and the CPU time each side spent.
// docs/ipcbench.md reads the figures; pipecmp (pipes/) shows what the two pipes do.
#include <sys/types.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ipc/child.hpp"
#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/process.hpp"
#include "ipc/units.hpp"
#include "measure.hpp"
#include "pipes/mem_pipe.hpp"

namespace ipcbench {
namespace {

struct pipe_options {
    std::uint64_t size = std::uint64_t{1} << 30;
    std::uint64_t chunk = std::uint64_t{64} * 1024;
    std::string wait = "adaptive";  // a wait_mode's name, or "all": one mem_pipe run for each
    std::string cpu = "any";        // where the two ends run: any, same or split
    bool json = false;
};

// ---- The bytes, and the check on arrival ----

// The bytes to send: 16 chunks of pseudo-random bytes, sent round and round until `size`.
class source {
  public:
    source(std::uint64_t size, std::uint64_t chunk)
        : size_(size), chunk_(chunk), bytes_(chunk * 16) {
        std::uint64_t x = 0x9E3779B97F4A7C15;  // xorshift64: cheap, no repeat within 16 chunks
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

// Per chunk, the sum of its 64-bit words (a loop the compiler vectorises) and its tail bytes;
// chunks combined in order, so a lost, doubled or reordered chunk shows.
class checksum {
  public:
    void add(std::span<const std::byte> chunk) {
        std::uint64_t sum = 0;
        std::size_t i = 0;
        for (; i + 8 <= chunk.size(); i += 8) {
            std::uint64_t word = 0;
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

// Everything a run needs: the options, the placement, the bytes and their expected checksum.
struct bench_setup {
    const pipe_options& opt;
    cpu_plan cpus;
    source src;
    std::uint64_t expected = 0;
};

// The reader's side of every run: takes the chunks in order through read_chunk(buf) (which
// returns fewer bytes only at end of file), checksums them, and checks that nothing follows.
template <typename ReadChunk>
bool receive(const bench_setup& b, ReadChunk read_chunk) {
    std::vector<std::byte> buf(b.opt.chunk);
    checksum sum;
    for (std::uint64_t i = 0; i < b.src.chunks(); ++i) {
        const auto want = std::span{buf}.first(b.src.chunk(i).size());
        if (read_chunk(want) != want.size()) return false;  // end of file too soon
        sum.add(want);
    }
    return read_chunk(std::span{buf}.first(1)) == 0 && sum.value() == b.expected;
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

// ---- The runs ----

// What a run's body reports: did the checksum match, and what the writer's side spent.
struct arrival {
    bool ok = false;
    std::optional<cpu_seconds> writer_cpu;  // none for memcpy: there is no writer
};

struct run_result {
    std::string path;
    double seconds = 0;
    long sleeps = 0;  // voluntary context switches: how often a thread blocked
    bool checksum_ok = false;
    cpu_seconds reader_cpu = 0;  // this thread, the reader in every run
    std::optional<cpu_seconds> writer_cpu;
};

// Times one run: `body` moves every byte and says whether the checksum matched.
template <typename Body>
run_result timed(std::string path, Body body) {
    const long sleeps = voluntary_switches();
    const cpu_seconds reader = thread_cpu();
    const auto start = ipc::steady::now();
    const arrival a = body();
    const std::chrono::duration<double> elapsed = ipc::steady::now() - start;
    return {std::move(path),       elapsed.count(), voluntary_switches() - sleeps, a.ok,
            thread_cpu() - reader, a.writer_cpu};
}

// The limit: one thread copies each chunk into its buffer and checks it. No hand-off.
arrival copy_run(const bench_setup& b) {
    std::uint64_t i = 0;
    return {receive(b,
                    [&](std::span<std::byte> buf) -> std::size_t {
                        if (i == b.src.chunks()) return 0;
                        const auto chunk = b.src.chunk(i++);
                        const std::size_t n = std::min(buf.size(), chunk.size());
                        std::memcpy(buf.data(), chunk.data(), n);
                        return n;
                    }),
            std::nullopt};
}

// pipe(2) between two processes: the writer is a forked child, whose CPU time its parent
// learns from getrusage(RUSAGE_CHILDREN) once it is reaped. This process has no other thread
// now, so the child may do as it likes; it still ends in _exit.
arrival process_run(const bench_setup& b) {
    auto p = ipc::make_pipe();
    const cpu_seconds children = children_cpu();
    const pid_t pid = ::fork();
    if (pid == -1) ipc::die("fork");
    if (pid == 0) {
        p.read.reset();
        if (!pin(b.cpus.writer, b.cpus)) ipc::child::die("sched_setaffinity", 1);
        for (std::uint64_t i = 0; i < b.src.chunks(); ++i) {
            const auto chunk = b.src.chunk(i);
            if (!ipc::write_all(p.write.get(), chunk.data(), chunk.size())) {
                ipc::child::die("write", 1);
            }
        }
        ::_exit(0);
    }
    ipc::explain("fork() = {} (the writer)", pid);
    p.write.reset();  // else the reader would never see end of file
    const bool ok = receive(b, [&](auto buf) { return read_fd_chunk(p.read.get(), buf); });
    if (const int status = ipc::shell_status(ipc::wait_child(pid)); status != 0) {
        ipc::fail(fmt::format("writer process ended with status {}", status));
    }
    return {ok, children_cpu() - children};
}

// pipe(2) between two threads of this process.
arrival thread_run(const bench_setup& b) {
    auto p = ipc::make_pipe();
    cpu_seconds writer_cpu = 0;
    std::jthread writer{[&] {
        const cpu_seconds start = thread_cpu();
        pin_or_die(b.cpus.writer, b.cpus);
        for (std::uint64_t i = 0; i < b.src.chunks(); ++i) {
            const auto chunk = b.src.chunk(i);
            if (!ipc::write_all(p.write.get(), chunk.data(), chunk.size())) ipc::die("write");
        }
        p.write.reset();
        writer_cpu = thread_cpu() - start;
    }};
    const bool ok = receive(b, [&](auto buf) { return read_fd_chunk(p.read.get(), buf); });
    writer.join();
    return {ok, writer_cpu};
}

// mem_pipe between two threads: one copy, from the writer's buffer into the reader's.
arrival mem_pipe_run(const bench_setup& b, ipc::wait_mode mode) {
    auto [r, w] = ipc::mem_pipe(mode);
    cpu_seconds writer_cpu = 0;
    std::jthread writer{[&, &w = w] {
        const cpu_seconds start = thread_cpu();
        pin_or_die(b.cpus.writer, b.cpus);
        for (std::uint64_t i = 0; i < b.src.chunks(); ++i) {
            if (const auto res = w.write(b.src.chunk(i)); res.error) {
                ipc::fail(fmt::format("mem_pipe write: {}", res.error.message()));
            }
        }
        w.close();
        writer_cpu = thread_cpu() - start;
    }};
    const bool ok = receive(b, [&r = r](auto buf) { return read_mem_chunk(r, buf); });
    writer.join();
    return {ok, writer_cpu};
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

std::vector<run_result> run_all(const bench_setup& b) {
    const auto modes = wait_modes(b.opt.wait);
    const std::size_t runs = 3 + modes.size();
    progress bar;
    const auto next = [&](std::string_view path, std::size_t k) {
        bar.show(fmt::format("pipe: run {} of {}: {}", k, runs, path));
    };
    std::vector<run_result> results;
    pin_or_die(b.cpus.reader, b.cpus);
    (void)copy_run(b);  // once untimed, to warm the caches and the CPU's clock for all runs
    next("memcpy", 1);
    results.push_back(timed("memcpy, 1 thread", [&] { return copy_run(b); }));
    // The processes first, while this process has no other thread (fork copies only one).
    next("pipe(2), 2 processes", 2);
    results.push_back(timed("pipe(2), 2 processes", [&] { return process_run(b); }));
    next("pipe(2), 2 threads", 3);
    results.push_back(timed("pipe(2), 2 threads", [&] { return thread_run(b); }));
    for (const ipc::wait_mode mode : modes) {
        const std::string path = fmt::format("mem_pipe {}", wait_name(mode));
        next(path, results.size() + 1);
        results.push_back(timed(path, [&] { return mem_pipe_run(b, mode); }));
    }
    pin_or_die(-1, b.cpus);
    return results;
}

// ---- The report ----

std::string percent_of(std::optional<cpu_seconds> cpu, double seconds) {
    return cpu ? fmt::format("{:.0f}%", 100 * *cpu / seconds) : "-";
}

void print_table(const pipe_options& opt, const std::vector<run_result>& results) {
    const double gib = static_cast<double>(opt.size) / double(1 << 30);
    const double limit = gib / results.front().seconds;
    ipc::say("{} in {} chunks; cpu {}; mem_pipe wait {}", ipc::format_size(opt.size),
             ipc::format_size(opt.chunk), opt.cpu, opt.wait);
    table speed({{"path", true}, {"GiB/s"}, {"of memcpy"}, {"sleeps"}, {"checksum", true}});
    table cpu({{"path", true}, {"reader CPU"}, {"writer CPU"}, {"CPU s per GiB"}});
    for (const run_result& r : results) {
        const double rate = gib / r.seconds;
        speed.add({r.path, fmt::format("{:.2f}", rate), fmt::format("{:.0f}%", 100 * rate / limit),
                   std::to_string(r.sleeps), r.checksum_ok ? "ok" : "MISMATCH"});
        cpu.add({r.path, percent_of(r.reader_cpu, r.seconds), percent_of(r.writer_cpu, r.seconds),
                 fmt::format("{:.3f}", (r.reader_cpu + r.writer_cpu.value_or(0)) / gib)});
    }
    ipc::print(speed.text());
    ipc::say("CPU time of each side, as a share of the run's time (both sides, per GiB moved):");
    ipc::print(cpu.text());
    // memcpy needs nothing but a CPU: if it did not have one all along, others were running.
    const run_result& copy = results.front();
    if (copy.reader_cpu < 0.8 * copy.seconds) {
        ipc::say(
            "note: the memcpy run had {:.0f}% of a CPU: other work was running, so every "
            "figure here is lower than this machine can do",
            100 * copy.reader_cpu / copy.seconds);
    }
}

void print_json(const pipe_options& opt, const std::vector<run_result>& results) {
    const double gib = static_cast<double>(opt.size) / double(1 << 30);
    const double limit = gib / results.front().seconds;
    std::string list;
    for (const run_result& r : results) {
        const double rate = gib / r.seconds;
        list += fmt::format("{}{}", list.empty() ? "" : ", ",
                            json_object{true}
                                .text("path", r.path)
                                .fixed("seconds", r.seconds, 6)
                                .fixed("gib_per_s", rate, 3)
                                .fixed("of_memcpy", rate / limit, 3)
                                .number("sleeps", r.sleeps)
                                .boolean("checksum_ok", r.checksum_ok)
                                .fixed("reader_cpu_s", r.reader_cpu, 6)
                                .fixed("writer_cpu_s", r.writer_cpu, 6)
                                .str());
    }
    ipc::say("{}", json_object{true}
                       .number("size", opt.size)
                       .number("chunk", opt.chunk)
                       .text("wait", opt.wait)
                       .text("cpu", opt.cpu)
                       .raw("results", "[" + list + "]")
                       .str());
}

int run_pipe(const pipe_options& opt) {
    if (opt.size == 0) ipc::usage_error("--size: at least 1 byte");
    if (opt.chunk == 0 || opt.chunk > (64 << 20)) {
        ipc::usage_error("--chunk: between 1 byte and 64M");
    }
    bench_setup b{opt, plan_cpus(opt.cpu), source(opt.size, opt.chunk)};
    checksum want;
    for (std::uint64_t i = 0; i < b.src.chunks(); ++i) want.add(b.src.chunk(i));
    b.expected = want.value();
    const auto results = run_all(b);
    if (opt.json) {
        print_json(opt, results);
    } else {
        print_table(opt, results);
    }
    for (const run_result& r : results) {
        if (!r.checksum_ok) ipc::fail("the bytes that arrived do not match the bytes sent");
    }
    return 0;
}

}  // namespace

mode add_pipe_mode(CLI::App& app) {
    auto opt = std::make_shared<pipe_options>();
    CLI::App* cmd = app.add_subcommand(
        "pipe",
        "Move the same bytes through pipe(2) between processes, pipe(2) between threads "
        "and mem_pipe between threads; memcpy of the same chunks is the limit. Every run "
        "checks a checksum of the bytes that arrived, and reports the CPU time of each side");
    ipc::add_size_option(*cmd, "--size", opt->size, "Bytes to move in each run");
    ipc::add_size_option(*cmd, "--chunk", opt->chunk, "Bytes per write and per read");
    cmd->add_option("--wait", opt->wait,
                    "How mem_pipe waits: block (sleep at once: every hand-off is a wakeup), "
                    "spin (spin up to 50us, then sleep), adaptive (spin only while the other end "
                    "runs on another CPU), or all (one run of each)")
        ->check(CLI::IsMember({"block", "spin", "adaptive", "all"}))
        ->capture_default_str();
    cmd->add_option("--cpu", opt->cpu,
                    "Where the two ends run: any (the scheduler decides), same (both on one CPU), "
                    "split (one CPU each); set with sched_setaffinity")
        ->check(CLI::IsMember({"any", "same", "split"}))
        ->capture_default_str();
    cmd->add_flag("--json", opt->json, "Print one JSON object instead of the table");
    cmd->footer("Example:\n  ipcbench pipe --size 256M --wait all --cpu split");
    return {cmd, [opt] { return run_pipe(*opt); }};
}

}  // namespace ipcbench
