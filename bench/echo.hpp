// bench/echo.hpp: shared by the two loads of `ipcbench echo`: echo.cpp (many connections, one
// line in flight on each) and echo_bulk.cpp (one connection, a stream verified as it returns).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/fd.hpp"
#include "ipc/net.hpp"
#include "measure.hpp"

namespace ipcbench {

struct echo_options {
    std::string network = "tcp";
    std::string connect;                                              // the server's address
    std::chrono::nanoseconds dial_timeout = std::chrono::seconds(2);  // each dial; 0: no limit
    std::chrono::nanoseconds deadline = std::chrono::seconds(5);  // the longest wait for an echo
    unsigned conns = 50;
    std::uint64_t requests = 200000;
    unsigned threads = 1;     // client event loops, each over its share of the connections
    std::uint64_t size = 32;  // bytes per line, '\n' included
    std::uint64_t bulk = 0;   // bytes to stream; 0: the request load instead
    std::chrono::nanoseconds duration{0};  // stop starting new work after this long; 0: no cap
    pid_t server_pid = 0;                  // whose CPU time to report as the server's; 0: none
    bool json = false;
};

// Connects to the first of `addrs` that answers, all within --dial-timeout, and returns the
// socket in blocking mode. Dies when none answers: a benchmark without a server has nothing
// to measure.
[[nodiscard]] ipc::unique_fd dial(const echo_options& opt, const ipc::network& net,
                                  const std::vector<ipc::sock_addr>& addrs);

// The CPU time both sides spent during a run: this process (all its threads), and the
// process --server-pid names, read from /proc before and after.
class cpu_meter {
  public:
    explicit cpu_meter(pid_t server) : server_(server) { restart(); }
    void restart();
    void stop();
    [[nodiscard]] cpu_seconds client() const { return client_; }
    [[nodiscard]] std::optional<cpu_seconds> server() const { return server_cpu_; }

  private:
    pid_t server_;
    cpu_seconds client_ = 0;
    std::optional<cpu_seconds> server_cpu_;
};

// "client: 1 loop, 0.42 s CPU (...); server pid 123: ..." for the line under the table.
[[nodiscard]] std::string cpu_summary(const echo_options& opt, const cpu_meter& cpu, double seconds,
                                      double units, std::string_view unit);

// The request load (echo_load.cpp): --conns connections, one line in flight on each, driven by
// --threads event loops; prints requests/s and latency. Returns the exit status.
[[nodiscard]] int run_requests(const echo_options& opt, const ipc::network& net,
                               const std::vector<ipc::sock_addr>& addrs);

// --bulk (echo_bulk.cpp): stream opt.bulk bytes through one connection while reading the echo back;
// verifies every byte, prints GiB/s. Returns the exit status.
[[nodiscard]] int run_bulk(const echo_options& opt, const ipc::network& net,
                           const std::vector<ipc::sock_addr>& addrs);

}  // namespace ipcbench
