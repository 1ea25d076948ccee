// ipcbench echo: load an echo server and measure it. Two loads: many connections with one line
// in flight on each (echo_load.cpp: requests/s, latency p50/p99/max), or one connection that
// streams bytes and verifies the echo (echo_bulk.cpp: GiB/s). This file holds what both share:
// the command line, dialing, and the CPU time of each side.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "echo.hpp"
#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/units.hpp"

namespace ipcbench {
namespace {

using namespace std::chrono_literals;
using ipc::steady;

// ---- Dial ----

// One connect(2) within the time left: "" or what went wrong. TCP: a non-blocking connect
// returns EINPROGRESS while the handshake goes on; poll(2) for POLLOUT waits for it and
// SO_ERROR says how it ended. AF_UNIX: a non-blocking connect to a full backlog fails at once
// with EAGAIN, so the unix connect blocks, bounded by SO_SNDTIMEO.
std::string connect_one(int fd, const ipc::sock_addr& to, std::chrono::nanoseconds timeout) {
    const std::string where = fmt::format("connect({})", ipc::addr_string(to));
    const auto deadline = ipc::deadline_after(timeout);
    int rc = 0;
    do {
        rc = ::connect(fd, to.get(), to.len);
    } while (rc == -1 && errno == EINTR && to.family() == AF_UNIX);
    if (rc == 0) return {};
    if (errno == EAGAIN && to.family() == AF_UNIX) {
        return fmt::format(
            "{}: timed out after {} (--dial-timeout): the listener's backlog is full", where,
            ipc::format_duration(timeout));
    }
    if (errno != EINPROGRESS && errno != EINTR) return ipc::error_text(errno, where);
    pollfd p{fd, POLLOUT, 0};
    int ready = 0;
    do {
        ready = ::poll(&p, 1, ipc::ms_until(deadline));
    } while (ready == -1 && errno == EINTR);
    if (ready == -1) return ipc::error_text(errno, "poll");
    if (ready == 0) {
        return fmt::format("{}: timed out after {} (--dial-timeout)", where,
                           ipc::format_duration(timeout));
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        return ipc::error_text(errno, "getsockopt(SO_ERROR)");
    }
    return err == 0 ? std::string{} : ipc::error_text(err, where);
}

// The socket for one address, set up for connect_one: non-blocking for TCP, a send timeout
// bounding the connect for unix.
ipc::unique_fd make_socket(const echo_options& opt, const ipc::network& net, int family) {
    const int flags = SOCK_CLOEXEC | (family == AF_UNIX ? 0 : SOCK_NONBLOCK);
    ipc::unique_fd fd{::socket(family, net.type | flags, 0)};
    if (!fd) ipc::die("socket");
    if (family == AF_UNIX && opt.dial_timeout > 0s) {
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(opt.dial_timeout);
        const auto usecs =
            std::chrono::duration_cast<std::chrono::microseconds>(opt.dial_timeout - secs);
        const timeval tv{secs.count(), static_cast<suseconds_t>(std::max(usecs.count(), 1L))};
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == -1) {
            ipc::die("setsockopt(SO_SNDTIMEO)");
        }
    }
    return fd;
}

}  // namespace

ipc::unique_fd dial(const echo_options& opt, const ipc::network& net,
                    const std::vector<ipc::sock_addr>& addrs) {
    std::string error;
    for (const ipc::sock_addr& to : addrs) {
        ipc::unique_fd fd = make_socket(opt, net, to.family());
        error = connect_one(fd.get(), to, opt.dial_timeout);
        if (!error.empty()) continue;
        // Back to blocking (and no send timeout): the loads bound each wait with epoll or poll.
        const int fl = ::fcntl(fd.get(), F_GETFL);
        if (fl == -1 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) == -1) ipc::die("fcntl");
        const timeval zero{};
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero) == -1) {
            ipc::die("setsockopt(SO_SNDTIMEO, 0)");
        }
        return fd;
    }
    ipc::fail(error);
}

void cpu_meter::restart() {
    client_ = process_cpu();
    server_cpu_ = server_ != 0 ? pid_cpu(server_) : std::nullopt;
}

void cpu_meter::stop() {
    client_ = process_cpu() - client_;
    const auto server_now = server_ != 0 ? pid_cpu(server_) : std::nullopt;
    server_cpu_ =
        server_cpu_ && server_now ? std::optional(*server_now - *server_cpu_) : std::nullopt;
}

std::string cpu_summary(const echo_options& opt, const cpu_meter& cpu, double seconds, double units,
                        std::string_view unit) {
    const std::string loops =
        opt.bulk > 0 ? ""
                     : fmt::format("{} event loop{}, ", opt.threads, opt.threads == 1 ? "" : "s");
    const std::string server = opt.server_pid == 0
                                   ? "server: CPU not measured (--server-pid)"
                                   : fmt::format("server pid {}: {}", opt.server_pid,
                                                 describe_cpu(cpu.server(), seconds, units, unit));
    return fmt::format("client: {}{}; {}", loops, describe_cpu(cpu.client(), seconds, units, unit),
                       server);
}

namespace {

// ---- The command line ----

// Every network name of the notes' table: the datagram ones are refused with a reason.
std::vector<std::string> network_list() {
    std::vector<std::string> names;
    names.reserve(ipc::networks.size());
    for (const ipc::network& n : ipc::networks) names.emplace_back(n.name);
    return names;
}

// What the options say that CLI11 cannot check alone; exits 2 on a contradiction.
const ipc::network& check(echo_options& opt, bool bulk, bool size_given) {
    const ipc::network* net = ipc::find_network(opt.network);  // CLI11 checked the name
    if (!net->stream()) {
        ipc::usage_error(fmt::format("{} needs a stream network (tcp, tcp4, tcp6, unix), not {}",
                                     bulk ? "--bulk" : "echo", opt.network));
    }
    if (bulk && opt.bulk == 0) ipc::usage_error("--bulk: give a size above 0, e.g. 1G");
    if (bulk && !size_given) opt.size = 4096;
    if (opt.size < 2 || opt.size > 65536) {
        ipc::usage_error(fmt::format("--size {}: must be 2 to 64K", opt.size));
    }
    if (opt.threads > opt.conns) {
        ipc::usage_error(
            fmt::format("--threads {}: more event loops than --conns {}", opt.threads, opt.conns));
    }
    if (opt.server_pid != 0 && !pid_cpu(opt.server_pid)) {
        ipc::die(
            fmt::format("--server-pid {}: read(/proc/{}/stat)", opt.server_pid, opt.server_pid));
    }
    return *net;
}

void add_load_options(CLI::App& cmd, echo_options& opt, CLI::Option* bulk) {
    bulk->excludes(cmd.add_option("--conns", opt.conns, "connections, one line in flight on each")
                       ->check(CLI::Range(1, 10000))
                       ->capture_default_str());
    bulk->excludes(cmd.add_option("--requests", opt.requests, "lines to send in all")
                       ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}))
                       ->capture_default_str());
    bulk->excludes(cmd.add_option("--threads", opt.threads,
                                  "client event loops, each a thread with its own epoll "
                                  "instance over its share of the connections: enough that "
                                  "the client is not the bottleneck")
                       ->check(CLI::Range(1, 256))
                       ->capture_default_str());
}

}  // namespace

mode add_echo_mode(CLI::App& app) {
    auto opt = std::make_shared<echo_options>();
    CLI::App* cmd = app.add_subcommand(
        "echo",
        "Load an echo server (echoserver, echoloop, socat PIPE, any line echo): --conns "
        "connections, each sends a --size-byte line and waits for its echo, --requests in all; "
        "prints requests/s and latency p50/p99/max. With --bulk, one connection streams bytes "
        "while reading the echo back; verifies it and prints GiB/s.");
    cmd->add_option("--network", opt->network,
                    "tcp, tcp4, tcp6 or unix: a stream (the datagram networks are refused)")
        ->check(CLI::IsMember(network_list()))
        ->capture_default_str();
    cmd->add_option("--connect", opt->connect,
                    "host:port of the server ([::1]:8000 for IPv6), or for unix its socket path "
                    "(@name: the abstract namespace)")
        ->required();
    auto* bulk = ipc::add_size_option(*cmd, "--bulk", opt->bulk,
                                      "stream this many bytes (e.g. 1G) through one connection "
                                      "while reading the echo back; verifies it, prints GiB/s");
    bulk->default_str("off");
    add_load_options(*cmd, *opt, bulk);
    auto* size =
        ipc::add_size_option(*cmd, "--size", opt->size, "bytes per line, '\\n' included, 2 to 64K");
    size->default_str("32 / --bulk: 4K");
    ipc::add_duration_option(*cmd, "--dial-timeout", opt->dial_timeout,
                             "give up a connect after this long (0: no limit)");
    ipc::add_duration_option(*cmd, "--deadline", opt->deadline,
                             "the longest wait for any echo (0: no limit)");
    ipc::add_duration_option(*cmd, "--duration", opt->duration,
                             "stop starting new work after this long (0: no cap)")
        ->default_str("0");
    cmd->add_option("--server-pid", opt->server_pid,
                    "also report the CPU time this process (the server) spent, from /proc")
        ->check(CLI::Range(1, 1 << 22));
    cmd->add_flag("--json", opt->json, "print the result as one JSON object");
    cmd->footer("Example:\n  ipcbench echo --connect 127.0.0.1:8000 --conns 50 --threads 2");
    return {
        cmd, [opt, bulk, size] {
            const ipc::network& net = check(*opt, bulk->count() > 0, size->count() > 0);
            const auto addrs = ipc::resolve(net, "--connect", opt->connect, ipc::resolve_for::dial);
            return bulk->count() > 0 ? run_bulk(*opt, net, addrs) : run_requests(*opt, net, addrs);
        }};
}

}  // namespace ipcbench
