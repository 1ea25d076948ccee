// echoclient: dial an echo server, send lines, check that each comes back the same; or load it.
// Usage: echoclient [--network NET] [--connect ADDR] [--dial-timeout 2s] [--deadline 5s] [-v]
// [LINE...]
//        echoclient --bench [--conns 50] [--requests 200000] [--size 32] [--json]
//        echoclient --bulk 1G [--size 4K] [--json]
// Demonstrates the notes' "Socket" part (multiprocess-ipc.md): net.Dial and DialTimeout (a
// non-blocking connect and poll), Read's partial reads framed by ReadBytes('\n'), SetDeadline
// for each reply, LocalAddr/RemoteAddr; datagrams on udp and unixgram.
// Try: echoclient --connect 127.0.0.1:PORT -v -x hello world     (PORT from echoserver's first
// line) See also: echoserver (the other end), socat, nc.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/net.hpp"
#include "ipc/units.hpp"

namespace {

using namespace std::chrono_literals;
using ipc::unique_fd;
using steady = std::chrono::steady_clock;
constexpr steady::time_point never = steady::time_point::max();

struct options {
    std::string network = "tcp";
    std::string connect = "127.0.0.1:8000";
    std::chrono::nanoseconds dial_timeout = 2s;  // 0: wait as long as the kernel does
    std::chrono::nanoseconds deadline = 5s;      // for each reply; 0: none
    bool verbose = false;
    std::vector<std::string> lines;
    bool bench = false;
    std::uint64_t bulk = 0;  // bytes; 0: no bulk run
    unsigned conns = 50;
    std::uint64_t requests = 200000;
    std::uint64_t size = 32;                 // bytes per line, '\n' included
    std::chrono::nanoseconds duration = 0s;  // a cap on --bench/--bulk; 0: none
    bool json = false;
};

using ipc::addr_string;  // the notes' net package, in common/ (ipc/net.hpp)
using ipc::network;
using ipc::networks;
using ipc::sock_addr;
using ipc::unix_addr;

// Prints "echoclient: message" on stderr in one write(2) and returns exit status 1. The
// conversation code returns instead of exiting, so that destructors (the unixgram client's
// socket file) run.
int complain(std::string_view message) {
    const std::string line = fmt::format("{}: {}\n", ipc::tool_name(), message);
    (void)ipc::write_all(STDERR_FILENO, line.data(), line.size());
    return ipc::exit_failure;
}

// "hello\n" -> "hello\\n", bytes that are not printable ASCII as \xNN; long text is cut.
std::string escaped(std::string_view bytes) {
    std::string out = "\"";
    for (const char ch : bytes.substr(0, 60)) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '"' || c == '\\') {
            out.append({'\\', ch});
        } else if (c >= 0x20 && c < 0x7f) {
            out += ch;
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    return out + (bytes.size() > 60 ? "\"..." : "\"");
}

// ---- Addresses ----

// Turns --connect into the addresses to try, in order, as net.Dial does. For tcp and udp:
// "host:port" with a numeric host, a name (getaddrinfo, as Go's resolver), or an empty host for
// this machine; IPv6 in brackets. For the unix networks: a path, or "@name". Bad syntax is a
// usage error (exit 2); a name that does not resolve fails (exit 1).
std::vector<sock_addr> resolve(const network& net, const std::string& text) {
    if (net.family == AF_UNIX) return {unix_addr("--connect", text)};
    const ipc::host_port hp = ipc::split_host_port("--connect", text, ipc::port_zero::refused);
    const std::string& host = hp.host;
    const std::string& port = hp.port;
    in6_addr probe{};
    const bool v4 = ::inet_pton(AF_INET, host.c_str(), &probe) == 1;
    const bool v6 = ::inet_pton(AF_INET6, host.c_str(), &probe) == 1;
    if ((net.family == AF_INET && v6) || (net.family == AF_INET6 && v4)) {
        ipc::usage_error(fmt::format("--connect {}: {} is not an {} address, as --network {} needs",
                                     text, host, net.family == AF_INET ? "IPv4" : "IPv6",
                                     net.name));
    }

    addrinfo hints{};
    hints.ai_family = net.family;
    hints.ai_socktype = net.type;
    hints.ai_flags = AI_NUMERICSERV | (v4 || v6 ? AI_NUMERICHOST : 0);
    addrinfo* list = nullptr;
    // An empty host is this machine: getaddrinfo(NULL, ...) without AI_PASSIVE gives loopback.
    const int rc =
        ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &list);
    if (rc == EAI_SYSTEM) ipc::die(fmt::format("getaddrinfo({})", host));
    if (rc != 0) ipc::fail(fmt::format("lookup {}: {}", host, ::gai_strerror(rc)));
    std::vector<sock_addr> out;
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        sock_addr a;
        std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
        a.len = ai->ai_addrlen;
        out.push_back(a);
    }
    ::freeaddrinfo(list);
    return out;
}

// ---- Dial: socket(2) and connect(2) within --dial-timeout, as net.DialTimeout ----

// The unixgram client binds a path of its own, or the server could not send a reply back.
// It lives in a private directory made by mkdtemp(3); both are removed when this goes.
class client_socket_path {
  public:
    client_socket_path() {
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl =
            fmt::format("{}/echoclient.XXXXXX", tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
        if (tmpl.size() + std::strlen("/client.sock") >= sizeof(sockaddr_un::sun_path)) {
            ipc::fail(fmt::format("TMPDIR is too long for a socket path: {}", tmpl));
        }
        if (::mkdtemp(tmpl.data()) == nullptr) ipc::die(fmt::format("mkdtemp({})", tmpl));
        dir_ = tmpl;
        path_ = dir_ + "/client.sock";
    }
    client_socket_path(const client_socket_path&) = delete;
    client_socket_path& operator=(const client_socket_path&) = delete;
    ~client_socket_path() {
        ::unlink(path_.c_str());  // a socket file outlives its socket: remove it ourselves
        ::rmdir(dir_.c_str());
    }
    [[nodiscard]] const std::string& path() const { return path_; }

  private:
    std::string dir_;
    std::string path_;
};

std::string type_name(int type) {
    return type == SOCK_STREAM  ? "SOCK_STREAM"
           : type == SOCK_DGRAM ? "SOCK_DGRAM"
                                : "SOCK_SEQPACKET";
}
std::string family_name(int family) {
    return family == AF_INET ? "AF_INET" : family == AF_INET6 ? "AF_INET6" : "AF_UNIX";
}

// Milliseconds for poll(2) until `deadline`: -1 for never, rounded up so we never wake early.
int poll_ms(steady::time_point deadline) {
    if (deadline == never) return -1;
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now()).count();
    return static_cast<int>(std::clamp<std::int64_t>(left, 0, INT32_MAX));
}

struct dialed {
    unique_fd fd;
    std::string error;  // set when fd is empty
};

// One connect(2) to one address. TCP: a non-blocking connect returns EINPROGRESS at once while
// the handshake goes on; poll(2) for POLLOUT waits for it within the time left, and SO_ERROR
// says how it ended. AF_UNIX: a non-blocking connect to a listener whose backlog is full fails
// at once with EAGAIN, and poll cannot wait for room in someone else's backlog; so the unix
// connect blocks, bounded by SO_SNDTIMEO, and EAGAIN then means the time ran out.
// The socket comes back in blocking mode; the conversation bounds each call with poll(2).
dialed dial_one(const network& net, const sock_addr& to, steady::time_point deadline,
                std::chrono::nanoseconds timeout, const client_socket_path* bind_path) {
    const std::string where = fmt::format("connect({})", addr_string(to));
    const bool nonblocking = to.family() != AF_UNIX;
    const int flags = SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
    unique_fd fd{::socket(to.family(), net.type | flags, 0)};
    if (!fd) {
        return {{},
                ipc::error_text(errno, fmt::format("socket({}, {})", family_name(to.family()),
                                                   type_name(net.type)))};
    }
    ipc::explain("socket({}, {}{}|SOCK_CLOEXEC) = {}", family_name(to.family()),
                 type_name(net.type), nonblocking ? "|SOCK_NONBLOCK" : "", fd.get());

    if (bind_path != nullptr) {
        const sock_addr me = unix_addr("unixgram client", bind_path->path());
        if (::bind(fd.get(), me.get(), me.len) == -1) {
            return {{}, ipc::error_text(errno, fmt::format("bind({})", bind_path->path()))};
        }
        ipc::explain("bind({}, {}) = 0: the server sends its replies to this path", fd.get(),
                     bind_path->path());
    }

    if (to.family() == AF_UNIX && net.type != SOCK_DGRAM && deadline != never) {
        const auto left = std::max(deadline - steady::now(), std::chrono::nanoseconds{1000});
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
        const timeval tv{secs.count(), static_cast<suseconds_t>((left - secs).count() / 1000)};
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == -1) {
            return {{}, ipc::error_text(errno, "setsockopt(SO_SNDTIMEO)")};
        }
        ipc::explain(
            "setsockopt({}, SO_SNDTIMEO, {}) = 0: bounds a connect that waits for backlog room",
            fd.get(), ipc::format_duration(left));
    }

    int rc = 0;
    do {
        rc = ::connect(fd.get(), to.get(), to.len);
    } while (rc == -1 && errno == EINTR && to.family() == AF_UNIX);
    if (rc == -1 && errno == EAGAIN && to.family() == AF_UNIX) {
        ipc::explain("connect({}, {}) = -1 EAGAIN: the listener's backlog stayed full", fd.get(),
                     addr_string(to));
        return {
            {},
            fmt::format("{}: timed out after {} (--dial-timeout): the listener's backlog is full "
                        "and nobody accepts (EAGAIN)",
                        where, ipc::format_duration(timeout))};
    }
    if (rc == -1 && (errno == EINPROGRESS || errno == EINTR)) {
        ipc::explain("connect({}, {}) = -1 {}: the handshake goes on; poll for POLLOUT", fd.get(),
                     addr_string(to), ipc::errno_name(errno));
        pollfd p{fd.get(), POLLOUT, 0};
        int ready = 0;
        do {
            ready = ::poll(&p, 1, poll_ms(deadline));
        } while (ready == -1 && errno == EINTR);
        if (ready == -1) return {{}, ipc::error_text(errno, "poll")};
        if (ready == 0) {
            ipc::explain("poll({}, POLLOUT) = 0: no answer to the SYN in time", fd.get());
            return {{},
                    fmt::format("{}: timed out after {} (--dial-timeout)", where,
                                ipc::format_duration(timeout))};
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
            return {{}, ipc::error_text(errno, "getsockopt(SO_ERROR)")};
        }
        ipc::explain("poll({}, POLLOUT) = 1; getsockopt(SO_ERROR) = {}", fd.get(),
                     err == 0 ? "0" : ipc::errno_name(err));
        if (err != 0) return {{}, ipc::error_text(err, where)};
    } else if (rc == -1) {
        return {{}, ipc::error_text(errno, where)};
    } else {
        ipc::explain("connect({}, {}) = 0", fd.get(), addr_string(to));
    }

    if (nonblocking) {
        const int fl = ::fcntl(fd.get(), F_GETFL);
        if (fl == -1 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) == -1) {
            return {{}, ipc::error_text(errno, "fcntl(O_NONBLOCK)")};
        }
    } else if (to.family() == AF_UNIX && net.type != SOCK_DGRAM && deadline != never) {
        const timeval zero{};
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero) == -1) {
            return {{}, ipc::error_text(errno, "setsockopt(SO_SNDTIMEO, 0)")};
        }
    }
    return {std::move(fd), {}};
}

// Tries each address in turn until one connects, all within one --dial-timeout.
dialed dial(const options& opt, const network& net, const std::vector<sock_addr>& addrs,
            const client_socket_path* bind_path = nullptr) {
    const auto deadline = opt.dial_timeout > 0s ? steady::now() + opt.dial_timeout : never;
    dialed last;
    for (const sock_addr& to : addrs) {
        last = dial_one(net, to, deadline, opt.dial_timeout, bind_path);
        if (last.fd) break;
    }
    return last;
}

// ---- Line mode: send each line, read its echo within --deadline, compare ----

// A deadline as SetDeadline sets one: an absolute time, and how long it was set for (for messages).
struct io_deadline {
    steady::time_point at = never;
    std::chrono::nanoseconds length{0};
    static io_deadline after(std::chrono::nanoseconds d) {
        return d > 0s ? io_deadline{steady::now() + d, d} : io_deadline{};
    }
    [[nodiscard]] std::string left() const {
        return at == never ? "no deadline"
                           : fmt::format("{} left", ipc::format_duration(at - steady::now()));
    }
};

// Waits until fd is ready for `events`; false when the deadline passes first.
bool wait_ready(int fd, short events, steady::time_point deadline) {
    pollfd p{fd, events, 0};
    for (;;) {
        const int ready = ::poll(&p, 1, poll_ms(deadline));
        if (ready == -1 && errno == EINTR) continue;
        if (ready == -1) ipc::die("poll");
        return ready == 1;
    }
}

// The lines to send: the arguments, or stdin's lines (the last may lack its '\n').
class line_source {
  public:
    explicit line_source(const std::vector<std::string>& args)
        : args_(args), from_stdin_(args.empty()) {}

    // The next line without its '\n', or nullopt at the end.
    std::optional<std::string> next() {
        if (!from_stdin_) {
            if (next_arg_ == args_.size()) return std::nullopt;
            return args_[next_arg_++];
        }
        for (;;) {
            const std::size_t nl = buf_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            if (eof_) {
                if (buf_.empty()) return std::nullopt;
                return std::exchange(buf_, {});
            }
            char chunk[4096];
            const ssize_t n = ipc::read_some(STDIN_FILENO, chunk, sizeof chunk);
            if (n == -1) ipc::die("read(stdin)");
            if (n == 0) eof_ = true;
            buf_.append(chunk, static_cast<std::size_t>(n));
        }
    }

  private:
    const std::vector<std::string>& args_;
    bool from_stdin_;
    std::size_t next_arg_ = 0;
    std::string buf_;  // stdin bytes read past the last line handed out
    bool eof_ = false;
};

// Sends all of `data` (one datagram or message on the packet networks) before the deadline.
// MSG_DONTWAIT makes this one call non-blocking; MSG_NOSIGNAL turns SIGPIPE into EPIPE.
// Returns "" or what went wrong.
std::string send_all(int fd, std::string_view data, const io_deadline& deadline, bool stream) {
    std::size_t done = 0;
    do {
        const ssize_t n =
            ::send(fd, data.data() + done, data.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1 && errno == EAGAIN) {
            ipc::explain("send({}) = -1 EAGAIN: the send buffer is full; poll for POLLOUT", fd);
            if (!wait_ready(fd, POLLOUT, deadline.at)) {
                return fmt::format(
                    "send: not done within {} (--deadline): the server stopped reading",
                    ipc::format_duration(deadline.length));
            }
            continue;
        }
        if (n == -1) return ipc::error_text(errno, "send");
        ipc::explain("send({}, {} bytes) = {}{}", fd, data.size() - done, n,
                     done + static_cast<std::size_t>(n) < data.size() ? " (partial write)" : "");
        done += static_cast<std::size_t>(n);
    } while (stream && done < data.size());
    return {};
}

struct reply {
    std::string bytes;
    std::string error;  // set when no whole reply came
};

// Reads one '\n'-terminated line, as bufio.Reader.ReadBytes('\n'): recv returns what has
// arrived (a partial read), `inbox` keeps it until the '\n' comes; bytes after it stay in the
// inbox for the next reply. Gives up at the deadline, at end of stream, or once more bytes
// than `limit` came without a '\n' (they cannot match: memory stays bounded).
reply read_line(int fd, std::string& inbox, std::size_t limit, const io_deadline& deadline) {
    for (;;) {
        const std::size_t nl = inbox.find('\n');
        if (nl != std::string::npos) {
            std::string line = inbox.substr(0, nl + 1);
            inbox.erase(0, nl + 1);
            return {std::move(line), {}};
        }
        if (inbox.size() > limit) return {std::exchange(inbox, {}), {}};
        char chunk[4096];
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1 && errno == EAGAIN) {
            ipc::explain("recv({}) = -1 EAGAIN: nothing yet; poll for POLLIN, {}", fd,
                         deadline.left());
            if (!wait_ready(fd, POLLIN, deadline.at)) {
                return {{},
                        fmt::format("no reply within {} (--deadline); {} bytes of it had come",
                                    ipc::format_duration(deadline.length), inbox.size())};
            }
            continue;
        }
        if (n == -1) return {{}, ipc::error_text(errno, "recv")};
        if (n == 0) {
            ipc::explain("recv({}) = 0: end of stream", fd);
            return {{},
                    fmt::format("connection closed by the server before the reply was complete ({} "
                                "bytes of it had come)",
                                inbox.size())};
        }
        inbox.append(chunk, static_cast<std::size_t>(n));
        ipc::explain("recv({}) = {}{}", fd, n,
                     inbox.find('\n') == std::string::npos
                         ? " (partial read: no '\\n' yet, keep reading)"
                         : "");
    }
}

// Reads one datagram (udp, unixgram) or message (unixpacket): one recv is one whole message.
reply read_message(int fd, std::size_t limit, bool seqpacket, const io_deadline& deadline) {
    std::string buf(std::max<std::size_t>(limit + 1, 65536), '\0');
    for (;;) {
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1 && errno == EAGAIN) {
            ipc::explain("recv({}) = -1 EAGAIN: no {} yet; poll for POLLIN, {}", fd,
                         seqpacket ? "message" : "datagram", deadline.left());
            if (!wait_ready(fd, POLLIN, deadline.at)) {
                return {{},
                        fmt::format("no reply within {} (--deadline)",
                                    ipc::format_duration(deadline.length))};
            }
            continue;
        }
        // On udp, an ICMP "port unreachable" for an earlier send shows up here as ECONNREFUSED.
        if (n == -1) return {{}, ipc::error_text(errno, "recv")};
        // On unixpacket, 0 is end of connection; it would also be an empty message: for an
        // empty line we cannot tell them apart, and take it as the echo.
        if (n == 0 && seqpacket && limit > 0) {
            return {{}, "connection closed by the server before the reply"};
        }
        ipc::explain("recv({}) = {}: one whole {}", fd, n, seqpacket ? "message" : "datagram");
        buf.resize(
            std::min(buf.size(), static_cast<std::size_t>(n)));  // MSG_TRUNC: n is its real length
        return {std::move(buf), {}};
    }
}

void print_addresses(int fd, const options& opt) {
    sock_addr local;
    sock_addr remote;
    if (::getsockname(fd, local.get(), &local.len) == -1) ipc::die("getsockname");
    if (::getpeername(fd, remote.get(), &remote.len) == -1) ipc::die("getpeername");
    const std::string text =
        fmt::format("{0}: LocalAddr {1} {2} (getsockname)\n{0}: RemoteAddr {1} {3} (getpeername)\n",
                    ipc::tool_name(), opt.network, addr_string(local), addr_string(remote));
    (void)ipc::write_all(STDERR_FILENO, text.data(), text.size());
}

int talk(const options& opt, const network& net, const std::vector<sock_addr>& addrs) {
    std::optional<client_socket_path> me;
    if (net.family == AF_UNIX && net.type == SOCK_DGRAM) me.emplace();
    const dialed conn = dial(opt, net, addrs, me ? &*me : nullptr);
    if (!conn.fd) return complain(conn.error);
    const int fd = conn.fd.get();
    if (opt.verbose) print_addresses(fd, opt);

    line_source source(opt.lines);
    std::string inbox;  // stream bytes received past the last reply, as bufio.Reader keeps them
    std::uint64_t count = 0;
    while (const auto line = source.next()) {
        ++count;
        // As SetDeadline before each exchange: one absolute time for the write and the reply.
        const auto deadline = io_deadline::after(opt.deadline);
        const std::string sent = net.stream() ? *line + '\n' : *line;
        if (std::string err = send_all(fd, sent, deadline, net.stream()); !err.empty()) {
            return complain(fmt::format("line {}: {}", count, err));
        }
        const reply r = net.stream()
                            ? read_line(fd, inbox, sent.size(), deadline)
                            : read_message(fd, sent.size(), net.type == SOCK_SEQPACKET, deadline);
        if (!r.error.empty()) return complain(fmt::format("line {}: {}", count, r.error));
        const std::string shown = net.stream() ? r.bytes : r.bytes + '\n';
        if (!ipc::write_all(STDOUT_FILENO, shown.data(), shown.size())) {
            return complain(ipc::error_text(errno, "write(stdout)"));
        }
        if (r.bytes != sent) {
            return complain(
                fmt::format("line {}: the reply differs from what was sent: sent {} ({} bytes), "
                            "got {} ({} bytes)",
                            count, escaped(sent), sent.size(), escaped(r.bytes), r.bytes.size()));
        }
    }
    return 0;
}

// ---- --bench: many connections, one request in flight on each, latency per request ----

// Latencies in a log-scale histogram: 16 buckets per power of two (each about 6% wide), so a
// million requests cost no more memory than ten. The maximum is kept exactly.
class latency_histogram {
  public:
    void record(std::chrono::nanoseconds d) {
        const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0));
        ++counts_[bucket(ns)];
        ++total_;
        max_ = std::max(max_, ns);
    }
    // The latency that a fraction p (0..1) of requests did not exceed: its bucket's upper edge.
    [[nodiscard]] std::uint64_t percentile_ns(double p) const {
        const auto want = std::max<std::uint64_t>(
            1, static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(total_))));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= want) return std::min(upper_edge(i), max_);
        }
        return max_;
    }
    [[nodiscard]] std::uint64_t max_ns() const { return max_; }

  private:
    static constexpr unsigned sub_bits = 4;  // 2^4 = 16 buckets per power of two
    static std::size_t bucket(std::uint64_t ns) {
        if (ns < 16) return ns;
        const auto exp = static_cast<unsigned>(std::bit_width(ns) - 1);  // 2^exp <= ns < 2^(exp+1)
        const std::uint64_t sub = (ns >> (exp - sub_bits)) & 15;  // the 4 bits after the top one
        return std::size_t{exp - sub_bits + 1} * 16 + sub;
    }
    static std::uint64_t upper_edge(std::size_t i) {
        if (i < 16) return i;
        const std::size_t exp = i / 16 + sub_bits - 1;
        return ((16 + i % 16 + 1) << (exp - sub_bits)) - 1;
    }
    std::array<std::uint64_t, std::size_t{61} * 16> counts_{};  // exponents 4..63, and 0..15
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

struct bench_conn {
    unique_fd fd;
    std::string sent;      // the line in flight
    std::string received;  // its echo so far
    std::size_t got = 0;
    steady::time_point sent_at;
};

// Request `seq` on connection `c`: size-1 letters that change with both, then '\n'.
void fill_line(std::string& line, std::size_t c, std::uint64_t seq) {
    for (std::size_t i = 0; i + 1 < line.size(); ++i) {
        line[i] = static_cast<char>('a' + (c + seq + i) % 26);
    }
    line.back() = '\n';
}

// One thread, one epoll loop for every connection (as a load generator should: 50 blocked
// threads would spend the CPU the server needs on context switches). Each connection has one
// request in flight: send a line, wait for its echo, send the next.
int bench(const options& opt, const network& net, const std::vector<sock_addr>& addrs) {
    std::vector<bench_conn> conns(opt.conns);
    for (bench_conn& c : conns) {
        dialed d = dial(opt, net, addrs);
        if (!d.fd) return complain(d.error);
        c.fd = std::move(d.fd);
        c.sent.assign(opt.size, '\0');
        c.received.assign(opt.size, '\0');
    }
    unique_fd ep{::epoll_create1(EPOLL_CLOEXEC)};
    if (!ep) ipc::die("epoll_create1");
    for (std::size_t i = 0; i < conns.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, conns[i].fd.get(), &ev) == -1) {
            ipc::die("epoll_ctl(EPOLL_CTL_ADD)");
        }
    }
    ipc::explain("epoll_create1() = {}; {} connections added for EPOLLIN", ep.get(), conns.size());

    latency_histogram latencies;
    std::uint64_t issued = 0;
    std::uint64_t done = 0;
    const auto start = steady::now();
    const auto stop_at = opt.duration > 0s ? start + opt.duration : never;
    // A blocking send: the line is small and the send buffer empty, as the last echo came back.
    const auto issue = [&](std::size_t i) -> std::string {
        bench_conn& c = conns[i];
        fill_line(c.sent, i, issued++);
        c.got = 0;
        c.sent_at = steady::now();
        if (!ipc::write_all(c.fd.get(), c.sent.data(), c.sent.size())) {
            return ipc::error_text(errno, "write");
        }
        return {};
    };
    for (std::size_t i = 0; i < conns.size() && issued < opt.requests; ++i) {
        if (std::string err = issue(i); !err.empty()) return complain(err);
    }
    std::array<epoll_event, 64> events{};
    while (done < issued) {
        const auto wait_until = opt.deadline > 0s ? steady::now() + opt.deadline : never;
        const int n = ::epoll_wait(ep.get(), events.data(), static_cast<int>(events.size()),
                                   poll_ms(wait_until));
        if (n == -1 && errno == EINTR) continue;
        if (n == -1) ipc::die("epoll_wait");
        if (n == 0) {
            return complain(
                fmt::format("bench: no echo for {} (--deadline) with {} requests in flight",
                            ipc::format_duration(opt.deadline), issued - done));
        }
        for (int e = 0; e < n; ++e) {
            const std::size_t i = events[static_cast<std::size_t>(e)].data.u64;
            bench_conn& c = conns[i];
            const ssize_t r =
                ::recv(c.fd.get(), c.received.data() + c.got, c.sent.size() - c.got, MSG_DONTWAIT);
            if (r == -1 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r == -1) {
                return complain(ipc::error_text(errno, fmt::format("recv(connection {})", i)));
            }
            if (r == 0) {
                return complain(fmt::format("bench: connection {} closed by the server", i));
            }
            c.got += static_cast<std::size_t>(r);
            if (c.got < c.sent.size()) continue;  // a partial read: the rest of the echo is coming
            const auto now = steady::now();
            latencies.record(now - c.sent_at);
            ++done;
            if (c.received != c.sent) {
                return complain(
                    fmt::format("bench: connection {}: the echo differs: sent {}, got {}", i,
                                escaped(c.sent), escaped(c.received)));
            }
            if (issued < opt.requests && now < stop_at) {
                if (std::string err = issue(i); !err.empty()) return complain(err);
            }
        }
    }
    const double seconds = std::chrono::duration<double>(steady::now() - start).count();
    const double rate = static_cast<double>(done) / seconds;
    const auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
    const double p50 = us(latencies.percentile_ns(0.50));
    const double p99 = us(latencies.percentile_ns(0.99));
    const double max = us(latencies.max_ns());
    if (opt.json) {
        fmt::print(
            "{{\"mode\":\"bench\",\"network\":\"{}\",\"address\":\"{}\",\"conns\":{},\"size\":{},"
            "\"requests\":{},\"seconds\":{:.3f},\"requests_per_sec\":{:.0f},\"p50_us\":{:.1f},"
            "\"p99_us\":{:.1f},\"max_us\":{:.1f}}}\n",
            opt.network, opt.connect, opt.conns, opt.size, done, seconds, rate, p50, p99, max);
    } else {
        fmt::print("{:<10} {:<22} {:>5} {:>6} {:>9} {:>8} {:>11} {:>9} {:>9} {:>9}\n", "network",
                   "address", "conns", "size", "requests", "seconds", "requests/s", "p50_us",
                   "p99_us", "max_us");
        fmt::print(
            "{:<10} {:<22} {:>5} {:>6} {:>9} {:>8.3f} {:>11.0f} {:>9.1f} {:>9.1f} {:>9.1f}\n",
            opt.network, opt.connect, opt.conns, opt.size, done, seconds, rate, p50, p99, max);
    }
    return 0;
}

// ---- --bulk: stream bytes through one connection, read the echo back, verify it ----

// The stream is a repeating pattern of '\n'-terminated lines (so a line-echo server echoes it
// as it goes); line k of the period differs from line k+1, so a lost or repeated line shows.
std::string bulk_pattern(std::size_t line) {
    const std::size_t lines = std::max<std::size_t>(1, (1U << 20) / line);
    std::string p(lines * line, '\0');
    for (std::size_t k = 0; k < lines; ++k) {
        for (std::size_t i = 0; i + 1 < line; ++i) {
            p[k * line + i] = static_cast<char>('!' + (k + i) % 94);
        }
        p[k * line + line - 1] = '\n';
    }
    return p;
}

constexpr std::size_t bulk_chunk = std::size_t{256} * 1024;  // bytes per send(2) and recv(2)

// A writer thread sends while this thread reads the echo: done one after the other, both ends'
// buffers would fill and the two programs would wait on each other forever.
int bulk(const options& opt, const network& net, const std::vector<sock_addr>& addrs) {
    const dialed conn = dial(opt, net, addrs);
    if (!conn.fd) return complain(conn.error);
    const int fd = conn.fd.get();
    if (opt.verbose) print_addresses(fd, opt);
    const std::string pattern = bulk_pattern(opt.size);
    const std::uint64_t period = pattern.size();
    // The writer says "I am done" through an eventfd, which the reader polls beside the socket.
    unique_fd writer_done{::eventfd(0, EFD_CLOEXEC)};
    if (!writer_done) ipc::die("eventfd");

    std::atomic<bool> stop{false};       // the reader asks the writer to stop early (--duration)
    std::atomic<std::uint64_t> sent{0};  // bytes the writer sent; final once writer_done fires
    std::atomic<int> writer_errno{0};
    const auto start = steady::now();
    std::thread writer([&] {
        std::uint64_t off = 0;
        while (off < opt.bulk && !stop.load(std::memory_order_relaxed)) {
            const std::uint64_t at = off % period;
            const auto chunk = static_cast<std::size_t>(
                std::min<std::uint64_t>({opt.bulk - off, period - at, bulk_chunk}));
            const ssize_t n = ::send(fd, pattern.data() + at, chunk, MSG_NOSIGNAL);
            if (n == -1 && errno == EINTR) continue;
            if (n == -1) {
                writer_errno.store(errno);
                break;
            }
            off += static_cast<std::uint64_t>(n);
        }
        // A half-close, as the end of what we send: the server's read returns 0 once it has all.
        if (::shutdown(fd, SHUT_WR) == -1 && writer_errno.load() == 0) writer_errno.store(errno);
        sent.store(off);
        const std::uint64_t one = 1;
        (void)ipc::write_all(writer_done.get(), &one, sizeof one);
    });

    std::vector<char> buf(bulk_chunk);
    std::uint64_t received = 0;
    bool writer_finished = false;
    bool eof = false;  // the server closed: judge once the writer's count is final
    std::string failure;
    const auto closed = [&] {
        return fmt::format("bulk: connection closed by the server after {} of {} bytes echoed",
                           received, writer_finished ? sent.load() : opt.bulk);
    };
    // Compares what came with the pattern at this offset, one piece per wrap of the period.
    const auto verify = [&](std::string_view got) -> std::string {
        while (!got.empty()) {
            const std::uint64_t at = received % period;
            const auto piece =
                static_cast<std::size_t>(std::min<std::uint64_t>(got.size(), period - at));
            if (std::memcmp(got.data(), pattern.data() + at, piece) != 0) {
                std::size_t k = 0;
                while (got[k] == pattern[at + k]) ++k;
                return fmt::format("bulk: the echo differs at byte {}: sent {}, got {}",
                                   received + k,
                                   escaped(std::string_view(pattern).substr(at + k, 16)),
                                   escaped(got.substr(k, 16)));
            }
            got.remove_prefix(piece);
            received += piece;
        }
        if (received > (writer_finished ? sent.load() : opt.bulk)) {
            return fmt::format("bulk: the server echoed more bytes ({}) than were sent", received);
        }
        return {};
    };
    const auto stop_at = opt.duration > 0s ? start + opt.duration : never;
    while (failure.empty() && !(writer_finished && (eof || received == sent.load()))) {
        if (steady::now() >= stop_at) stop.store(true, std::memory_order_relaxed);
        // Read first, as Go's netpoller does; poll only when there is nothing to read.
        if (!eof) {
            const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
            if (n > 0) {
                failure = verify({buf.data(), static_cast<std::size_t>(n)});
                continue;
            }
            if (n == 0) {
                eof = true;
                continue;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN) {
                failure = fmt::format("bulk: after {} bytes echoed: {}", received,
                                      ipc::error_text(errno, "recv"));
                continue;
            }
        }
        // Nothing to read: wait for the echo, the writer's end, the deadline or --duration.
        const auto deadline = opt.deadline > 0s ? steady::now() + opt.deadline : never;
        const auto wake =
            stop.load(std::memory_order_relaxed) ? deadline : std::min(deadline, stop_at);
        // poll(2) skips an entry whose fd is negative.
        std::array<pollfd, 2> p{
            {{eof ? -1 : fd, POLLIN, 0}, {writer_finished ? -1 : writer_done.get(), POLLIN, 0}}};
        const int ready = ::poll(p.data(), p.size(), poll_ms(wake));
        if (ready == -1 && errno == EINTR) continue;
        if (ready == -1) ipc::die("poll");
        if (ready == 0 && steady::now() >= deadline) {
            failure = eof ? closed()
                          : fmt::format("bulk: no echo for {} (--deadline) after {} bytes",
                                        ipc::format_duration(opt.deadline), received);
        }
        if (!writer_finished && p[1].revents != 0) {
            std::uint64_t value = 0;
            if (ipc::read_some(writer_done.get(), &value, sizeof value) == -1) {
                ipc::die("read(eventfd)");
            }
            // A failed send ends the writer; the reader goes on, to report what the server did.
            writer_finished = true;
        }
    }
    if (failure.empty() && eof && received != sent.load()) failure = closed();
    if (!failure.empty()) {
        // Unblocks a writer stuck in send(2): close(2) would not, and could even let the number
        // be reused under it. shutdown(2) makes its send return EPIPE at once.
        stop.store(true);
        (void)::shutdown(fd, SHUT_RDWR);
    }
    writer.join();
    if (failure.empty() && writer_errno.load() != 0) {
        failure = ipc::error_text(writer_errno.load(), "send");
    }
    if (!failure.empty()) return complain(failure);

    const double seconds = std::chrono::duration<double>(steady::now() - start).count();
    const double gib = static_cast<double>(received) / static_cast<double>(1ULL << 30);
    if (opt.json) {
        fmt::print(
            "{{\"mode\":\"bulk\",\"network\":\"{}\",\"address\":\"{}\",\"line\":{},\"bytes\":{},"
            "\"seconds\":{:.3f},\"gib_per_sec\":{:.3f}}}\n",
            opt.network, opt.connect, opt.size, received, seconds, gib / seconds);
    } else {
        fmt::print("{:<10} {:<22} {:>6} {:>12} {:>8} {:>7}\n", "network", "address", "line",
                   "bytes", "seconds", "GiB/s");
        fmt::print("{:<10} {:<22} {:>6} {:>12} {:>8.3f} {:>7.3f}\n", opt.network, opt.connect,
                   opt.size, received, seconds, gib / seconds);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Dial an echo server (net.Dial / DialTimeout), send each LINE (or each line of stdin), "
        "print "
        "each reply and check it is what was sent; exit 0 only if every reply matched. Each reply "
        "must come within --deadline (SetDeadline). --bench and --bulk measure the server.",
        "echoclient"};
    ipc::setup(app, "echoclient --connect 127.0.0.1:8000 -v hello world");
    options opt;
    std::vector<std::string> names;
    names.reserve(networks.size());
    for (const network& n : networks) names.emplace_back(n.name);
    app.add_option(
           "--network", opt.network,
           "tcp, tcp4, tcp6, unix (streams: one '\\n'-terminated line per LINE), unixpacket "
           "(one message per LINE), udp, udp4, udp6, unixgram (one datagram per LINE)")
        ->check(CLI::IsMember(names))
        ->capture_default_str();
    app.add_option(
           "--connect", opt.connect,
           "host:port of the server ([::1]:8000 for IPv6), or for the unix networks its socket "
           "path (@name: the abstract namespace)")
        ->capture_default_str();
    ipc::add_duration_option(
        app, "--dial-timeout", opt.dial_timeout,
        "give up connecting after this long, as net.DialTimeout (0: no limit)");
    ipc::add_duration_option(
        app, "--deadline", opt.deadline,
        "each line's send and its reply must be done within this (0: no limit); "
        "in --bench/--bulk, the longest wait for any echo");
    app.add_flag(
        "-v,--verbose", opt.verbose,
        "print both ends of the connection on stderr: LocalAddr (getsockname) and RemoteAddr "
        "(getpeername)");
    app.add_option("LINE", opt.lines, "lines to send; without any, the lines of stdin");
    auto* bench_flag =
        app.add_flag("--bench", opt.bench,
                     "load mode: --conns connections, each sends a line and waits for its "
                     "echo, --requests in all; prints requests/s and latency p50/p99/max");
    auto* bulk_opt =
        ipc::add_size_option(app, "--bulk", opt.bulk,
                             "stream this many bytes (e.g. 1G) through one connection while "
                             "reading the echo back; verifies it and prints GiB/s");
    bulk_opt->default_str("off");
    bench_flag->excludes(bulk_opt);
    app.add_option("--conns", opt.conns, "--bench: connections, one request in flight on each")
        ->check(CLI::Range(1, 10000))
        ->capture_default_str();
    app.add_option("--requests", opt.requests, "--bench: requests in all")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}))
        ->capture_default_str();
    auto* size_opt =
        ipc::add_size_option(app, "--size", opt.size,
                             "bytes per line, '\\n' included (--bench: 32; --bulk: 4K), 2 to 64K");
    size_opt->default_str("32 / 4K");
    ipc::add_duration_option(app, "--duration", opt.duration,
                             "--bench/--bulk: stop starting new work after this long (0: no cap)")
        ->default_str("0");
    app.add_flag("--json", opt.json, "--bench/--bulk: print the result as one JSON object");
    ipc::parse(app, argc, argv);

    const bool bulk_mode = bulk_opt->count() > 0;
    const network* net = ipc::find_network(opt.network);  // CLI11 checked the name
    if ((opt.bench || bulk_mode) && !net->stream()) {
        ipc::usage_error(fmt::format("--{} needs a stream network (tcp, tcp4, tcp6, unix), not {}",
                                     opt.bench ? "bench" : "bulk", opt.network));
    }
    if ((opt.bench || bulk_mode) && !opt.lines.empty()) {
        ipc::usage_error(fmt::format("--{} sends its own lines: no LINE arguments",
                                     opt.bench ? "bench" : "bulk"));
    }
    if (bulk_mode && opt.bulk == 0) ipc::usage_error("--bulk: give a size above 0, e.g. 1G");
    if (bulk_mode && size_opt->count() == 0) opt.size = 4096;
    if (opt.size < 2 || opt.size > 65536) {
        ipc::usage_error(fmt::format("--size {}: must be 2 to 64K", opt.size));
    }

    const std::vector<sock_addr> addrs = resolve(*net, opt.connect);
    // A server that vanishes must not kill us with SIGPIPE: MSG_NOSIGNAL covers the sockets,
    // and ignoring it covers stdout (a closed pipe gives EPIPE, reported like any error).
    if (::signal(SIGPIPE, SIG_IGN) == SIG_ERR) ipc::die("signal(SIGPIPE)");

    if (opt.bench) return bench(opt, *net, addrs);
    if (bulk_mode) return bulk(opt, *net, addrs);
    return talk(opt, *net, addrs);
}
