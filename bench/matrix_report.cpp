// bench/matrix_report.cpp: what `ipcbench matrix` prints: the table with a bar per row, or one
// JSON object, and the verdict on "shared memory is the fastest IPC method", computed from
// the rows. No IPC here (matrix.cpp measures).
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ipc/output.hpp"
#include "matrix.hpp"

namespace ipcbench::matrix {
namespace {

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1e3; }
double per_trip_us(double cpu, const run_info& info) {
    return cpu / static_cast<double>(info.count) * 1e6;
}
double trips_per_s(const row& r, const run_info& info) {
    return static_cast<double>(info.count) / r.seconds;
}

// The fastest measured row of `kind` (any kind when nullopt) by p50, or nullptr.
const row* fastest(const std::vector<row>& rows, std::optional<family> kind) {
    const row* best = nullptr;
    for (const row& r : rows) {
        if (r.na || (kind && r.mech->kind != *kind)) continue;
        if (!best || r.latency.percentile_ns(0.5) < best->latency.percentile_ns(0.5)) best = &r;
    }
    return best;
}

struct verdict {
    const row* all = nullptr;     // the fastest of every row
    const row* shm = nullptr;     // the fastest shared-memory row
    const row* kernel = nullptr;  // the fastest kernel copy (pipe, socket, FIFO, queue)
    [[nodiscard]] std::optional<double> speedup() const {  // kernel p50 / shm p50
        if (!shm || !kernel) return std::nullopt;
        return static_cast<double>(kernel->latency.percentile_ns(0.5)) /
               static_cast<double>(std::max<std::uint64_t>(1, shm->latency.percentile_ns(0.5)));
    }
    // A shared-memory row is the fastest, or tied with it (the same histogram bucket).
    [[nodiscard]] bool holds() const {
        return shm && shm->latency.percentile_ns(0.5) <= all->latency.percentile_ns(0.5);
    }
};

verdict judge(const std::vector<row>& rows) {
    return {fastest(rows, std::nullopt), fastest(rows, family::shared_memory),
            fastest(rows, family::kernel_copy)};
}

// "shm-spin 0.80 + 0.70 us (97% and 95% of a CPU busy)": CPU per round trip, client + echo
// side.
std::string cost(const row& r, const run_info& info) {
    return fmt::format("{} {:.2f} + {:.2f} us ({:.0f}% and {:.0f}% of a CPU busy)", r.mech->name,
                       per_trip_us(r.client_cpu, info), per_trip_us(r.server_cpu, info),
                       100 * r.client_cpu / r.seconds, 100 * r.server_cpu / r.seconds);
}

void say_verdict(const verdict& v, const run_info& info) {
    if (!v.all) {
        ipc::say("verdict: n/a: no mechanism was measured");
        return;
    }
    ipc::say("verdict: fastest by p50 here: {} ({:.1f} us).", v.all->mech->name,
             us(v.all->latency.percentile_ns(0.5)));
    if (const auto x = v.speedup()) {
        ipc::say(
            "  the fastest shared memory, {} ({:.1f} us), is {:.2f}x as fast as the fastest "
            "kernel copy, {} ({:.1f} us);",
            v.shm->mech->name, us(v.shm->latency.percentile_ns(0.5)), *x, v.kernel->mech->name,
            us(v.kernel->latency.percentile_ns(0.5)));
        ipc::say("  CPU per round trip, client + echo side: {}; {}.", cost(*v.shm, info),
                 cost(*v.kernel, info));
    }
    ipc::say("  \"shared memory is the fastest IPC method\": {} at {} B{}.",
             !v.shm           ? "n/a (no shared-memory row measured)"
             : !v.holds()     ? fmt::format("does not hold here ({} was faster)", v.all->mech->name)
             : v.all == v.shm ? "holds here"
                              : fmt::format("holds here (tied with {} by p50)", v.all->mech->name),
             info.size, v.shm && !v.kernel ? " (no kernel copy measured to compare)" : "");
}

std::string bar(double value, double best) {
    constexpr double width = 30;
    const auto n = static_cast<std::size_t>(best > 0 ? value / best * width + 0.5 : 0);
    return std::string(std::max<std::size_t>(n, 1), '#');
}

}  // namespace

void print_table(const run_info& info, const std::vector<row>& rows) {
    ipc::say("ipcbench matrix: {} B each way, {} timed round trips (after {} untimed), cpu {}",
             info.size, info.count, info.warmup, info.cpu);
    if (!info.cpu_note.empty()) ipc::say("{}", info.cpu_note);
    double best = 0;
    for (const row& r : rows) {
        if (!r.na) best = std::max(best, trips_per_s(r, info));
    }
    table t({{"mechanism", true},
             {"p50 us"},
             {"p99 us"},
             {"max us"},
             {"trips/s"},
             {"cpu us client"},
             {"cpu us echo"},
             {"1-way MB/s"},
             {"round trips/s", true}});
    for (const row& r : rows) {
        if (r.na) {
            t.add({std::string(r.mech->name), "-", "-", "-", "-", "-", "-", "-",
                   fmt::format("n/a (max {} B): {}", r.na->max, r.na->why)});
            continue;
        }
        const double rate = trips_per_s(r, info);
        t.add({std::string(r.mech->name), fmt::format("{:.1f}", us(r.latency.percentile_ns(0.5))),
               fmt::format("{:.1f}", us(r.latency.percentile_ns(0.99))),
               fmt::format("{:.1f}", us(r.latency.max_ns())), fmt::format("{:.0f}", rate),
               fmt::format("{:.2f}", per_trip_us(r.client_cpu, info)),
               fmt::format("{:.2f}", per_trip_us(r.server_cpu, info)),
               r.stream_mb_s ? fmt::format("{:.0f}", *r.stream_mb_s) : "n/a", bar(rate, best)});
    }
    ipc::print(t.text());
    ipc::say(
        "cpu us: CPU time (user + system) per round trip, each side's own getrusage; "
        "1-way MB/s: byte streams only");
    say_verdict(judge(rows), info);
}

void print_json(const run_info& info, const std::vector<row>& rows) {
    std::string list;
    for (const row& r : rows) {
        json_object o{true};
        o.text("name", r.mech->name).text("path", r.mech->path).boolean("measured", !r.na);
        if (r.na) {
            o.number("max_size", r.na->max).text("why", r.na->why);
        } else {
            o.number("p50_ns", r.latency.percentile_ns(0.5))
                .number("p99_ns", r.latency.percentile_ns(0.99))
                .number("max_ns", r.latency.max_ns())
                .fixed("round_trips_per_s", trips_per_s(r, info), 0)
                .fixed("client_cpu_us", per_trip_us(r.client_cpu, info), 3)
                .fixed("server_cpu_us", per_trip_us(r.server_cpu, info), 3)
                .fixed("stream_mb_per_s", r.stream_mb_s, 1);
        }
        list += (list.empty() ? "" : ", ") + o.str();
    }
    const verdict v = judge(rows);
    const auto name = [](const row* r) { return r ? json_string(r->mech->name) : "null"; };
    ipc::say("{}", json_object{true}
                       .text("mode", "matrix")
                       .number("size", info.size)
                       .number("count", info.count)
                       .number("warmup", info.warmup)
                       .text("cpu", info.cpu)
                       .raw("cpu_note", info.cpu_note.empty() ? "null" : json_string(info.cpu_note))
                       .raw("rows", "[" + list + "]")
                       .raw("verdict", json_object{true}
                                           .raw("fastest", name(v.all))
                                           .raw("fastest_shared_memory", name(v.shm))
                                           .raw("fastest_kernel_copy", name(v.kernel))
                                           .fixed("shm_speedup_p50", v.speedup(), 2)
                                           .boolean("claim_holds", v.holds())
                                           .str())
                       .str());
}

}  // namespace ipcbench::matrix
