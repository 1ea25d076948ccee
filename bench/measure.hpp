// bench/measure.hpp: what every ipcbench mode shares: its place in the dispatcher, latency
// percentiles, CPU time per side, the table and --json output, and progress on stderr.
// No IPC is taught here; each mode's own file holds the mechanism it measures.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <array>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;  // <CLI/CLI.hpp> costs seconds per file: only the files that parse include it
}

#include "ipc/clock.hpp"

namespace ipcbench {

// ---- The dispatcher (bench/ipcbench.cpp) ----

// A mode: its subcommand, and what runs it once the whole command line has been parsed.
// Each mode file declares its options on `command` and keeps them alive inside `run`.
struct mode {
    CLI::App* command = nullptr;
    std::function<int()> run;
};

[[nodiscard]] mode add_echo_mode(CLI::App& app);    // bench/echo.cpp
[[nodiscard]] mode add_pipe_mode(CLI::App& app);    // bench/pipe.cpp
[[nodiscard]] mode add_matrix_mode(CLI::App& app);  // bench/matrix.cpp

// ---- Latency ----

// Latencies in a log-scale histogram: 16 buckets per power of two (each about 6% wide), so a
// million samples cost no more memory than ten. The maximum is kept exactly.
class latency_histogram {
  public:
    void record(std::chrono::nanoseconds d);
    // Adds another histogram's samples: one per thread while measuring, merged at the end.
    void merge(const latency_histogram& other);
    // The latency that a fraction p (0..1) of samples did not exceed: its bucket's upper edge.
    [[nodiscard]] std::uint64_t percentile_ns(double p) const;
    [[nodiscard]] std::uint64_t max_ns() const { return max_; }
    [[nodiscard]] std::uint64_t count() const { return total_; }

  private:
    std::array<std::uint64_t, std::size_t{61} * 16> counts_{};  // exponents 4..63, and 0..15
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

// ---- CPU time: what each side spent, so a side that spins or a client that saturates shows ----

using cpu_seconds = double;

// getrusage(RUSAGE_SELF): user + system time of every thread of this process so far.
[[nodiscard]] cpu_seconds process_cpu();
// getrusage(RUSAGE_CHILDREN): the same for the children that have been waited for.
[[nodiscard]] cpu_seconds children_cpu();
// clock_gettime(CLOCK_THREAD_CPUTIME_ID): the calling thread's own CPU time, in seconds.
[[nodiscard]] cpu_seconds thread_cpu();
// /proc/PID/stat's utime + stime (all its threads, in clock ticks: 10 ms steps); nullopt once
// the process is gone. It does not count the process's children (socat forks one per client).
[[nodiscard]] std::optional<cpu_seconds> pid_cpu(pid_t pid);
// getrusage's ru_nvcsw for this process and its waited-for children: how often a thread
// blocked and had to be woken again.
[[nodiscard]] long voluntary_switches();

// ---- Where the two sides run (--cpu any|same|split) ----

// A CPU number for each side, or -1 for any this process may use.
struct cpu_plan {
    cpu_set_t allowed;  // the process's own mask (sched_getaffinity), restored after each run
    int writer = -1;
    int reader = -1;
};

// "any": the scheduler decides; "same": both on the first allowed CPU; "split": the first two
// (fails, exit 1, when this process may use only one).
[[nodiscard]] cpu_plan plan_cpus(const std::string& choice);

// Pins the calling thread to `cpu` with sched_setaffinity(2), or lets it run anywhere allowed
// again when cpu is -1. Async-signal-safe (no allocation, no lock), so a forked child of a
// threaded process may call it.
[[nodiscard]] bool pin(int cpu, const cpu_plan& plan) noexcept;
// The same, dying when it fails (not in a forked child), and told with --explain.
void pin_or_die(int cpu, const cpu_plan& plan);

// ---- Output: a table for people, one JSON object for scripts ----

// Columns sized to fit their widest cell, two spaces apart; numbers right-aligned. The last
// column is never padded, so a line never ends in blanks.
class table {
  public:
    struct column {
        std::string title;
        bool left = false;  // text: left-aligned
    };
    explicit table(std::vector<column> columns) : columns_(std::move(columns)) {}
    void add(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
    // The header line and every row, each ending in '\n'.
    [[nodiscard]] std::string text() const;

  private:
    std::vector<column> columns_;
    std::vector<std::vector<std::string>> rows_;
};

// One JSON object, built key by key in order: {"a":1,"b":"x"}, or with `spaced` {"a": 1, ...}.
class json_object {
  public:
    explicit json_object(bool spaced = false) : spaced_(spaced) {}
    json_object& text(std::string_view key, std::string_view value);  // quoted and escaped
    template <std::integral T>
    json_object& number(std::string_view key, T value) {
        return raw(key, std::to_string(value));
    }
    json_object& fixed(std::string_view key, double value, int decimals);
    json_object& fixed(std::string_view key, std::optional<double> value, int decimals);  // null
    json_object& boolean(std::string_view key, bool value);
    json_object& raw(std::string_view key, std::string_view json);  // an array, an object
    [[nodiscard]] std::string str() const { return "{" + body_ + "}"; }

  private:
    bool spaced_;
    std::string body_;
};

// "\"text\"" with '"', '\\' and control bytes escaped, as JSON needs.
[[nodiscard]] std::string json_string(std::string_view text);

// ---- Progress ----

// One line on stderr, redrawn in place ("\r...", erased at the end), only when stderr is a
// terminal: a log file or a pipe gets nothing. At most five redraws a second. One thread uses it.
// While it is shown, an error line (ipc::die, ipc::fail, the echo side's ipc::child::die...)
// erases it first (ipc::erase_line_before_messages), so that the error never follows it.
class progress {
  public:
    progress();
    progress(const progress&) = delete;
    progress& operator=(const progress&) = delete;
    ~progress() { clear(); }
    [[nodiscard]] bool on() const { return on_; }
    void show(std::string_view text);
    void clear();  // before printing the result

  private:
    bool on_;
    bool shown_ = false;
    ipc::steady::time_point next_{};
};

// ---- Small shared pieces ----

// "0.42 s CPU (85% of one CPU, 10.5 us per request)": a side's CPU over a run of `seconds`
// that did `units` units of work (requests, GiB); nullopt prints as "not measured".
[[nodiscard]] std::string describe_cpu(std::optional<cpu_seconds> cpu, double seconds, double units,
                                       std::string_view unit);

}  // namespace ipcbench
