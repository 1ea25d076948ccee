// echoserver: listen on a socket and write back every line (or datagram) a client sends.
// Usage: echoserver [--network tcp|tcp4|tcp6|unix|unixpacket|udp|unixgram] [--listen ADDR]
//                   [--model thread|epoll] [--timeout 10s] [--max-line 64K] [--max-conns N]
// Demonstrates the notes' "Socket" part (multiprocess-ipc.md): net.Listen and Accept, a goroutine
// (here a thread) per connection or one epoll loop, partial reads framed by ReadBytes('\n'),
// SetDeadline renewed per line, LocalAddr/RemoteAddr, and a graceful stop on SIGTERM.
// Try: echoserver --listen 127.0.0.1:0 -x   then   nc 127.0.0.1 PORT
// See also: echoclient (the other end), socat, nc.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/net.hpp"
#include "ipc/signals.hpp"
#include "ipc/units.hpp"

namespace {

using namespace std::chrono_literals;
using ipc::unique_fd;
using steady = std::chrono::steady_clock;
constexpr steady::time_point never = steady::time_point::max();

struct options {
    std::string network = "tcp";
    std::string listen = "127.0.0.1:8000";
    std::string model = "thread";
    std::chrono::nanoseconds timeout = 10s;
    std::uint64_t max_line = 64 * 1024UL;
    int max_conns = 0;  // 0: no limit but the descriptor limit
    std::chrono::nanoseconds drain = 5s;
    int backlog = SOMAXCONN;
};

using ipc::addr_string;  // the notes' net package, in common/ (ipc/net.hpp)
using ipc::network;
using ipc::networks;
using ipc::sock_addr;

// One line on stdout: the readiness line and the connection log. main() makes stdout
// line-buffered, so each line leaves in one write(2), whole, even into a pipe or a file.
template <typename... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
    fmt::print(stdout, "{}\n", fmt::format(format, std::forward<Args>(args)...));
}

// ---- Addresses ----

// Turns --listen into an address. For tcp and udp: "host:port", the host numeric, a name
// (resolved as net.Listen does, via getaddrinfo), or empty for every address; IPv6 in brackets.
// For the unix networks: a path, or "@name" for the abstract namespace. Bad syntax is a usage
// error (exit 2); a name that does not resolve fails (exit 1), as a failed lookup does in Go.
sock_addr resolve(const network& net, const std::string& text) {
    if (net.family == AF_UNIX) return ipc::unix_addr("--listen", text);
    const ipc::host_port hp = ipc::split_host_port("--listen", text, ipc::port_zero::allowed);
    const std::string& host = hp.host;
    const std::uint16_t port = hp.number;

    sock_addr a;
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    const auto fill_v4 = [&] {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        a.len = sizeof(sockaddr_in);
    };
    const auto fill_v6 = [&] {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        a.len = sizeof(sockaddr_in6);
    };
    const auto wrong_family = [&](std::string_view family) {
        ipc::usage_error(fmt::format("--listen {}: {} is not an {} address, as --network {} needs",
                                     text, host, family, net.name));
    };
    if (host.empty()) {  // every address: "::" takes IPv4 too unless the network is tcp6/udp6
        if (net.family == AF_INET) {
            fill_v4();
            in->sin_addr.s_addr = htonl(INADDR_ANY);
        } else {
            fill_v6();
            in6->sin6_addr = in6addr_any;
        }
        return a;
    }
    if (::inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
        if (net.family == AF_INET6) wrong_family("IPv6");
        fill_v4();
        return a;
    }
    if (::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
        if (net.family == AF_INET) wrong_family("IPv4");
        fill_v6();
        return a;
    }
    addrinfo hints{};
    hints.ai_family = net.family;
    hints.ai_socktype = net.type;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (rc != 0) ipc::fail(fmt::format("getaddrinfo({}): {}", host, ::gai_strerror(rc)));
    std::memcpy(&a.storage, found->ai_addr, found->ai_addrlen);
    a.len = found->ai_addrlen;
    ::freeaddrinfo(found);
    if (a.family() == AF_INET) in->sin_port = htons(port);
    if (a.family() == AF_INET6) in6->sin6_port = htons(port);
    return a;
}

// ---- Listening ----

// The socket file bind(2) creates for a unix network. Removed when the server ends, but only if
// it is still the file we made (same device and inode): one that someone replaced is left alone.
class socket_file {
  public:
    socket_file() = default;
    socket_file(const socket_file&) = delete;
    socket_file& operator=(const socket_file&) = delete;
    ~socket_file() { remove(); }

    void adopt(std::string path) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) == -1) ipc::die(fmt::format("lstat({})", path));
        path_ = std::move(path);
        dev_ = st.st_dev;
        ino_ = st.st_ino;
    }
    void remove() noexcept {
        if (path_.empty()) return;
        const int saved = errno;
        struct stat st {};
        if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
            if (::unlink(path_.c_str()) == 0) {
                ipc::explain("unlink({})", path_);
            } else {
                ipc::warn(fmt::format("unlink({})", path_));
            }
        }
        path_.clear();
        errno = saved;
    }

  private:
    std::string path_;  // empty: nothing to remove
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

// bind(2) fails with EADDRINUSE while a socket file exists, even one left behind by a server that
// was killed. Decide before binding: a path that is not a socket is never touched (exit 1); a
// socket someone still accepts on is in use (exit 1); a socket whose connect(2) is refused
// (ECONNREFUSED: nobody is bound to it any more) is stale and is replaced. The check and the
// unlink are not atomic; two servers started at the same instant could both replace it.
void clear_stale_socket(const std::string& path, const sock_addr& addr, int type) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == -1) {
        if (errno == ENOENT) return;
        ipc::die(fmt::format("lstat({})", path));
    }
    if (!S_ISSOCK(st.st_mode)) {
        ipc::fail(fmt::format("{} exists and is not a socket: not replacing it", path));
    }
    // Non-blocking, so that a live server with a full backlog cannot make us wait.
    const unique_fd probe(::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!probe) ipc::die("socket(AF_UNIX)");
    if (::connect(probe.get(), addr.get(), addr.len) == 0 || errno == EAGAIN) {
        ipc::die_en(EADDRINUSE, fmt::format("bind({}): a server is listening there", path));
    }
    if (errno != ECONNREFUSED)
        ipc::die(fmt::format("connect({}) to probe an existing socket", path));
    ipc::explain("connect({}) = -1 ECONNREFUSED: a stale socket file", path);
    if (::unlink(path.c_str()) == -1) ipc::die(fmt::format("unlink({})", path));
    ipc::warn_en(ECONNREFUSED,
                 fmt::format("replacing the stale socket {}: connect({})", path, path));
}

// net.Listen: socket(2), bind(2), listen(2) for connection networks, then getsockname(2) to learn
// the port the kernel chose for port 0. Updates `addr` to the bound address.
unique_fd open_listener(const network& net, const std::string& text, sock_addr& addr, int backlog,
                        socket_file& file) {
    const int family = addr.family();
    unique_fd fd(::socket(family, net.type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) ipc::die(fmt::format("socket({})", net.name));
    ipc::explain("socket({}) = {}", net.name, fd.get());
    const int one = 1;
    if (family != AF_UNIX && net.type == SOCK_STREAM) {
        // A restarted server may bind while its old connections sit in TIME_WAIT (Go does this
        // too).
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1) {
            ipc::die("setsockopt(SO_REUSEADDR)");
        }
    }
    if (family == AF_INET6) {  // "tcp" on [::] takes IPv4 clients too; "tcp6" only IPv6 ones
        const int v6only = net.family == AF_INET6 ? 1 : 0;
        if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) == -1) {
            ipc::die("setsockopt(IPV6_V6ONLY)");
        }
    }
    const bool path = family == AF_UNIX && text[0] != '@';
    if (path) clear_stale_socket(text, addr, net.type);
    if (::bind(fd.get(), addr.get(), addr.len) == -1) ipc::die(fmt::format("bind({})", text));
    ipc::explain("bind({}, {})", fd.get(), text);
    if (path) file.adopt(text);
    if (net.type != SOCK_DGRAM) {
        if (::listen(fd.get(), backlog) == -1) {
            const int err = errno;
            file.remove();
            ipc::die_en(err, "listen");
        }
        ipc::explain("listen({}, {})", fd.get(), backlog);
    }
    addr.len = sizeof(addr.storage);
    if (::getsockname(fd.get(), addr.get(), &addr.len) == -1) {
        const int err = errno;
        file.remove();
        ipc::die_en(err, "getsockname");
    }
    ipc::explain("getsockname({}) = {}", fd.get(), addr_string(addr));
    return fd;
}

// ---- Accepting, also when out of descriptors ----

struct accepted {
    unique_fd fd;
    sock_addr remote;
};
enum class accept_result { connection, queue_empty, pause };

// accept(2) that survives EMFILE. When the process has no descriptor left, accept fails but the
// connection stays queued, so poll/epoll report the listener readable again at once: a server
// that just retries spins at 100% CPU and serves nobody. The classic way out (libev's manual,
// Marc Lehmann): hold one spare descriptor; on EMFILE close it, accept the connection, tell the
// client and close it, then take the spare back. The queue drains, refused clients learn it at
// once, the server keeps serving the connections it has, and accepts again once some leave.
// (The other way, pausing accept until a connection closes, leaves clients hanging in the queue.)
class acceptor {
  public:
    acceptor(int listener, int flags) : listener_(listener), flags_(flags), spare_(open_spare()) {}

    accept_result next(accepted& out) {
        for (;;) {
            out.remote.len = sizeof(out.remote.storage);
            const int fd = ::accept4(listener_, out.remote.get(), &out.remote.len, flags_);
            if (fd >= 0) {
                out.fd.reset(fd);
                ipc::explain("accept4({}) = {} from {}", listener_, fd, addr_string(out.remote));
                if (refusing_) {
                    say("echoserver: accepting again; {} connections were refused for lack of "
                        "descriptors",
                        refused_);
                    refusing_ = false;
                    refused_ = 0;
                }
                return accept_result::connection;
            }
            switch (errno) {
                case EINTR:
                case ECONNABORTED:  // a client gave up while queued: take the next one
                case EPROTO: continue;
                case EAGAIN: return accept_result::queue_empty;
                case EMFILE:
                case ENFILE:
                    if (!refusing_) {  // once per burst: the state is reported, not every client
                        ipc::warn(fmt::format("accept4({})", listener_));
                        say("echoserver: out of descriptors: refusing new connections until some "
                            "close");
                        refusing_ = true;
                    }
                    if (!spare_) spare_ = open_spare();  // lost earlier: try to take it back
                    if (!spare_) return accept_result::pause;
                    if (!refuse_one()) return accept_result::queue_empty;
                    continue;
                default:  // ENOBUFS, ENOMEM, EPERM (a firewall): wait a little, as Go's Serve does
                    ipc::warn(fmt::format("accept4({})", listener_));
                    return accept_result::pause;
            }
        }
    }

  private:
    static unique_fd open_spare() {
        unique_fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        ipc::explain("open(/dev/null) = {}: the spare descriptor", fd.get());
        return fd;
    }
    // False when the queue turned out empty: with no descriptor free, accept4(2) says EMFILE
    // before it looks at the queue, so EMFILE alone does not mean a client is waiting.
    bool refuse_one() {
        spare_.reset();
        ipc::explain("close(spare): one descriptor free to accept and refuse a client");
        unique_fd client(::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC));
        const int err = errno;
        const bool took = client.valid();
        if (took) {
            constexpr std::string_view msg = "error: server out of file descriptors\n";
            (void)::send(client.get(), msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            ++refused_;
            ipc::explain("accept4({}) = {}: told it and closed it", listener_, client.get());
            client.reset();  // closed first, so that its number is free for the spare again
        } else if (err != EAGAIN && err != ECONNABORTED && err != EINTR) {
            ipc::warn_en(err, fmt::format("accept4({})", listener_));
        }
        spare_ = open_spare();
        return took || err == ECONNABORTED || err == EINTR;  // EINTR, ECONNABORTED: try again
    }

    int listener_;
    int flags_;              // SOCK_CLOEXEC, and SOCK_NONBLOCK for the epoll model
    unique_fd spare_;        // the reserve descriptor; empty only while refusing one client
    bool refusing_ = false;  // in an EMFILE burst
    std::uint64_t refused_ = 0;
};

// ---- Framing: what goes back for what was read ----

// Stream sockets echo whole lines, as ReadBytes('\n') cuts them: the complete lines of a read go
// back as one chunk, an unfinished line waits in `pending` for its '\n'. unixpacket echoes each
// message as it came: one read is one message. A line or message over max_line is refused.
struct framer {
    bool lines = true;
    std::size_t max_line = 0;
    std::string pending;      // the unfinished line, without its '\n' yet
    std::uint64_t units = 0;  // lines (or messages) echoed

    // Appends to `out` what goes back for `in`; false when a line is longer than max_line.
    bool feed(std::string_view in, std::string& out) {
        if (!lines) {
            if (in.size() > max_line) return false;
            out.append(in);
            ++units;
            return true;
        }
        while (!in.empty()) {
            const std::size_t nl = in.find('\n');
            if (nl == std::string_view::npos) {
                if (pending.size() + in.size() > max_line) return false;
                pending.append(in);
                return true;
            }
            if (pending.size() + nl > max_line) return false;
            out.append(pending).append(in.substr(0, nl + 1));
            pending.clear();
            ++units;
            in.remove_prefix(nl + 1);
        }
        return true;
    }

    // At end of stream: the last line even without its '\n', as ReadBytes returns it with io.EOF.
    std::string finish() {
        if (!pending.empty()) ++units;
        return std::exchange(pending, {});
    }
};

// ---- What both models share ----

struct server {
    options opt;
    const network* net = nullptr;
    unique_fd listener;
    unique_fd sigfd;  // SIGINT and SIGTERM arrive here, not in a handler
    std::uint64_t next_id = 1;
    std::uint64_t served = 0;

    [[nodiscard]] bool lines() const { return net->type == SOCK_STREAM; }
    [[nodiscard]] std::string_view unit_name() const { return lines() ? "lines" : "messages"; }
    [[nodiscard]] std::size_t read_size() const {  // a message must fit whole to be measured
        return lines() ? 64 * 1024UL : static_cast<std::size_t>(opt.max_line) + 1;
    }
    [[nodiscard]] bool under_limit(std::size_t open) const {
        return opt.max_conns == 0 || open < static_cast<std::size_t>(opt.max_conns);
    }
    [[nodiscard]] std::string too_long_text() const {
        return fmt::format("error: {} longer than {}\n", lines() ? "line" : "message",
                           ipc::format_size(opt.max_line));
    }
};

constexpr std::string_view idle_text = "error: idle timeout\n";

steady::time_point deadline_after(std::chrono::nanoseconds timeout) {
    return timeout.count() == 0 ? never : steady::now() + timeout;
}

// Milliseconds poll(2) or epoll_wait(2) may sleep until `t`: rounded up, so that it never wakes
// just before the deadline and spins; -1 (no limit) for never.
int ms_until(steady::time_point t) {
    if (t == never) return -1;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - steady::now()).count();
    return static_cast<int>(std::clamp<std::int64_t>(ms, 0, INT_MAX));
}

// Reads one signal from the signalfd: its number, or 0 if none was pending.
int read_signal(int sigfd) {
    signalfd_siginfo si{};
    const ssize_t n = ipc::read_some(sigfd, &si, sizeof si);
    if (n == -1 && errno == EAGAIN) return 0;
    if (n != static_cast<ssize_t>(sizeof si)) ipc::die("read(signalfd)");
    const int sig = static_cast<int>(si.ssi_signo);
    ipc::explain("read(signalfd) = {}", ipc::signal_name(sig));
    return sig;
}

// What both models keep for a connection, and what its log lines report.
struct conn_base {
    std::uint64_t id = 0;
    unique_fd fd;
    std::string remote;  // RemoteAddr()
    std::string local;   // LocalAddr()
    framer frame;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
};

void open_conn(conn_base& c, accepted&& a, server& srv) {
    c.id = srv.next_id++;
    c.fd = std::move(a.fd);
    c.remote = addr_string(a.remote);
    sock_addr local;  // LocalAddr: for a listener on [::] or 0.0.0.0, the address the client used
    if (::getsockname(c.fd.get(), local.get(), &local.len) == -1) {
        ipc::warn("getsockname");
        local.len = 0;
    }
    c.local = local.len == 0 ? "unknown" : addr_string(local);
    c.frame.lines = srv.lines();
    c.frame.max_line = srv.opt.max_line;
    if (local.family() != AF_UNIX) {  // an echo is small and wanted now: no Nagle delay (as Go)
        const int one = 1;
        if (::setsockopt(c.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1) {
            ipc::warn("setsockopt(TCP_NODELAY)");
        }
    }
    ++srv.served;
    say("conn {} open: remote {}, local {}", c.id, c.remote, c.local);
}

void log_close(const conn_base& c, const server& srv, std::string_view reason) {
    say("conn {} closed: remote {}, local {}; {} bytes in, {} bytes out, {} {}; {}", c.id, c.remote,
        c.local, c.bytes_in, c.bytes_out, c.frame.units, srv.unit_name(), reason);
}

// ---- Datagrams (udp, unixgram): one loop for both models ----

// No connections: nothing to accept, no deadline, nothing to drain. Each datagram is read with
// its sender's address and sent back to it (Go's ReadFrom and WriteTo). A unixgram client that
// did not bind a path has no address: it can send, but no reply can reach it.
int serve_datagrams(server& srv, const std::string& local) {
    const int fd = srv.listener.get();
    std::vector<char> buf(srv.read_size());
    for (;;) {
        std::array<pollfd, 2> fds{{{fd, POLLIN, 0}, {srv.sigfd.get(), POLLIN, 0}}};
        if (::poll(fds.data(), fds.size(), -1) == -1) {
            if (errno == EINTR) continue;
            ipc::die("poll");
        }
        if (fds[1].revents != 0) {
            if (const int sig = read_signal(srv.sigfd.get()); sig != 0) {
                say("echoserver: {}: stopped after {} datagrams", ipc::signal_name(sig),
                    srv.served);
                return 0;
            }
        }
        if (fds[0].revents == 0) continue;
        sock_addr from;
        const ssize_t n =
            ::recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT, from.get(), &from.len);
        if (n == -1) {
            if (errno != EAGAIN && errno != EINTR) ipc::warn("recvfrom");
            continue;
        }
        const std::string remote = addr_string(from);
        ipc::explain("recvfrom({}) = {} from {}", fd, n, remote);
        ++srv.served;
        if (remote == "unnamed") {
            say("datagram: remote unnamed, local {}; {} bytes not echoed: the client bound no "
                "address to reply to",
                local, n);
            continue;
        }
        std::string reply(buf.data(), static_cast<std::size_t>(n));
        if (static_cast<std::uint64_t>(n) > srv.opt.max_line) reply = srv.too_long_text();
        // MSG_DONTWAIT: a unixgram client that reads nothing fills its queue; drop, never block.
        if (::sendto(fd, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL, from.get(),
                     from.len) == -1) {
            say("datagram: remote {}, local {}; {} bytes not echoed: {}", remote, local, n,
                ipc::error_text(errno, "sendto"));
            continue;
        }
        say("datagram: remote {}, local {}; {} bytes echoed", remote, local, n);
    }
}

// ---- --model thread: a thread per connection, as Go runs a goroutine per connection ----

// What the connection threads share with the main thread.
struct thread_shared {
    const server& srv;
    int stop_fd;  // eventfd, readable once the server stops: wakes every poll
    std::atomic<bool> stopping{false};
    int done_fd;                      // eventfd a thread bumps as it ends, to wake main
    std::mutex mu;                    // guards done
    std::vector<std::uint64_t> done;  // connections whose thread has ended, for main to join
};

// One connection, served by its own thread. The main thread owns it and closes the socket only
// after pthread_join(), so its shutdown(2) at the drain deadline never hits a reused descriptor.
struct thread_conn : conn_base {
    thread_shared* shared = nullptr;
    pthread_t thread{};
    std::string reason;   // why it ended: written by the thread, read by main after the join
    bool forced = false;  // main shut it down at the drain deadline (main's own field)
};

enum class woke { data, stop, deadline };

// Waits in poll(2) for the socket to be readable, the server to stop (stop_fd; -1: don't watch),
// or the deadline: the blocking Read with a deadline that Go's runtime does for a goroutine.
woke wait_readable(const conn_base& c, int stop_fd, steady::time_point deadline) {
    for (;;) {
        std::array<pollfd, 2> fds{{{c.fd.get(), POLLIN, 0}, {stop_fd, POLLIN, 0}}};
        const int n = ::poll(fds.data(), fds.size(), ms_until(deadline));
        if (n == -1) {
            if (errno == EINTR) continue;
            ipc::die("poll");
        }
        ipc::explain("conn {}: poll() = {}", c.id, n);
        if (fds[0].revents != 0) return woke::data;  // POLLHUP and POLLERR too: recv reports them
        if (fds[1].revents != 0) return woke::stop;
        if (steady::now() >= deadline) return woke::deadline;
    }
}

// send(2) until all is written (a blocking socket only stops early on a signal or SO_SNDTIMEO).
// Returns why it failed, or nullopt.
std::optional<std::string> send_all(conn_base& c, std::string_view data,
                                    std::chrono::nanoseconds timeout) {
    while (!data.empty()) {
        const ssize_t n = ::send(c.fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                return fmt::format("write timeout: the client read nothing for {}",
                                   ipc::format_duration(timeout));
            }
            return ipc::error_text(errno, "send");
        }
        ipc::explain("conn {}: send({}) = {}", c.id, data.size(), n);
        c.bytes_out += static_cast<std::uint64_t>(n);
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return std::nullopt;
}

// The notes' loop, for one connection:
//     for {
//         conn.SetDeadline(time.Now().Add(timeout))
//         line, err := reader.ReadBytes('\n')
//         conn.Write(line)
//     }
// The thread waits in poll() for data, the deadline or the server's stop (a blocking recv(2)
// could not see the last two), then reads what is there. Returns why the connection ended.
std::string serve_conn(thread_conn& c, thread_shared& sh) {
    const options& opt = sh.srv.opt;
    std::vector<char> buf(sh.srv.read_size());
    std::string chunk;
    steady::time_point deadline = deadline_after(opt.timeout);
    bool stopping = false;
    bool more = false;  // the last read filled the buffer: read again before waiting
    const auto idle = [&] {
        (void)send_all(c, idle_text, opt.timeout);
        return fmt::format("idle timeout: no whole line in {}", ipc::format_duration(opt.timeout));
    };
    for (;;) {
        stopping = stopping || sh.stopping.load();
        if (stopping && c.frame.pending.empty()) return "shutdown";  // between two lines
        if (!more) {
            const woke w = wait_readable(c, stopping ? -1 : sh.stop_fd, deadline);
            if (w == woke::deadline) return idle();
            if (w == woke::stop) {
                stopping = true;
                continue;
            }
        }
        const ssize_t n = ::recv(c.fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        more = n == static_cast<ssize_t>(buf.size());
        if (n == -1 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n == -1) return ipc::error_text(errno, "recv");
        ipc::explain("conn {}: recv() = {}", c.id, n);
        if (n == 0) {
            if (auto err = send_all(c, c.frame.finish(), opt.timeout)) return *err;
            return "eof";
        }
        c.bytes_in += static_cast<std::uint64_t>(n);
        chunk.clear();
        const std::uint64_t before = c.frame.units;
        const bool fits = c.frame.feed({buf.data(), static_cast<std::size_t>(n)}, chunk);
        if (auto err = send_all(c, chunk, opt.timeout)) return *err;
        if (!fits) {
            (void)send_all(c, sh.srv.too_long_text(), opt.timeout);
            return fmt::format("{} longer than --max-line {}", c.frame.lines ? "line" : "message",
                               ipc::format_size(opt.max_line));
        }
        if (c.frame.units != before) {
            deadline = deadline_after(opt.timeout);  // SetDeadline again, for the next line
        } else if (steady::now() >= deadline) {      // bytes keep coming, but no line ends
            return idle();
        }
    }
}

// The thread's start routine (pthread_create(3)): serve, then ask main to join it.
void* connection_thread(void* arg) {
    thread_conn& c = *static_cast<thread_conn*>(arg);
    thread_shared& sh = *c.shared;
    c.reason = serve_conn(c, sh);
    {
        const std::lock_guard lock(sh.mu);
        sh.done.push_back(c.id);
    }
    const std::uint64_t one = 1;
    if (::write(sh.done_fd, &one, sizeof one) == -1) ipc::warn("write(eventfd)");
    return nullptr;
}

int run_threads(server& srv) {
    const options& opt = srv.opt;
    const unique_fd stop_fd(::eventfd(0, EFD_CLOEXEC));
    const unique_fd done_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop_fd || !done_fd) ipc::die("eventfd");
    thread_shared sh{srv, stop_fd.get(), {}, done_fd.get(), {}, {}};
    std::map<std::uint64_t, std::unique_ptr<thread_conn>> live;
    acceptor acc(srv.listener.get(), SOCK_CLOEXEC);
    steady::time_point drain_end = never;
    steady::time_point pause_end = steady::now();  // accept errors other than EMFILE: wait a bit
    bool at_limit = false;

    const auto end_conn = [&](std::uint64_t id) {
        const auto it = live.find(id);
        thread_conn& c = *it->second;
        if (const int err = ::pthread_join(c.thread, nullptr); err != 0) {
            ipc::die_en(err, "pthread_join");
        }
        ipc::explain("conn {}: pthread_join(); close({})", c.id, c.fd.get());
        c.fd.reset();
        log_close(c, srv, c.forced ? "drain deadline" : c.reason);
        live.erase(it);
    };

    for (;;) {
        const bool stopping = sh.stopping.load();
        const bool room = srv.under_limit(live.size());
        if (!room && !at_limit && !stopping) {
            say("echoserver: {} connections open (--max-conns {}): not accepting until one closes",
                live.size(), opt.max_conns);
        }
        at_limit = !room;
        const bool accepting = !stopping && room && steady::now() >= pause_end;
        std::array<pollfd, 3> fds{{{srv.sigfd.get(), POLLIN, 0},
                                   {done_fd.get(), POLLIN, 0},
                                   {accepting ? srv.listener.get() : -1, POLLIN, 0}}};
        steady::time_point wake = never;  // else a signal, a thread ending or a client wakes us
        if (stopping) {
            wake = drain_end;
        } else if (room && !accepting) {
            wake = pause_end;
        }
        if (::poll(fds.data(), fds.size(), ms_until(wake)) == -1) {
            if (errno == EINTR) continue;
            ipc::die("poll");
        }
        if (fds[0].revents != 0) {
            if (const int sig = read_signal(srv.sigfd.get()); sig != 0 && !stopping) {
                say("echoserver: {}: not accepting any more; {} open connections finish their "
                    "line (--drain {})",
                    ipc::signal_name(sig), live.size(), ipc::format_duration(opt.drain));
                srv.listener.reset();  // new clients are refused from now on
                drain_end = deadline_after(opt.drain);
                sh.stopping.store(true);
                const std::uint64_t one = 1;
                if (::write(stop_fd.get(), &one, sizeof one) == -1) ipc::die("write(eventfd)");
            } else if (sig != 0) {
                say("echoserver: {} again: closing now", ipc::signal_name(sig));
                drain_end = steady::now();
            }
        }
        if (fds[1].revents != 0) {
            std::uint64_t count = 0;
            if (ipc::read_some(done_fd.get(), &count, sizeof count) == -1 && errno != EAGAIN) {
                ipc::die("read(eventfd)");
            }
            std::vector<std::uint64_t> done;
            {
                const std::lock_guard lock(sh.mu);
                done.swap(sh.done);
            }
            for (const std::uint64_t id : done) end_conn(id);
        }
        while (fds[2].revents != 0 && srv.listener && srv.under_limit(live.size())) {
            accepted a;
            const accept_result r = acc.next(a);
            if (r == accept_result::pause) pause_end = steady::now() + 250ms;
            if (r != accept_result::connection) break;
            auto owned = std::make_unique<thread_conn>();
            thread_conn& c = *owned;
            open_conn(c, std::move(a), srv);
            if (opt.timeout.count() > 0) {  // the write deadline: a send blocks at most this long
                const auto usec =
                    std::chrono::duration_cast<std::chrono::microseconds>(opt.timeout);
                const timeval tv{static_cast<time_t>(usec.count() / 1000000),
                                 static_cast<suseconds_t>(usec.count() % 1000000)};
                if (::setsockopt(c.fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == -1) {
                    ipc::warn("setsockopt(SO_SNDTIMEO)");
                }
            }
            c.shared = &sh;
            if (const int err = ::pthread_create(&c.thread, nullptr, connection_thread, &c);
                err != 0) {
                c.fd.reset();
                log_close(c, srv, ipc::error_text(err, "pthread_create"));
                continue;
            }
            ipc::explain("conn {}: pthread_create() = a thread of its own", c.id);
            live.emplace(c.id, std::move(owned));
        }
        if (sh.stopping.load()) {
            if (live.empty()) break;
            if (steady::now() >= drain_end && drain_end != never) {
                say("echoserver: drain deadline: closing {} connections", live.size());
                for (auto& [id, c] : live) {
                    c->forced = true;
                    // Wakes its thread, in poll() or in send(). ENOTCONN: the client is gone.
                    if (::shutdown(c->fd.get(), SHUT_RDWR) == -1 && errno != ENOTCONN) {
                        ipc::warn(fmt::format("shutdown(conn {})", id));
                    }
                    ipc::explain("conn {}: shutdown(SHUT_RDWR)", id);
                }
                drain_end = never;
            }
        }
    }
    say("echoserver: stopped after {} connections", srv.served);
    return 0;
}

// ---- --model epoll: one thread, non-blocking sockets, an event loop ----

// Level-triggered epoll: a socket stays reported while it has something to read (or room to
// write), so reading a few times per event and coming back later loses nothing, and no client
// can hog the loop. Output a client does not read is queued; past max_backlog the connection is
// not read any more until its queue drains, so memory stays bounded whatever a client does.
constexpr std::size_t max_backlog = 256 * 1024UL;
constexpr int reads_per_event = 16;

struct epoll_conn : conn_base {
    std::deque<std::string> out;  // echoes not yet written; a message per entry for unixpacket
    std::size_t out_offset = 0;   // bytes of out.front() already written
    std::size_t backlog = 0;      // bytes in out not yet written
    std::uint32_t events = 0;     // what epoll watches now
    bool paused = false;          // not reading: backlog over max_backlog, until it drains
    bool broken = false;          // the socket failed: close now, written or not
    std::string closing;          // set: read no more; close once out is written. Says why.
    steady::time_point deadline = never;
    std::list<epoll_conn*>::iterator timer;  // its place in event_loop::timers_
};

class event_loop {
  public:
    explicit event_loop(server& srv)
        : srv_(srv),
          acc_(srv.listener.get(), SOCK_NONBLOCK | SOCK_CLOEXEC),
          buf_(srv.read_size()) {}

    int run() {
        if (!ep_) ipc::die("epoll_create1");
        ipc::explain("epoll_create1() = {}", ep_.get());
        if (const int err = ctl(EPOLL_CTL_ADD, srv_.sigfd.get(), signal_id, EPOLLIN)) {
            ipc::die_en(err, "epoll_ctl(signalfd)");
        }
        if (const int err = ctl(EPOLL_CTL_ADD, srv_.listener.get(), listener_id, EPOLLIN)) {
            ipc::die_en(err, "epoll_ctl(listener)");
        }
        std::array<epoll_event, 64> events{};
        for (;;) {
            rearm_listener();
            steady::time_point wake = timers_.empty() ? never : timers_.front()->deadline;
            if (stopping_) wake = std::min(wake, drain_end_);
            if (!listening_ && !stopping_ && srv_.under_limit(conns_.size()))
                wake = std::min(wake, pause_end_);
            const int n = ::epoll_wait(ep_.get(), events.data(), static_cast<int>(events.size()),
                                       ms_until(wake));
            if (n == -1) {
                if (errno == EINTR) continue;
                ipc::die("epoll_wait");
            }
            ipc::explain("epoll_wait() = {}", n);
            for (int i = 0; i < n; ++i) {
                const std::uint64_t id = events[static_cast<std::size_t>(i)].data.u64;
                const std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
                if (id == signal_id) {
                    on_signal();
                } else if (id == listener_id) {
                    on_listener();
                } else if (const auto it = conns_.find(id); it != conns_.end()) {
                    on_conn(*it->second, ev);  // an id closed earlier in this batch is not found
                }
            }
            expire();
            if (stopping_) {
                if (steady::now() >= drain_end_ && !conns_.empty()) {
                    say("echoserver: drain deadline: closing {} connections", conns_.size());
                    while (!conns_.empty()) close_now(*conns_.begin()->second, "drain deadline");
                }
                if (conns_.empty()) break;
            }
        }
        say("echoserver: stopped after {} connections", srv_.served);
        return 0;
    }

  private:
    // epoll_event.data holds a connection's id, never reused, rather than a pointer or a
    // descriptor: an event for a connection closed earlier in the same batch finds nothing.
    static constexpr std::uint64_t signal_id = 0;
    static constexpr std::uint64_t listener_id = UINT64_MAX;

    // epoll_ctl(2): returns 0, or the error number for the caller to judge.
    int ctl(int op, int fd, std::uint64_t id, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = id;
        if (::epoll_ctl(ep_.get(), op, fd, &ev) == -1) return errno;
        ipc::explain("epoll_ctl({}, {}, {})", op == EPOLL_CTL_ADD ? "ADD" : "MOD", fd,
                     events_string(events));
        return 0;
    }
    static std::string events_string(std::uint32_t events) {
        if (events == 0) return "nothing";
        std::string s = (events & EPOLLIN) != 0 ? "EPOLLIN" : "";
        if ((events & EPOLLOUT) != 0) s += s.empty() ? "EPOLLOUT" : "|EPOLLOUT";
        return s;
    }

    void on_signal() {
        const int sig = read_signal(srv_.sigfd.get());
        if (sig == 0) return;
        if (stopping_) {
            say("echoserver: {} again: closing now", ipc::signal_name(sig));
            drain_end_ = steady::now();
            return;
        }
        say("echoserver: {}: not accepting any more; {} open connections finish their line "
            "(--drain {})",
            ipc::signal_name(sig), conns_.size(), ipc::format_duration(srv_.opt.drain));
        stopping_ = true;
        drain_end_ = deadline_after(srv_.opt.drain);
        srv_.listener.reset();  // close(2) also takes it out of the epoll set
        std::vector<epoll_conn*> all;
        for (auto& [id, c] : conns_) all.push_back(c.get());
        for (epoll_conn* c : all) {
            if (c->frame.pending.empty() && c->closing.empty()) c->closing = "shutdown";
            settle(*c);
        }
    }

    void rearm_listener() {
        const bool want =
            !stopping_ && srv_.under_limit(conns_.size()) && steady::now() >= pause_end_;
        if (want == listening_ || !srv_.listener) return;
        if (!want && !srv_.under_limit(conns_.size())) {
            say("echoserver: {} connections open (--max-conns {}): not accepting until one closes",
                conns_.size(), srv_.opt.max_conns);
        }
        if (const int err =
                ctl(EPOLL_CTL_MOD, srv_.listener.get(), listener_id, want ? EPOLLIN : 0U)) {
            ipc::die_en(err, "epoll_ctl(listener)");
        }
        listening_ = want;
    }

    void on_listener() {
        while (srv_.listener && srv_.under_limit(conns_.size())) {
            accepted a;
            const accept_result r = acc_.next(a);
            if (r == accept_result::pause) pause_end_ = steady::now() + 250ms;
            if (r != accept_result::connection) break;
            auto owned = std::make_unique<epoll_conn>();
            epoll_conn& c = *owned;
            open_conn(c, std::move(a), srv_);
            if (const int err = ctl(EPOLL_CTL_ADD, c.fd.get(), c.id, EPOLLIN)) {  // ENOSPC, ENOMEM
                c.fd.reset();
                log_close(c, srv_, ipc::error_text(err, "epoll_ctl"));
                continue;
            }
            c.events = EPOLLIN;
            c.deadline = deadline_after(srv_.opt.timeout);
            c.timer = timers_.insert(timers_.end(), &c);
            conns_.emplace(c.id, std::move(owned));
        }
        rearm_listener();
    }

    void on_conn(epoll_conn& c, std::uint32_t ev) {
        if ((ev & EPOLLERR) != 0) {
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == -1) err = errno;
            c.closing = ipc::error_text(err, "socket error");
            c.broken = true;
        } else {
            if ((ev & (EPOLLIN | EPOLLHUP)) != 0 && (c.events & EPOLLIN) != 0) read_from(c);
            if ((ev & EPOLLOUT) != 0 && !c.broken) write_to(c);
            if ((ev & EPOLLHUP) != 0 && (c.events & EPOLLIN) == 0 && !c.broken) {
                c.closing = "hang up: the client is gone";  // both directions are closed
                c.broken = true;
            }
        }
        settle(c);
    }

    // Reads what the client sent and echoes it. A read shorter than the buffer means the socket
    // is drained for now: level-triggered epoll reports it again when more comes, so there is
    // no need to read on until recv() says EAGAIN (edge-triggered epoll would need that).
    void read_from(epoll_conn& c) {
        for (int i = 0; i < reads_per_event && c.closing.empty() && c.backlog < max_backlog; ++i) {
            const ssize_t n = ::recv(c.fd.get(), buf_.data(), buf_.size(), 0);
            if (n == -1) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) {
                    ipc::explain("conn {}: recv() = -1 EAGAIN: nothing to read; back to epoll_wait",
                                 c.id);
                    return;
                }
                c.closing = ipc::error_text(errno, "recv");
                c.broken = true;
                return;
            }
            ipc::explain("conn {}: recv() = {}", c.id, n);
            if (n == 0) {
                emit(c, c.frame.finish());
                c.closing = "eof";
                return;
            }
            c.bytes_in += static_cast<std::uint64_t>(n);
            chunk_.clear();
            const std::uint64_t before = c.frame.units;
            const bool fits = c.frame.feed({buf_.data(), static_cast<std::size_t>(n)}, chunk_);
            emit(c, chunk_);
            if (!fits) {
                emit(c, srv_.too_long_text());
                c.closing =
                    fmt::format("{} longer than --max-line {}", c.frame.lines ? "line" : "message",
                                ipc::format_size(srv_.opt.max_line));
                return;
            }
            if (c.frame.units != before) renew(c);
            if (stopping_ && c.frame.pending.empty()) c.closing = "shutdown";
            if (static_cast<std::size_t>(n) < buf_.size()) return;  // drained for now
        }
    }

    // Sends `data` at once if nothing is queued before it, until the socket says EAGAIN; what
    // it does not take waits in c.out for EPOLLOUT. The common case, an echo that fits in the
    // socket buffer, is one send(2) that copies and allocates nothing.
    void emit(epoll_conn& c, std::string_view data) {
        for (std::size_t sent = 1; c.out.empty() && !data.empty() && sent > 0;) {
            sent = send_some(c, data);
            data.remove_prefix(sent);
        }
        if (data.empty() || c.broken) return;
        c.backlog += data.size();
        c.out.emplace_back(data);
    }

    // On EPOLLOUT: writes what is queued until the socket says EAGAIN (or all is written).
    void write_to(epoll_conn& c) {
        while (!c.out.empty()) {
            const std::string& front = c.out.front();
            const std::size_t left = front.size() - c.out_offset;
            const std::size_t sent = send_some(c, {front.data() + c.out_offset, left});
            if (sent == 0) return;  // EAGAIN (EPOLLOUT says when to go on), or broken
            c.backlog -= sent;
            c.out_offset += sent;
            if (c.out_offset == front.size()) {
                c.out.pop_front();
                c.out_offset = 0;
            }
        }
    }

    // One send(2) on the non-blocking socket: returns how many bytes it took, all of them, a
    // part (a partial write: the socket buffer filled up), or 0 (EAGAIN, or an error that
    // marks the connection broken).
    std::size_t send_some(epoll_conn& c, std::string_view data) {
        ssize_t n = 0;
        do {
            n = ::send(c.fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
        } while (n == -1 && errno == EINTR);
        if (n == -1) {
            if (errno == EAGAIN) {
                ipc::explain(
                    "conn {}: send({}) = -1 EAGAIN: the socket buffer is full; those "
                    "bytes wait in the queue for EPOLLOUT",
                    c.id, data.size());
            } else {
                c.closing = ipc::error_text(errno, "send");
                c.broken = true;
            }
            return 0;
        }
        const auto sent = static_cast<std::size_t>(n);
        if (sent < data.size()) {
            ipc::explain("conn {}: send({}) = {}: a partial write; {} bytes left", c.id,
                         data.size(), n, data.size() - sent);
        } else {
            ipc::explain("conn {}: send({}) = {}", c.id, data.size(), n);
        }
        c.bytes_out += sent;
        renew(c);  // the client is reading: progress renews the deadline too
        return sent;
    }

    // After any change to a connection: close it if it is done, else watch what it now needs.
    void settle(epoll_conn& c) {
        if (c.broken || (!c.closing.empty() && c.out.empty())) {
            close_now(c, c.closing);
            return;
        }
        if (!c.paused && c.backlog >= max_backlog) {
            c.paused = true;
            ipc::explain(
                "conn {}: {} bytes queued for a slow reader: stop reading until they drain", c.id,
                c.backlog);
        } else if (c.paused && c.backlog == 0) {
            c.paused = false;
            ipc::explain("conn {}: queue drained: reading again", c.id);
        }
        const std::uint32_t want =
            (c.closing.empty() && !c.paused ? EPOLLIN : 0U) | (c.out.empty() ? 0U : EPOLLOUT);
        if (want == c.events) return;
        if (const int err = ctl(EPOLL_CTL_MOD, c.fd.get(), c.id, want)) {
            close_now(c, ipc::error_text(err, "epoll_ctl"));
            return;
        }
        c.events = want;
    }

    // Every connection's deadline is "now + timeout" when renewed, so moving a renewed one to the
    // back keeps the list sorted: the next deadline to expire is always at the front, in O(1).
    void renew(epoll_conn& c) {
        if (srv_.opt.timeout.count() == 0) return;
        c.deadline = steady::now() + srv_.opt.timeout;
        timers_.splice(timers_.end(), timers_, c.timer);
    }

    void expire() {
        const steady::time_point now = steady::now();
        while (!timers_.empty() && timers_.front()->deadline <= now) {
            epoll_conn& c = *timers_.front();
            const std::string timeout = ipc::format_duration(srv_.opt.timeout);
            if (c.out.empty()) {
                (void)::send(c.fd.get(), idle_text.data(), idle_text.size(),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
                close_now(c, fmt::format("idle timeout: no whole line in {}", timeout));
            } else {
                close_now(c, fmt::format("write timeout: the client read nothing for {}", timeout));
            }
        }
    }

    void close_now(epoll_conn& c, std::string_view reason) {
        ipc::explain("conn {}: close({})", c.id, c.fd.get());
        c.fd.reset();  // close(2) also takes it out of the epoll set
        log_close(c, srv_, reason);
        timers_.erase(c.timer);
        conns_.erase(c.id);
    }

    server& srv_;
    unique_fd ep_{::epoll_create1(EPOLL_CLOEXEC)};
    acceptor acc_;
    std::vector<char> buf_;  // one read buffer for every connection: only one thread reads
    std::string chunk_;      // what goes back for one read, reused
    std::map<std::uint64_t, std::unique_ptr<epoll_conn>> conns_;
    std::list<epoll_conn*> timers_;  // connections by deadline, soonest first
    bool listening_ = true;          // the listener is in the epoll set with EPOLLIN
    bool stopping_ = false;
    steady::time_point drain_end_ = never;
    steady::time_point pause_end_ = steady::now();
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Echo server: accept connections (or datagrams) and write back each line a client sends, "
        "as the notes' net.Listen, Accept and ReadBytes('\\n') example does. Logs each "
        "connection (RemoteAddr, LocalAddr, bytes) on stdout. SIGINT/SIGTERM: stop accepting, "
        "let connections finish their line, exit 0.",
        "echoserver"};
    ipc::setup(app, "echoserver --listen 127.0.0.1:0 --timeout 30s    (then: nc 127.0.0.1 PORT)");
    options opt;
    std::vector<std::string> names;
    names.reserve(networks.size());
    for (const network& n : networks) names.emplace_back(n.name);
    app.add_option("--network", opt.network,
                   "tcp, tcp4, tcp6, unix (streams: echoed line by line), unixpacket (echoed "
                   "message by message), udp, udp4, udp6, unixgram (datagrams: each echoed as is)")
        ->check(CLI::IsMember(names))
        ->capture_default_str();
    app.add_option("--listen", opt.listen,
                   "host:port to listen on (port 0: any free port; [::1]:0 for IPv6), or for "
                   "the unix networks a socket path (@name: Linux's abstract namespace)")
        ->capture_default_str();
    app.add_option("--model", opt.model,
                   "thread: a thread per connection (Go's goroutine per connection); epoll: one "
                   "thread, non-blocking sockets, an event loop")
        ->check(CLI::IsMember({"thread", "epoll"}))
        ->capture_default_str();
    ipc::add_duration_option(app, "--timeout", opt.timeout,
                             "Deadline to read each line, renewed per line (SetDeadline); an idle "
                             "client is told 'error: idle timeout' and closed. 0: none");
    ipc::add_size_option(app, "--max-line", opt.max_line,
                         "Longest line (or message) accepted; a longer one gets an error reply "
                         "and its connection is closed");
    app.add_option("--max-conns", opt.max_conns,
                   "Connections served at once; more wait in the listen queue. 0: no limit")
        ->check(CLI::Range(0, 1000000))
        ->capture_default_str();
    ipc::add_duration_option(app, "--drain", opt.drain,
                             "On SIGINT/SIGTERM, how long open connections may take to finish "
                             "their line");
    app.add_option("--backlog", opt.backlog, "listen(2) queue length")
        ->check(CLI::Range(1, 65535))
        ->capture_default_str();
    ipc::parse(app, argc, argv);

    server srv;
    srv.opt = opt;
    srv.net = ipc::find_network(opt.network);  // CLI11 checked the name against the table
    if (opt.max_line == 0) ipc::usage_error("--max-line: must be at least 1 byte");
    if (srv.net->family == AF_UNIX && app.count("--listen") == 0) {
        ipc::usage_error(fmt::format("--network {} needs --listen PATH (the socket file to create)",
                                     opt.network));
    }

    // SIGINT and SIGTERM are blocked before any thread starts (threads inherit the mask) and read
    // from a signalfd by the main loop: no code runs in a signal handler.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    if (const int err = ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr); err != 0) {
        ipc::die_en(err, "pthread_sigmask");
    }
    srv.sigfd = unique_fd(::signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!srv.sigfd) ipc::die("signalfd");
    ipc::explain("sigprocmask(SIG_BLOCK, SIGINT SIGTERM); signalfd() = {}", srv.sigfd.get());
    // A client that vanishes makes send(2) fail with EPIPE; without this (and MSG_NOSIGNAL on every
    // send) the kernel would kill the whole server with SIGPIPE. It covers stdout too.
    if (::signal(SIGPIPE, SIG_IGN) == SIG_ERR) ipc::die("signal(SIGPIPE)");
    (void)std::setvbuf(stdout, nullptr, _IOLBF, 0);

    sock_addr addr = resolve(*srv.net, opt.listen);
    socket_file file;  // removed when main returns
    srv.listener = open_listener(*srv.net, opt.listen, addr, opt.backlog, file);
    const std::string local = addr_string(addr);
    say("echoserver: listening on {} {}", opt.network, local);
    (void)std::fflush(stdout);

    if (srv.net->type == SOCK_DGRAM) return serve_datagrams(srv, local);
    if (opt.model == "epoll") return event_loop(srv).run();
    return run_threads(srv);
}
