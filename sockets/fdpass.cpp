// fdpass: pass open descriptors between unrelated processes over a unix socket.
// Usage: fdpass send -s PATH -f FILE [--offset N] | receive -s PATH | demo
//   | serve-listener -s PATH [-l ADDR] [--count N] [--handover-timeout D]
//   | take-listener -s PATH [--count N] [--handover-timeout D]
// Demonstrates SCM_RIGHTS and SCM_CREDENTIALS, which only AF_UNIX of "Socket" (multiprocess-ipc.md)
// carries: a descriptor and its sender's identity. Here: that mechanism and the command line.
// Try: fdpass demo -x
// See also: fdpass_file.cpp, fdpass_handover.cpp, fdpass_demo.cpp; graceful (fd 3 to a child)
#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "fdpass.hpp"
#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/signals.hpp"

namespace fdpass {

namespace {
constexpr std::size_t max_line = PATH_MAX + 16;  // the longest line: "file " and a path
constexpr std::size_t max_fds = 4;  // room for more than we expect, so extras arrive and are closed

// Every descriptor and credential in the control data, taken out at once: each descriptor is
// then owned (closed by its unique_fd) whatever happens next.
void take_control(msghdr& msg, message& m) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_RIGHTS) {
            const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < n; ++i) {
                int fd = -1;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                m.fds.emplace_back(fd);
            }
        } else if (c->cmsg_type == SCM_CREDENTIALS && !m.sender) {
            ucred cred{};
            std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
            m.sender = cred;
        }
    }
}
}  // namespace

int send_descriptor(int sock, int fd, std::string_view line) {
    iovec iov{const_cast<char*>(line.data()), line.size()};  // at least one byte must go with it
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    do {
        n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);
    if (n == -1) return errno;
    ipc::explain("sendmsg({}, {:?}, SCM_RIGHTS [{}]) = {}", sock, line, fd, n);
    // A stream socket may take part of the bytes: the descriptor went with the first of them,
    // and the rest are plain bytes.
    const auto sent = static_cast<std::size_t>(n);
    if (sent < line.size() && !ipc::write_all(sock, line.data() + sent, line.size() - sent))
        return errno;
    return 0;
}

std::optional<message> receive_message(int sock, int stop, ipc::steady::time_point deadline,
                                       woke* why) {
    message m;
    woke ignored{};
    woke& w = why != nullptr ? *why : ignored;
    std::array<char, max_line> buf{};
    while (m.line.find('\n') == std::string::npos) {
        if (w = wait_readable(sock, stop, deadline); w != woke::ready) return std::nullopt;
        alignas(cmsghdr)
            std::array<char, CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(max_fds * sizeof(int))>
                control{};
        iovec iov{buf.data(), buf.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        ssize_t n;
        do {  // MSG_CMSG_CLOEXEC: each new descriptor is close-on-exec from its first instant
            n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        } while (n == -1 && errno == EINTR);
        if (n == -1 && errno != ECONNRESET) ipc::die("recvmsg");
        if (n >= 0) take_control(msg, m);
        ipc::explain("recvmsg({}) = {} bytes, {} descriptor(s){}", sock, n, m.fds.size(),
                     m.sender ? fmt::format(", SCM_CREDENTIALS pid {}", m.sender->pid) : "");
        w = woke::closed;
        if ((msg.msg_flags & MSG_CTRUNC) != 0) {
            ipc::complain(
                "recvmsg: MSG_CTRUNC: more descriptors than we make room for; the "
                "kernel closed those that did not fit");
            return std::nullopt;
        }
        if (n <= 0) return std::nullopt;  // 0: the peer closed; -1: ECONNRESET, the same to us
        m.line.append(buf.data(), static_cast<std::size_t>(n));
        if (m.line.size() > max_line) {
            ipc::complain("a line longer than {} bytes: not an fdpass peer", max_line);
            return std::nullopt;
        }
    }
    m.line.erase(m.line.find('\n'));
    w = woke::ready;
    return m;
}

woke wait_readable(int fd, int stop, ipc::steady::time_point deadline) {
    std::array<pollfd, 2> fds{{{fd, POLLIN, 0}, {stop, POLLIN, 0}}};  // poll skips a negative fd
    int n;
    do {
        n = ::poll(fds.data(), fds.size(), ipc::ms_until(deadline));
    } while (n == -1 && errno == EINTR);
    if (n == -1) ipc::die("poll");
    if (fds[1].revents != 0) return woke::stopped;
    return n == 0 ? woke::timed_out : woke::ready;
}

ipc::unique_fd stop_signals() {
    sigset_t set;
    ::sigemptyset(&set);
    for (const int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaddset(&set, s);
    // A blocked signal is queued even when its disposition is SIG_IGN (as a shell leaves SIGINT
    // for a background job), so the signalfd sees it.
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) == -1) ipc::die("sigprocmask(SIG_BLOCK)");
    ipc::unique_fd fd{::signalfd(-1, &set, SFD_CLOEXEC)};
    if (!fd) ipc::die("signalfd");
    ipc::explain("sigprocmask(SIG_BLOCK, {{SIGINT SIGTERM SIGHUP}}); signalfd() = {}", fd.get());
    return fd;
}

int read_stop_signal(int stop) {
    signalfd_siginfo si{};
    if (ipc::read_some(stop, &si, sizeof si) != static_cast<ssize_t>(sizeof si))
        ipc::die("read(signalfd)");
    const int signo = static_cast<int>(si.ssi_signo);
    ipc::say("{} from pid {}: stopping", ipc::signal_name(signo), si.ssi_pid);
    return signo;
}

ipc::unique_fd listen_unix(const std::string& path, ipc::socket_file& file) {
    const ipc::sock_addr addr = ipc::unix_addr("--socket", path);
    ipc::unique_fd sock{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (!sock) ipc::die("socket(AF_UNIX, SOCK_STREAM)");
    const bool abstract = path.front() == '@';  // no file in the abstract namespace
    if (!abstract) ipc::clear_stale_socket(path, addr, SOCK_STREAM);
    if (::bind(sock.get(), addr.get(), addr.len) == -1) ipc::die(fmt::format("bind({})", path));
    if (!abstract) file.adopt(path);
    if (::listen(sock.get(), 8) == -1) ipc::die(fmt::format("listen({})", path));
    ipc::explain("socket(AF_UNIX) = {}; bind({}); listen", sock.get(), path);
    return sock;
}

ipc::unique_fd connect_unix(const std::string& path) {
    const ipc::sock_addr addr = ipc::unix_addr("--socket", path);
    ipc::unique_fd sock{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (!sock) ipc::die("socket(AF_UNIX, SOCK_STREAM)");
    const int on = 1;
    if (::setsockopt(sock.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == -1)
        ipc::die("setsockopt(SO_PASSCRED)");
    int rc;
    do {  // a unix connect interrupted by a signal made no connection: try again
        rc = ::connect(sock.get(), addr.get(), addr.len);
    } while (rc == -1 && errno == EINTR);
    if (rc == -1) ipc::die(fmt::format("connect({})", path));
    ipc::explain("socket(AF_UNIX) = {}; setsockopt(SO_PASSCRED, 1); connect({}) = 0", sock.get(),
                 path);
    return sock;
}

ipc::unique_fd accept_peer(int listener, ucred& peer) {
    int fd;
    do {
        fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    if (fd == -1 && errno == ECONNABORTED) {
        ipc::warn("accept4");
        return ipc::unique_fd{};
    }
    // EMFILE and the like: the client stays queued and poll says readable again at once, so
    // going on would spin. This tool serves one peer at a time: it stops instead.
    if (fd == -1) ipc::die("accept4");
    ipc::unique_fd conn{fd};
    socklen_t len = sizeof peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) == -1) {
        ipc::warn("getsockopt(SO_PEERCRED)");
        return ipc::unique_fd{};
    }
    ipc::explain("accept4() = {}; SO_PEERCRED: pid {} uid {} gid {}", fd, peer.pid, peer.uid,
                 peer.gid);
    return conn;
}

int send_line(int sock, std::string_view line) {
    if (!ipc::write_all(sock, line.data(), line.size())) return errno;
    ipc::explain("write({}, {:?})", sock, line);
    return 0;
}

}  // namespace fdpass

namespace {

using fdpass::command;

// --socket, which every command but demo takes.
void add_socket_option(CLI::App& cmd, fdpass::options& opt) {
    cmd.add_option("-s,--socket", opt.socket_path,
                   "The unix socket the two processes meet on: a path, or @name (abstract)")
        ->required();
}

void add_listener_options(CLI::App& cmd, fdpass::options& opt) {
    add_socket_option(cmd, opt);
    cmd.add_option("--count", opt.count, "Exit after serving N connections (default: never)");
    ipc::add_duration_option(cmd, "--handover-timeout", opt.handover_timeout,
                             "How long a handover may wait for the other side");
}

fdpass::options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Pass open descriptors between unrelated processes over a unix socket "
        "(SCM_RIGHTS), with the sender's credentials (SCM_CREDENTIALS): a file, or a "
        "server's listening socket handed to its successor as HAProxy and Envoy do.",
        "fdpass"};
    ipc::setup(app,
               "fdpass send --socket /tmp/fd.sock --file /etc/hostname   (then, elsewhere: "
               "fdpass receive --socket /tmp/fd.sock)");
    app.require_subcommand(1, 1);
    app.fallthrough();  // -x after the subcommand works too
    fdpass::options opt;
    auto* send = app.add_subcommand("send",
                                    "Open FILE and pass it to the first process that "
                                    "connects to the socket; show what its read did");
    add_socket_option(*send, opt);
    send->add_option("-f,--file", opt.file, "The file to open (read-only) and pass")->required();
    send->add_option("--offset", opt.offset, "lseek there before passing it");
    auto* receive = app.add_subcommand("receive", "Connect, receive the file, read it to the end");
    add_socket_option(*receive, opt);
    auto* serve = app.add_subcommand(
        "serve-listener", "Serve on a TCP listener until a successor takes it over the socket");
    add_listener_options(*serve, opt);
    serve->add_option("-l,--listen", opt.listen, "host:port to listen on (port 0: any)")
        ->capture_default_str();
    auto* take = app.add_subcommand(
        "take-listener", "Ask the server on the socket for its listener, then serve on it");
    add_listener_options(*take, opt);
    auto* demo = app.add_subcommand("demo", "Both, in one run, with forked processes");
    ipc::parse(app, argc, argv);
    opt.cmd = *send      ? command::send
              : *receive ? command::receive
              : *serve   ? command::serve_listener
              : *take    ? command::take_listener
                         : command::demo;
    if (!*demo) (void)ipc::unix_addr("--socket", opt.socket_path);  // a usage error if bad
    return opt;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const fdpass::options opt = parse_command_line(argc, argv);
    switch (opt.cmd) {
        case command::send: return fdpass::send_file(opt);
        case command::receive: return fdpass::receive_file(opt);
        case command::serve_listener: return fdpass::serve_listener(opt);
        case command::take_listener: return fdpass::take_listener(opt);
        case command::demo: return fdpass::demo();
    }
    return 0;
} catch (...) {
    return ipc::internal_error();
}
