// echoclient: dial an echo server, send lines, check that each one comes back the same.
// Usage: echoclient [--network NET] [--connect ADDR] [--dial-timeout 2s] [--deadline 5s] [-v]
//                   [-x] [LINE...]
// Demonstrates the notes' "Socket" part (multiprocess-ipc.md): net.Dial and DialTimeout (a
// non-blocking connect and poll), Read's partial reads framed by ReadBytes('\n'), SetDeadline
// for each reply, LocalAddr/RemoteAddr; datagrams on udp and unixgram.
// Try: echoclient --connect 127.0.0.1:PORT -v -x hello world   (PORT: echoserver's first line)
// See also: echoserver, echoloop, echodgram (the other end); ipcbench echo (load); socat, nc.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "client.hpp"
#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/net.hpp"
#include "ipc/output.hpp"
#include "ipc/text.hpp"
#include "ipc/units.hpp"

namespace {

using namespace std::chrono_literals;
using ipc::sock_addr;
using ipc::steady;
using ipc::unique_fd;

struct options {
    std::string network = "tcp";
    std::string connect = "127.0.0.1:8000";      // the notes' address
    std::chrono::nanoseconds dial_timeout = 2s;  // 0: wait as long as the kernel does
    std::chrono::nanoseconds deadline = 5s;      // for each line and its reply; 0: none
    bool verbose = false;
    std::vector<std::string> lines;
    const ipc::network* net = nullptr;
};

options parse_command_line(int argc, char** argv) {
    for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--bench" || arg.starts_with("--bulk")) {
            ipc::usage_error(
                fmt::format("{}: the load generators moved to the benchmark tool: "
                            "run ipcbench echo --connect ADDR",
                            arg.substr(0, arg.find('='))));
        }
    }
    CLI::App app{
        "Dial an echo server (net.Dial / DialTimeout), send each LINE (or each line of stdin), "
        "print each reply and check it is what was sent; exit 0 only if every reply matched. "
        "Each reply must come within --deadline (SetDeadline). To load a server: ipcbench echo.",
        "echoclient"};
    ipc::setup(app, "echoclient --connect 127.0.0.1:8000 -v hello world");
    options opt;
    std::vector<std::string> names;
    for (const ipc::network& n : ipc::networks) names.emplace_back(n.name);
    app.add_option("--network", opt.network,
                   "tcp, tcp4, tcp6, unix (streams: one '\\n'-terminated line per LINE), "
                   "unixpacket (one message per LINE), udp, udp4, udp6, unixgram (one datagram "
                   "per LINE)")
        ->check(CLI::IsMember(names))
        ->capture_default_str();
    app.add_option("--connect", opt.connect,
                   "host:port of the server ([::1]:8000 for IPv6), or for the unix networks its "
                   "socket path (@name: the abstract namespace)")
        ->capture_default_str();
    ipc::add_duration_option(app, "--dial-timeout", opt.dial_timeout,
                             "give up connecting after this long, as net.DialTimeout (0: no "
                             "limit)");
    ipc::add_duration_option(app, "--deadline", opt.deadline,
                             "each line's send and its reply must be done within this (0: no "
                             "limit)");
    app.add_flag("-v,--verbose", opt.verbose,
                 "print both ends of the connection on stderr: LocalAddr (getsockname) and "
                 "RemoteAddr (getpeername)");
    app.add_option("LINE", opt.lines, "lines to send; without any, the lines of stdin");
    ipc::parse(app, argc, argv);
    opt.net = ipc::find_network(opt.network);  // CLI11 checked the name
    return opt;
}

// ---- Dial: socket(2) and connect(2) within --dial-timeout, as net.DialTimeout ----

// Waits until fd is ready for `events`; false when the deadline passes first.
bool wait_ready(int fd, short events, steady::time_point deadline) {
    pollfd p{fd, events, 0};
    for (;;) {
        const int ready = ::poll(&p, 1, ipc::ms_until(deadline));
        if (ready == -1 && errno == EINTR) continue;
        if (ready == -1) ipc::die("poll");
        return ready == 1;
    }
}

// "AF_INET, SOCK_STREAM": socket(2)'s first two arguments, for messages.
std::string describe_socket(const sock_addr& to, int type) {
    const int f = to.family();
    const char* family = f == AF_INET ? "AF_INET" : f == AF_INET6 ? "AF_INET6" : "AF_UNIX";
    const char* kind = type == SOCK_STREAM  ? "SOCK_STREAM"
                       : type == SOCK_DGRAM ? "SOCK_DGRAM"
                                            : "SOCK_SEQPACKET";
    return fmt::format("{}, {}", family, kind);
}

// A connect(2) that did not finish at once. TCP: the handshake goes on (EINPROGRESS); poll(2)
// for POLLOUT waits for it within the time left, and SO_ERROR says how it ended.
std::string await_connect(int fd, const sock_addr& to, steady::time_point deadline,
                          const options& opt) {
    ipc::explain("connect({}, {}) = -1 {}: the handshake goes on; poll for POLLOUT", fd,
                 ipc::addr_string(to), ipc::errno_name(errno));
    const std::string where = fmt::format("connect({})", ipc::addr_string(to));
    if (!wait_ready(fd, POLLOUT, deadline)) {
        ipc::explain("poll({}, POLLOUT) = 0: no answer to the SYN in time", fd);
        return fmt::format("{}: timed out after {} (--dial-timeout)", where,
                           ipc::format_duration(opt.dial_timeout));
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        return ipc::error_text(errno, "getsockopt(SO_ERROR)");
    }
    ipc::explain("poll({}, POLLOUT) = 1; getsockopt(SO_ERROR) = {}", fd,
                 err == 0 ? "0" : ipc::errno_name(err));
    return err == 0 ? "" : ipc::error_text(err, where);
}

// AF_UNIX: a non-blocking connect to a listener whose backlog is full fails at once with EAGAIN,
// and poll cannot wait for room in someone else's backlog; so the unix connect blocks, bounded
// by SO_SNDTIMEO (set before each try to the time left), and EAGAIN then means the time ran out.
std::string bound_unix_connect(int fd, const sock_addr& to, steady::time_point deadline) {
    if (deadline == ipc::never) return "";
    const auto left = std::max<std::chrono::nanoseconds>(deadline - steady::now(), 1us);
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
    const timeval tv{secs.count(), static_cast<suseconds_t>((left - secs).count() / 1000)};
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == -1) {
        return ipc::error_text(errno, "setsockopt(SO_SNDTIMEO)");
    }
    ipc::explain("setsockopt({}, SO_SNDTIMEO, {}) = 0: bounds a connect that waits for {}", fd,
                 ipc::format_duration(left), ipc::addr_string(to));
    return "";
}

// connect(2) on a new socket, until it is done, timed out or refused. EINTR is retried: after
// an interrupted connect the kernel goes on with it, and a second connect says EALREADY (still
// going: wait as for EINPROGRESS) or EISCONN (done).
std::string connect_within(int fd, const sock_addr& to, steady::time_point deadline,
                           const options& opt) {
    const bool unix_stream = to.family() == AF_UNIX && opt.net->type != SOCK_DGRAM;
    for (;;) {
        if (unix_stream) {
            if (std::string err = bound_unix_connect(fd, to, deadline); !err.empty()) return err;
        }
        if (::connect(fd, to.get(), to.len) == 0 || errno == EISCONN) {
            ipc::explain("connect({}, {}) = 0", fd, ipc::addr_string(to));
            return "";
        }
        if (errno == EINTR) continue;
        if (errno == EINPROGRESS || errno == EALREADY) return await_connect(fd, to, deadline, opt);
        if (errno != EAGAIN || !unix_stream) {
            return ipc::error_text(errno, fmt::format("connect({})", ipc::addr_string(to)));
        }
        if (steady::now() < deadline) continue;  // not the timeout (nothing else says EAGAIN)
        ipc::explain("connect({}, {}) = -1 EAGAIN: the listener's backlog stayed full", fd,
                     ipc::addr_string(to));
        return fmt::format(
            "connect({}): timed out after {} (--dial-timeout): the listener's "
            "backlog is full and nobody accepts (EAGAIN)",
            ipc::addr_string(to), ipc::format_duration(opt.dial_timeout));
    }
}

struct dialed {
    unique_fd fd;
    std::string error;  // set when fd is empty
};

// One address: socket(2) (non-blocking for TCP, so that the connect can be timed), bind(2) for
// a unixgram client, connect(2). The conversation then sends and receives with MSG_DONTWAIT and
// bounds each wait with poll(2), so neither O_NONBLOCK nor SO_SNDTIMEO matters any more.
dialed dial_one(const sock_addr& to, steady::time_point deadline, const options& opt,
                const echo::client_socket_path* bind_path) {
    const bool nonblocking = to.family() != AF_UNIX;
    const int flags = SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
    unique_fd fd{::socket(to.family(), opt.net->type | flags, 0)};
    const std::string what = describe_socket(to, opt.net->type);
    if (!fd) return {{}, ipc::error_text(errno, fmt::format("socket({})", what))};
    ipc::explain("socket({}{}|SOCK_CLOEXEC) = {}", what, nonblocking ? "|SOCK_NONBLOCK" : "",
                 fd.get());
    if (bind_path != nullptr) {
        const sock_addr me = ipc::unix_addr("unixgram client", bind_path->path());
        if (::bind(fd.get(), me.get(), me.len) == -1) {
            return {{}, ipc::error_text(errno, fmt::format("bind({})", bind_path->path()))};
        }
        ipc::explain("bind({}, {}) = 0: the server sends its replies to this path", fd.get(),
                     bind_path->path());
    }
    if (std::string err = connect_within(fd.get(), to, deadline, opt); !err.empty()) {
        return {{}, std::move(err)};
    }
    return {std::move(fd), {}};
}

// Tries each address in turn until one connects, all within one --dial-timeout.
unique_fd dial(const options& opt, const std::vector<sock_addr>& addrs,
               const echo::client_socket_path* bind_path) {
    const steady::time_point deadline = ipc::deadline_after(opt.dial_timeout);
    dialed last;
    for (const sock_addr& to : addrs) {
        last = dial_one(to, deadline, opt, bind_path);
        if (last.fd) return std::move(last.fd);
    }
    ipc::fail(last.error);
}

// ---- Line mode: send each line, read its echo within --deadline, compare ----

// A deadline as SetDeadline sets one: an absolute time, and how long it was set for (for messages).
struct io_deadline {
    steady::time_point at = ipc::never;
    std::chrono::nanoseconds length{0};
    [[nodiscard]] std::string left() const {
        return at == ipc::never ? "no deadline"
                                : fmt::format("{} left", ipc::format_duration(at - steady::now()));
    }
    [[nodiscard]] std::string length_text() const { return ipc::format_duration(length); }
};

// recv(2) on the blocking socket without blocking (MSG_DONTWAIT): what has arrived, or, when
// nothing has (EAGAIN), a wait in poll(2) within the deadline. EINTR retried. Returns what recv
// returns; -1 with errno ETIMEDOUT when the deadline passed first.
ssize_t recv_by(int fd, std::span<char> buf, int flags, const io_deadline& deadline,
                std::string_view nothing_yet) {
    for (;;) {
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT | flags);
        if (n == -1 && errno == EINTR) continue;
        if (n != -1 || errno != EAGAIN) return n;
        ipc::explain("recv({}) = -1 EAGAIN: {}; poll for POLLIN, {}", fd, nothing_yet,
                     deadline.left());
        if (wait_ready(fd, POLLIN, deadline.at)) continue;
        errno = ETIMEDOUT;
        return -1;
    }
}

// Sends all of `data` (one datagram or message on the packet networks) before the deadline.
// MSG_DONTWAIT makes this one call non-blocking; MSG_NOSIGNAL turns SIGPIPE into EPIPE.
// Returns "" or what went wrong.
std::string send_all(int fd, std::string_view data, const io_deadline& deadline, bool stream) {
    for (std::size_t done = 0;;) {
        const ssize_t n =
            ::send(fd, data.data() + done, data.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1 && errno == EAGAIN) {
            ipc::explain("send({}) = -1 EAGAIN: the send buffer is full; poll for POLLOUT", fd);
            if (wait_ready(fd, POLLOUT, deadline.at)) continue;
            return fmt::format("send: not done within {} (--deadline): the server stopped reading",
                               deadline.length_text());
        }
        if (n == -1) return ipc::error_text(errno, "send");
        ipc::explain("send({}, {} bytes) = {}{}", fd, data.size() - done, n,
                     done + static_cast<std::size_t>(n) < data.size() ? " (partial write)" : "");
        done += static_cast<std::size_t>(n);
        if (!stream || done == data.size()) return {};  // a datagram or message goes whole
    }
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
        if (const std::size_t nl = inbox.find('\n'); nl != std::string::npos) {
            std::string line = inbox.substr(0, nl + 1);
            inbox.erase(0, nl + 1);
            return {std::move(line), {}};
        }
        if (inbox.size() > limit) return {std::exchange(inbox, {}), {}};
        std::array<char, 4096> chunk{};
        const ssize_t n = recv_by(fd, chunk, 0, deadline, "nothing yet");
        if (n == -1 && errno == ETIMEDOUT) {
            return {{},
                    fmt::format("no reply within {} (--deadline); {} bytes of it had come",
                                deadline.length_text(), inbox.size())};
        }
        if (n == -1) return {{}, ipc::error_text(errno, "recv")};
        if (n == 0) {
            ipc::explain("recv({}) = 0: end of stream", fd);
            return {{},
                    fmt::format("connection closed by the server before the reply was complete ({} "
                                "bytes of it had come)",
                                inbox.size())};
        }
        inbox.append(chunk.data(), static_cast<std::size_t>(n));
        ipc::explain("recv({}) = {}{}", fd, n,
                     inbox.find('\n') == std::string::npos
                         ? " (partial read: no '\\n' yet, keep reading)"
                         : "");
    }
}

// Reads one datagram (udp, unixgram) or message (unixpacket): one recv is one whole message.
reply read_message(int fd, std::size_t limit, bool seqpacket, const io_deadline& deadline) {
    std::string buf(std::max<std::size_t>(limit + 1, 65536), '\0');
    const std::string_view kind = seqpacket ? "message" : "datagram";
    // MSG_TRUNC: recv returns the message's real length, even when the buffer is shorter.
    const ssize_t n = recv_by(fd, buf, MSG_TRUNC, deadline, fmt::format("no {} yet", kind));
    if (n == -1 && errno == ETIMEDOUT) {
        return {{}, fmt::format("no reply within {} (--deadline)", deadline.length_text())};
    }
    // On udp, an ICMP "port unreachable" for an earlier send shows up here as ECONNREFUSED.
    if (n == -1) return {{}, ipc::error_text(errno, "recv")};
    // On unixpacket, 0 is end of connection; it would also be an empty message: for an empty
    // line we cannot tell them apart, and take it as the echo.
    if (n == 0 && seqpacket && limit > 0)
        return {{}, "connection closed by the server before the reply"};
    ipc::explain("recv({}) = {}: one whole {}", fd, n, kind);
    buf.resize(std::min(buf.size(), static_cast<std::size_t>(n)));
    return {std::move(buf), {}};
}

// LocalAddr (getsockname) and RemoteAddr (getpeername), on stderr: stdout holds only the echo.
void print_addresses(int fd, const options& opt) {
    sock_addr remote;
    if (::getpeername(fd, remote.get(), &remote.len) == -1) ipc::die("getpeername");
    ipc::complain("LocalAddr {} {} (getsockname)", opt.network,
                  ipc::addr_string(ipc::local_addr(fd)));
    ipc::complain("RemoteAddr {} {} (getpeername)", opt.network, ipc::addr_string(remote));
}

// One line: send it, read its reply, print the reply, compare. Exits 1 on any failure.
void exchange(int fd, const options& opt, const std::string& line, std::uint64_t count,
              std::string& inbox) {
    const bool stream = opt.net->stream();
    // As SetDeadline before each exchange: one absolute time for the write and the reply.
    const io_deadline deadline{ipc::deadline_after(opt.deadline), opt.deadline};
    const std::string sent = stream ? line + '\n' : line;
    if (std::string err = send_all(fd, sent, deadline, stream); !err.empty()) {
        ipc::fail("line {}: {}", count, err);
    }
    const reply r = stream
                        ? read_line(fd, inbox, sent.size(), deadline)
                        : read_message(fd, sent.size(), opt.net->type == SOCK_SEQPACKET, deadline);
    if (!r.error.empty()) ipc::fail("line {}: {}", count, r.error);
    ipc::print(stream ? r.bytes : r.bytes + '\n');
    if (r.bytes != sent) {
        ipc::fail(
            "line {}: the reply differs from what was sent: sent {} ({} bytes), got {} ({} "
            "bytes)",
            count, ipc::quoted(sent, 60), sent.size(), ipc::quoted(r.bytes, 60), r.bytes.size());
    }
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    const std::vector<sock_addr> addrs =
        ipc::resolve(*opt.net, "--connect", opt.connect, ipc::resolve_for::dial);
    // A unixgram client's own path. Static: std::exit (which ipc::fail and a failed write to
    // stdout call) runs the destructors of statics, not of locals, and the file must go then too.
    static std::optional<echo::client_socket_path> me;
    if (opt.net->family == AF_UNIX && opt.net->type == SOCK_DGRAM) me.emplace();
    const unique_fd conn = dial(opt, addrs, me ? &*me : nullptr);
    if (opt.verbose) print_addresses(conn.get(), opt);

    echo::line_source source(opt.lines);
    std::string inbox;  // stream bytes received past the last reply, as bufio.Reader keeps them
    std::uint64_t count = 0;
    while (const auto line = source.next()) exchange(conn.get(), opt, *line, ++count, inbox);
    return 0;
} catch (...) {
    return ipc::internal_error();
}
