// bench/measure.cpp: the pieces every ipcbench mode shares (see measure.hpp).
#include "measure.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <ctime>

#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/proc.hpp"
#include "ipc/units.hpp"

namespace ipcbench {

// ---- latency_histogram ----

namespace {

constexpr unsigned sub_bits = 4;  // 2^4 = 16 buckets per power of two

std::size_t bucket(std::uint64_t ns) {
    if (ns < 16) return ns;
    const auto exp = static_cast<unsigned>(std::bit_width(ns) - 1);  // 2^exp <= ns < 2^(exp+1)
    const std::uint64_t sub = (ns >> (exp - sub_bits)) & 15;         // the 4 bits after the top
    return std::size_t{exp - sub_bits + 1} * 16 + sub;
}

std::uint64_t upper_edge(std::size_t i) {
    if (i < 16) return i;
    const std::size_t exp = i / 16 + sub_bits - 1;
    return ((16 + i % 16 + 1) << (exp - sub_bits)) - 1;
}

}  // namespace

void latency_histogram::record(std::chrono::nanoseconds d) {
    const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0));
    ++counts_[bucket(ns)];
    ++total_;
    max_ = std::max(max_, ns);
}

void latency_histogram::merge(const latency_histogram& other) {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
}

std::uint64_t latency_histogram::percentile_ns(double p) const {
    const auto want = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(total_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        seen += counts_[i];
        if (seen >= want) return std::min(upper_edge(i), max_);
    }
    return max_;
}

// ---- CPU time ----

namespace {

cpu_seconds seconds_of(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

rusage usage(int who) {
    rusage ru{};
    if (::getrusage(who, &ru) == -1) ipc::die("getrusage");
    return ru;
}

}  // namespace

cpu_seconds process_cpu() {
    const rusage ru = usage(RUSAGE_SELF);
    return seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
}

cpu_seconds children_cpu() {
    const rusage ru = usage(RUSAGE_CHILDREN);
    return seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
}

cpu_seconds thread_cpu() {
    timespec ts{};
    if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == -1) {
        ipc::die("clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    }
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::optional<cpu_seconds> pid_cpu(pid_t pid) {
    const auto text = ipc::read_proc(pid, "stat");
    const auto st = text ? ipc::parse_stat(*text) : std::nullopt;
    if (!st) return std::nullopt;
    static const long ticks = ::sysconf(_SC_CLK_TCK);  // clock ticks per second, usually 100
    return static_cast<double>(st->utime + st->stime) / static_cast<double>(ticks);
}

long voluntary_switches() { return usage(RUSAGE_SELF).ru_nvcsw + usage(RUSAGE_CHILDREN).ru_nvcsw; }

// ---- cpu_plan ----

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

bool pin(int cpu, const cpu_plan& plan) noexcept {
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

// ---- table ----

std::string table::text() const {
    std::vector<std::size_t> width(columns_.size());
    for (std::size_t c = 0; c < columns_.size(); ++c) {
        width[c] = columns_[c].title.size();
        for (const auto& row : rows_) width[c] = std::max(width[c], row.at(c).size());
    }
    std::string out;
    const auto line = [&](const auto& cell_of) {
        for (std::size_t c = 0; c < columns_.size(); ++c) {
            const std::string& cell = cell_of(c);
            const std::size_t pad = width[c] - cell.size();
            const bool last = c + 1 == columns_.size();
            if (c > 0) out += "  ";
            if (!columns_[c].left) out.append(pad, ' ');
            out += cell;
            if (columns_[c].left && !last) out.append(pad, ' ');
        }
        out += '\n';
    };
    line([&](std::size_t c) -> const std::string& { return columns_[c].title; });
    for (const auto& row : rows_) {
        line([&](std::size_t c) -> const std::string& { return row.at(c); });
    }
    return out;
}

// ---- json_object ----

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out.append({'\\', ch});
        } else if (c < 0x20) {
            out += fmt::format("\\u{:04x}", c);
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

json_object& json_object::raw(std::string_view key, std::string_view json) {
    if (!body_.empty()) body_ += spaced_ ? ", " : ",";
    body_ += json_string(key);
    body_ += spaced_ ? ": " : ":";
    body_ += json;
    return *this;
}

json_object& json_object::text(std::string_view key, std::string_view value) {
    return raw(key, json_string(value));
}

json_object& json_object::fixed(std::string_view key, double value, int decimals) {
    return raw(key, fmt::format("{:.{}f}", value, decimals));
}

json_object& json_object::fixed(std::string_view key, std::optional<double> value, int decimals) {
    return value ? fixed(key, *value, decimals) : raw(key, "null");
}

json_object& json_object::boolean(std::string_view key, bool value) {
    return raw(key, value ? "true" : "false");
}

// ---- progress ----

progress::progress() : on_(::isatty(STDERR_FILENO) == 1) {}

void progress::show(std::string_view text) {
    const auto now = ipc::steady::now();
    if (!on_ || now < next_) return;
    next_ = now + std::chrono::milliseconds(200);
    // "\r" back to the start of the line, "\x1b[K" erases what a longer line left there.
    const std::string line = fmt::format("\r{}: {}\x1b[K", ipc::tool_name(), text);
    (void)ipc::write_all(STDERR_FILENO, line.data(), line.size());  // a lost redraw is harmless
    shown_ = true;
    ipc::erase_line_before_messages(true);  // an error line (ipc::die...) erases it first
}

void progress::clear() {
    if (!shown_) return;
    shown_ = false;
    next_ = {};
    (void)ipc::write_all(STDERR_FILENO, "\r\x1b[K", 4);
    ipc::erase_line_before_messages(false);
}

// ---- small shared pieces ----

std::string describe_cpu(std::optional<cpu_seconds> cpu, double seconds, double units,
                         std::string_view unit) {
    if (!cpu) return "not measured";
    const auto per_unit = std::chrono::nanoseconds(
        units > 0 ? static_cast<std::int64_t>(*cpu / units * 1e9) : std::int64_t{0});
    return fmt::format("{:.2f} s CPU ({:.0f}% of one CPU, {} per {})", *cpu,
                       seconds > 0 ? 100 * *cpu / seconds : 0.0, ipc::format_duration(per_unit),
                       unit);
}

}  // namespace ipcbench
