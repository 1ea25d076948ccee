// ipcbench echo, the request load: --conns connections, one line in flight on each, driven by
// --threads client event loops (each a thread with its own epoll instance over its share of
// the connections); requests/s and latency p50/p99/max. The command line is in echo.cpp.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <memory>
#include <semaphore>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "echo.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/text.hpp"
#include "ipc/units.hpp"

namespace ipcbench {

namespace {

using namespace std::chrono_literals;
using ipc::steady;

struct connection {
    ipc::unique_fd fd;
    std::size_t id = 0;    // its number among all the connections, for messages
    std::string sent;      // the line in flight
    std::string received;  // its echo so far
    std::size_t got = 0;
    steady::time_point sent_at;
};

// Line `seq` on connection `c`: size-1 letters that change with both, then '\n'.
void fill_line(std::string& line, std::size_t c, std::uint64_t seq) {
    for (std::size_t i = 0; i + 1 < line.size(); ++i) {
        line[i] = static_cast<char>('a' + (c + seq + i) % 26);
    }
    line.back() = '\n';
}

// One client event loop: its own epoll instance over its share of the connections and of the
// requests. The loops share nothing on the hot path: only a flag that stops them all when one
// fails, and a counter each publishes for the progress line. Each loop starts on a cache line
// of its own, so that two loops never write to the same one.
class alignas(64) load_loop {
  public:
    load_loop(const echo_options& opt, std::vector<connection> conns, std::uint64_t budget,
              std::atomic<bool>& failed)
        : opt_(opt), conns_(std::move(conns)), budget_(budget), failed_(failed) {}

    // Runs in a thread of its own. Errors are returned, not reported: only main may exit.
    void run() {
        stop_at_ = ipc::deadline_after(opt_.duration);  // --duration: stop issuing after it
        error_ = serve();
        if (!error_.empty()) failed_.store(true, std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t done_so_far() const {
        return published_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t done() const { return done_; }
    [[nodiscard]] const latency_histogram& latencies() const { return latencies_; }
    [[nodiscard]] const std::string& error() const { return error_; }

  private:
    std::string serve() {
        const ipc::unique_fd ep{::epoll_create1(EPOLL_CLOEXEC)};
        if (!ep) return ipc::error_text(errno, "epoll_create1");
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = i;
            if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, conns_[i].fd.get(), &ev) == -1) {
                return ipc::error_text(errno, "epoll_ctl(EPOLL_CTL_ADD)");
            }
        }
        ipc::explain("epoll_create1() = {}; {} connections added for EPOLLIN", ep.get(),
                     conns_.size());
        for (connection& c : conns_) {
            if (issued_ == budget_) break;
            if (std::string err = issue(c); !err.empty()) return err;
        }
        std::array<epoll_event, 64> events{};
        while (done_ < issued_) {
            const int n = ::epoll_wait(ep.get(), events.data(), static_cast<int>(events.size()),
                                       ipc::ms_until(ipc::deadline_after(opt_.deadline)));
            if (n == -1 && errno == EINTR) continue;
            if (n == -1) return ipc::error_text(errno, "epoll_wait");
            if (n == 0) {
                return fmt::format("bench: no echo for {} (--deadline) with {} requests in flight",
                                   ipc::format_duration(opt_.deadline), issued_ - done_);
            }
            for (int e = 0; e < n; ++e) {
                connection& c = conns_[events[static_cast<std::size_t>(e)].data.u64];
                if (std::string err = on_readable(c); !err.empty()) return err;
            }
        }
        return {};
    }

    // A blocking send: the line is small and the send buffer empty, as the last echo came back.
    std::string issue(connection& c) {
        fill_line(c.sent, c.id, issued_++);
        c.got = 0;
        c.sent_at = steady::now();
        if (!ipc::write_all(c.fd.get(), c.sent.data(), c.sent.size())) {
            return ipc::error_text(errno, "write");
        }
        return {};
    }

    // Takes what has come of c's echo; once it is whole, checks it and sends the next line.
    std::string on_readable(connection& c) {
        const ssize_t r =
            ::recv(c.fd.get(), c.received.data() + c.got, c.sent.size() - c.got, MSG_DONTWAIT);
        if (r == -1 && (errno == EAGAIN || errno == EINTR)) return {};
        if (r == -1) return ipc::error_text(errno, fmt::format("recv(connection {})", c.id));
        if (r == 0) return fmt::format("bench: connection {} closed by the server", c.id);
        c.got += static_cast<std::size_t>(r);
        if (c.got < c.sent.size()) return {};  // a partial read: the rest of the echo is coming
        const auto now = steady::now();
        latencies_.record(now - c.sent_at);
        published_.store(++done_, std::memory_order_relaxed);
        if (c.received != c.sent) {
            return fmt::format("bench: connection {}: the echo differs: sent {}, got {}", c.id,
                               ipc::quoted(c.sent, 60), ipc::quoted(c.received, 60));
        }
        if (issued_ < budget_ && now < stop_at_ && !failed_.load(std::memory_order_relaxed)) {
            return issue(c);
        }
        return {};
    }

    const echo_options& opt_;
    std::vector<connection> conns_;
    std::uint64_t budget_;  // requests this loop issues, at most
    steady::time_point stop_at_ = ipc::never;
    std::atomic<bool>& failed_;  // set by any loop that fails: the others stop issuing
    std::uint64_t issued_ = 0;
    std::uint64_t done_ = 0;
    latency_histogram latencies_;
    std::string error_;
    std::atomic<std::uint64_t> published_{0};  // done_, for the progress line only
};

// Dials every connection (before the clock starts) and deals them out: loop t gets a run of
// about conns/threads connections and the same share of the requests.
std::vector<std::unique_ptr<load_loop>> make_loops(const echo_options& opt, const ipc::network& net,
                                                   const std::vector<ipc::sock_addr>& addrs,
                                                   std::atomic<bool>& failed) {
    std::vector<std::unique_ptr<load_loop>> loops;
    std::size_t next = 0;
    for (unsigned t = 0; t < opt.threads; ++t) {
        const std::size_t end = std::size_t{opt.conns} * (t + 1) / opt.threads;
        const std::uint64_t budget =
            opt.requests * end / opt.conns - opt.requests * next / opt.conns;
        std::vector<connection> share;
        for (; next < end; ++next) {
            connection& c = share.emplace_back();
            c.fd = dial(opt, net, addrs);
            c.id = next;
            c.sent.assign(opt.size, '\0');
            c.received.assign(opt.size, '\0');
        }
        loops.push_back(std::make_unique<load_loop>(opt, std::move(share), budget, failed));
    }
    return loops;
}

// Runs each loop in a thread and waits for all, redrawing the progress line meanwhile.
void run_loops(std::vector<std::unique_ptr<load_loop>>& loops, std::uint64_t requests) {
    std::counting_semaphore<> finished{0};
    std::vector<std::jthread> threads;
    threads.reserve(loops.size());
    for (auto& loop : loops) {
        threads.emplace_back([&loop, &finished] {
            loop->run();
            finished.release();
        });
    }
    progress bar;
    for (std::size_t ended = 0; ended < loops.size();) {
        if (!bar.on()) {
            finished.acquire();
            ++ended;
        } else if (finished.try_acquire_for(100ms)) {
            ++ended;
        }
        std::uint64_t done = 0;
        for (const auto& loop : loops) done += loop->done_so_far();
        bar.show(fmt::format("echo: {} of {} requests", done, requests));
    }
}

void print_requests(const echo_options& opt, const latency_histogram& lat, double seconds,
                    const cpu_meter& cpu) {
    const double rate = static_cast<double>(lat.count()) / seconds;
    const auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
    const double p50 = us(lat.percentile_ns(0.50));
    const double p99 = us(lat.percentile_ns(0.99));
    const double max = us(lat.max_ns());
    if (opt.json) {
        ipc::say("{}", json_object{}
                           .text("mode", "bench")
                           .text("network", opt.network)
                           .text("address", opt.connect)
                           .number("threads", opt.threads)
                           .fixed("client_cpu_s", cpu.client(), 3)
                           .fixed("server_cpu_s", cpu.server(), 3)
                           .number("conns", opt.conns)
                           .number("size", opt.size)
                           .number("requests", lat.count())
                           .fixed("seconds", seconds, 3)
                           .fixed("requests_per_sec", rate, 0)
                           .fixed("p50_us", p50, 1)
                           .fixed("p99_us", p99, 1)
                           .fixed("max_us", max, 1)
                           .str());
        return;
    }
    table t({{"network", true},
             {"address", true},
             {"conns"},
             {"size"},
             {"requests"},
             {"seconds"},
             {"requests/s"},
             {"p50_us"},
             {"p99_us"},
             {"max_us"}});
    t.add({opt.network, opt.connect, std::to_string(opt.conns), std::to_string(opt.size),
           std::to_string(lat.count()), fmt::format("{:.3f}", seconds), fmt::format("{:.0f}", rate),
           fmt::format("{:.1f}", p50), fmt::format("{:.1f}", p99), fmt::format("{:.1f}", max)});
    ipc::print(t.text());
    ipc::say("{}", cpu_summary(opt, cpu, seconds, static_cast<double>(lat.count()), "request"));
}

}  // namespace

int run_requests(const echo_options& opt, const ipc::network& net,
                 const std::vector<ipc::sock_addr>& addrs) {
    std::atomic<bool> failed{false};
    auto loops = make_loops(opt, net, addrs, failed);
    cpu_meter cpu(opt.server_pid);
    const auto start = steady::now();
    run_loops(loops, opt.requests);
    const double seconds = std::chrono::duration<double>(steady::now() - start).count();
    cpu.stop();
    latency_histogram all;
    for (const auto& loop : loops) {
        if (!loop->error().empty()) ipc::fail(loop->error());
        all.merge(loop->latencies());
    }
    print_requests(opt, all, seconds, cpu);
    return 0;
}

}  // namespace ipcbench
