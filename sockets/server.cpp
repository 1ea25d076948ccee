#include "server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <cerrno>
#include <utility>

#include <fmt/format.h>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/signals.hpp"
#include "ipc/units.hpp"

namespace echo {

namespace {

std::string_view other_tool(int type) { return type == SOCK_DGRAM ? "echoserver" : "echodgram"; }

}  // namespace

void add_server_options(CLI::App& app, server_options& opt, int type) {
    std::vector<std::string> names;
    for (const ipc::network& n : ipc::networks) names.emplace_back(n.name);
    const bool stream = type == SOCK_STREAM;
    app.add_option("--network", opt.network,
                   stream ? "tcp, tcp4, tcp6, unix (echoed line by line), unixpacket (echoed "
                            "message by message); the datagram networks are echodgram's"
                          : "udp, udp4, udp6, unixgram: each datagram echoed to its sender; the "
                            "stream networks are echoserver's")
        ->check(CLI::IsMember(names))
        ->capture_default_str();
    app.add_option("--listen", opt.listen,
                   "host:port to listen on (port 0: any free port; [::1]:0 for IPv6), or for "
                   "the unix networks a socket path (@name: Linux's abstract namespace)")
        ->capture_default_str();
    ipc::add_size_option(app, "--max-line", opt.max_line,
                         stream ? "Longest line (or message) accepted; a longer one gets an error "
                                  "reply and its connection is closed"
                                : "Longest datagram echoed; a longer one gets an error reply");
    if (!stream) return;
    ipc::add_duration_option(app, "--timeout", opt.timeout,
                             "Deadline to read each line, renewed per line (SetDeadline); an idle "
                             "client is told 'error: idle timeout' and closed. 0: none");
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
}

void check_server_options(const CLI::App& app, server_options& opt, int type) {
    opt.net = ipc::find_network(opt.network);  // CLI11 checked the name against the table
    if ((opt.net->type == SOCK_DGRAM) != (type == SOCK_DGRAM)) {
        ipc::usage_error(fmt::format(
            "--network {}: {} serves {} ({}); {} is {}'s (as Go's net.{} refuses it)", opt.network,
            ipc::tool_name(), type == SOCK_DGRAM ? "datagrams" : "connections",
            type == SOCK_DGRAM ? ipc::network_names(SOCK_DGRAM) : "tcp|tcp4|tcp6|unix|unixpacket",
            opt.network, other_tool(type), type == SOCK_DGRAM ? "ListenPacket" : "Listen"));
    }
    if (opt.max_line == 0) ipc::usage_error("--max-line: must be at least 1 byte");
    if (opt.net->family == AF_UNIX && app.count("--listen") == 0) {
        ipc::usage_error(fmt::format("--network {} needs --listen PATH (the socket file to create)",
                                     opt.network));
    }
}

ipc::unique_fd stop_signals() {
    sigset_t set;
    ::sigemptyset(&set);
    ::sigaddset(&set, SIGINT);
    ::sigaddset(&set, SIGTERM);
    if (const int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
        ipc::die_en(err, "pthread_sigmask");
    }
    ipc::unique_fd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd) ipc::die("signalfd");
    ipc::explain("sigprocmask(SIG_BLOCK, SIGINT SIGTERM); signalfd() = {}", fd.get());
    return fd;
}

int read_signal(int sigfd) {
    signalfd_siginfo si{};
    const ssize_t n = ipc::read_some(sigfd, &si, sizeof si);
    if (n == -1 && errno == EAGAIN) return 0;
    if (n != static_cast<ssize_t>(sizeof si)) ipc::die("read(signalfd)");
    const int sig = static_cast<int>(si.ssi_signo);
    ipc::explain("read(signalfd) = {}", ipc::signal_name(sig));
    return sig;
}

void listener_options(int fd, const ipc::network& net, const ipc::sock_addr& addr, bool reuseport) {
    const int one = 1;
    if (addr.family() != AF_UNIX && net.type == SOCK_STREAM &&
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1) {
        ipc::die("setsockopt(SO_REUSEADDR)");
    }
    if (addr.family() == AF_INET6) {
        const int v6only = net.family == AF_INET6 ? 1 : 0;
        if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) == -1) {
            ipc::die("setsockopt(IPV6_V6ONLY)");
        }
    }
    if (reuseport) {
        if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == -1) {
            ipc::die("setsockopt(SO_REUSEPORT)");
        }
        ipc::explain("setsockopt({}, SO_REUSEPORT, 1)", fd);
    }
}

namespace {

bool is_socket_path(const std::string& path, const ipc::sock_addr& addr) {
    return addr.family() == AF_UNIX && !path.empty() && path[0] != '@';
}

// A static, not main's local: std::exit runs the destructors of statics, not of locals.
ipc::socket_file& the_socket_file() {
    static ipc::socket_file file;
    return file;
}

}  // namespace

void prepare_socket_file(const std::string& path, const ipc::sock_addr& addr, int type) {
    if (is_socket_path(path, addr)) ipc::clear_stale_socket(path, addr, type);
}

void adopt_socket_file(const std::string& path, const ipc::sock_addr& addr) {
    if (is_socket_path(path, addr)) the_socket_file().adopt(path);
}

void say_listening(const server_options& opt, int listener) {
    const ipc::sock_addr bound = ipc::local_addr(listener);  // the port the kernel chose for 0
    ipc::explain("getsockname({}) = {}", listener, ipc::addr_string(bound));
    ipc::say("{}: listening on {} {}", ipc::tool_name(), opt.network, ipc::addr_string(bound));
}

void say_at_limit(std::size_t open, int max_conns) {
    ipc::say("{}: {} connections open (--max-conns {}): not accepting until one closes",
             ipc::tool_name(), open, max_conns);
}

void say_draining(int sig, std::size_t open, std::chrono::nanoseconds drain) {
    ipc::say("{}: {}: not accepting any more; {} open connections finish their line (--drain {})",
             ipc::tool_name(), ipc::signal_name(sig), open, ipc::format_duration(drain));
}

void say_closing_now(int sig) {
    ipc::say("{}: {} again: closing now", ipc::tool_name(), ipc::signal_name(sig));
}

void say_drain_deadline(std::size_t open) {
    ipc::say("{}: drain deadline: closing {} connections", ipc::tool_name(), open);
}

void say_stopped(std::uint64_t served) {
    ipc::say("{}: stopped after {} connections", ipc::tool_name(), served);
}

// ---- Connections ----

connection::connection(std::uint64_t id_, ipc::unique_fd fd_, const ipc::sock_addr& from,
                       const server_options& opt)
    : id(id_),
      fd(std::move(fd_)),
      remote(ipc::addr_string(from)),
      frame(opt.net->type == SOCK_STREAM ? framing::lines : framing::messages, opt.max_line) {
    ipc::sock_addr me;  // LocalAddr: on [::] or 0.0.0.0, the address the client used
    if (::getsockname(fd.get(), me.get(), &me.len) == -1) {
        ipc::warn("getsockname");
        me.len = 0;
    }
    local = me.len == 0 ? "unknown" : ipc::addr_string(me);
    if (me.family() != AF_UNIX) {  // an echo is small and wanted now: no Nagle delay (as Go)
        const int one = 1;
        if (::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1) {
            ipc::warn("setsockopt(TCP_NODELAY)");
        }
    }
}

bool connection::idle() const {
    if (frame.mid_line()) return false;
    char byte = 0;
    ssize_t n = 0;
    do {
        n = ::recv(fd.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (n == -1 && errno == EINTR);
    return n == -1 && errno == EAGAIN;  // bytes, the end, an error: the next read sees them
}

std::string connection::too_long_text(const server_options& opt) const {
    return fmt::format("error: {} longer than {}\n", frame.too_long_name(),
                       ipc::format_size(opt.max_line));
}

std::string connection::too_long_reason(const server_options& opt) const {
    return fmt::format("{} longer than --max-line {}", frame.too_long_name(),
                       ipc::format_size(opt.max_line));
}

std::string connection::idle_reason(const server_options& opt) {
    return fmt::format("idle timeout: no whole line in {}", ipc::format_duration(opt.timeout));
}

std::string connection::write_timeout_reason(const server_options& opt) {
    return fmt::format("write timeout: the client read nothing for {}",
                       ipc::format_duration(opt.timeout));
}

void send_note(int fd, std::string_view text) {
    while (::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT) == -1 &&
           errno == EINTR) {}
}

void log_open(const connection& c, std::string_view extra) {
    ipc::say("conn {} open: remote {}, local {}{}", c.id, c.remote, c.local, extra);
}

void log_close(const connection& c, std::string_view reason) {
    ipc::say("conn {} closed: remote {}, local {}; {} bytes in, {} bytes out, {} {}; {}", c.id,
             c.remote, c.local, c.bytes_in, c.bytes_out, c.frame.units(), c.frame.unit_name(),
             reason);
}

// ---- Accepting, also when out of descriptors ----

namespace {

ipc::unique_fd open_spare() {
    ipc::unique_fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ipc::explain("open(/dev/null) = {}: the spare descriptor", fd.get());
    return fd;
}

}  // namespace

acceptor::acceptor(int listener) : listener_(listener), spare_(open_spare()) {}

void acceptor::accepted() {
    if (!refusing_) return;
    ipc::say("{}: accepting again; {} connections were refused for lack of descriptors",
             ipc::tool_name(), refused_);
    refusing_ = false;
    refused_ = 0;
}

void acceptor::keep_spare() {
    if (!spare_) spare_ = open_spare();
}

after_accept acceptor::failed(int err) {
    switch (err) {
        case EINTR:
        case ECONNABORTED:  // a client gave up while queued: take the next one
        case EPROTO: return after_accept::retry;
        case EAGAIN: return after_accept::queue_empty;
        case EMFILE:
        case ENFILE:
            if (!refusing_) {  // once per burst: the state is reported, not every client
                ipc::warn_en(err, fmt::format("accept4({})", listener_));
                ipc::say("{}: out of descriptors: refusing new connections until some close",
                         ipc::tool_name());
                refusing_ = true;
            }
            if (!spare_) spare_ = open_spare();  // lost earlier: try to take it back
            if (!spare_) return after_accept::pause;
            return refuse_one() ? after_accept::retry : after_accept::queue_empty;
        default:
            ipc::warn_en(err, fmt::format("accept4({})", listener_));
            return after_accept::pause;
    }
}

// False when the queue turned out empty: with no descriptor free, accept4(2) says EMFILE before
// it looks at the queue, so EMFILE alone does not mean a client is waiting.
bool acceptor::refuse_one() {
    spare_.reset();  // one descriptor free, to accept a client and refuse it
    ipc::explain("close(spare): one descriptor free to accept and refuse a client");
    ipc::unique_fd client(::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC));
    const int err = errno;
    const bool took = client.valid();
    if (took) {
        constexpr std::string_view msg = "error: server out of file descriptors\n";
        send_note(client.get(), msg);
        ++refused_;
        ipc::explain("accept4({}) = {}: told it and closed it", listener_, client.get());
        client.reset();  // closed first, so that its number is free for the spare again
    } else if (err != EAGAIN && err != ECONNABORTED && err != EINTR && err != EMFILE &&
               err != ENFILE) {  // EMFILE: another thread took the descriptor; try later
        ipc::warn_en(err, fmt::format("accept4({})", listener_));
    }
    spare_ = open_spare();
    return took || err == ECONNABORTED || err == EINTR;  // EINTR, ECONNABORTED: try again
}

}  // namespace echo
