// fdpass serve-listener / take-listener: a successor asks a server for its listening socket.
// Usage: fdpass serve-listener -s PATH [-l ADDR] [--count N] [--handover-timeout D]
//   | fdpass take-listener -s PATH [--count N] [--handover-timeout D]
// Demonstrates how HAProxy and Envoy restart, the other answer to "Go网络服务器如何无缝重启"
// (signals-and-graceful-restart.md): the new process is not the old one's child; it asks.
// Try: fdpass serve-listener -s /tmp/ctl.sock &  fdpass take-listener -s /tmp/ctl.sock
// See also: graceful (the listener as fd 3 of a child), docs/fdpass.md (the two compared)
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <string>

#include <fmt/format.h>

#include "fdpass.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"

namespace fdpass {

namespace {

ipc::unique_fd listen_tcp(const std::string& text, std::string& address) {
    const auto addrs =
        ipc::resolve(*ipc::find_network("tcp"), "--listen", text, ipc::resolve_for::listen);
    const ipc::sock_addr& a = addrs.front();
    // Non-blocking: once two processes hold the listener, the other may accept the connection
    // that woke us, and accept4 then says EAGAIN instead of waiting.
    ipc::unique_fd fd{::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (!fd) ipc::die("socket(SOCK_STREAM)");
    const int on = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1)
        ipc::die("setsockopt(SO_REUSEADDR)");
    if (::bind(fd.get(), a.get(), a.len) == -1) ipc::die(fmt::format("bind({})", text));
    if (::listen(fd.get(), SOMAXCONN) == -1) ipc::die("listen");
    address = ipc::addr_string(ipc::local_addr(fd.get()));
    ipc::explain("socket() = {}; bind({}); listen", fd.get(), address);
    return fd;
}

// One client: accept it, say who serves it, close. False if accept4 failed for good.
bool greet(server& s) {
    ipc::sock_addr peer;
    int fd;
    do {
        fd = ::accept4(s.listener.get(), peer.get(), &peer.len, SOCK_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    if (fd == -1 && (errno == EAGAIN || errno == ECONNABORTED)) return true;  // gone already
    if (fd == -1) {
        ipc::warn("accept4");  // EMFILE and the like: stop, rather than spin on the same error
        return false;
    }
    const ipc::unique_fd conn{fd};  // closed at the end: the client reads to EOF
    ++s.served;
    ipc::say("pid {} served connection {} from {}", ::getpid(), s.served, ipc::addr_string(peer));
    const std::string hello = fmt::format("served by pid {}\n", ::getpid());
    if (!ipc::write_all(fd, hello.data(), hello.size())) ipc::warn("write(client)");
    return true;
}

// A successor connected to the control socket: check who it is, pass it the listener, wait
// (bounded) for "ready", then let go and say "go". True once the listener is the successor's.
bool hand_over(server& s, const options& opt) {
    ucred peer{};
    const ipc::unique_fd conn = accept_peer(s.control.get(), peer);
    if (!conn) return false;
    // SO_PEERCRED comes from the kernel: only our own user (or root) may take the service.
    if (peer.uid != ::geteuid() && peer.uid != 0) {
        ipc::complain("refusing pid {}: uid {} is not ours ({})", peer.pid, peer.uid, ::geteuid());
        return false;
    }
    ipc::say("pid {} (uid {}) asks for the listener: passing fd {} (SCM_RIGHTS)", peer.pid,
             peer.uid, s.listener.get());
    const std::string offer = fmt::format("listener {}\n", s.address);
    if (const int err = send_descriptor(conn.get(), s.listener.get(), offer); err != 0) {
        ipc::warn_en(err, "sendmsg(SCM_RIGHTS)");
        return false;
    }
    woke why{};
    const auto deadline = ipc::deadline_after(opt.handover_timeout);
    const auto answer = receive_message(conn.get(), s.stop.get(), deadline, &why);
    if (why == woke::stopped) return false;    // serve() reads the signal and stops
    if (!answer || answer->line != "ready") {  // any descriptor it sent back is closed now
        ipc::complain("pid {} {}: still serving", peer.pid,
                      answer                   ? fmt::format("answered {:?}", answer->line)
                      : why == woke::timed_out ? std::string("did not say ready in time")
                                               : std::string("went away"));
        return false;
    }
    // Free the control socket's name for the successor before it hears "go".
    s.control.reset();
    s.control_file.remove();
    if (const int err = send_line(conn.get(), "go\n"); err != 0) {
        ipc::warn_en(err, fmt::format("write(go) to pid {}: still serving", peer.pid));
        s.control = listen_unix(opt.socket_path, s.control_file);
        return false;
    }
    s.listener.reset();  // we stop accepting; the socket and its queue live on in the successor
    ipc::say("handed over to pid {}: not accepting any more", peer.pid);
    return true;
}  // closing `conn` tells the successor, by EOF, that we have let go

// The descriptor received must be a listening stream socket before we serve on it.
void check_listener(int fd) {
    int accepting = 0, type = 0;
    socklen_t len = sizeof accepting;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == -1)
        ipc::die("getsockopt(SO_ACCEPTCONN)");
    len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1) ipc::die("getsockopt(SO_TYPE)");
    if (accepting == 0 || type != SOCK_STREAM) {
        ipc::fail(
            "the descriptor received is not a listening stream socket (SO_ACCEPTCONN {}, "
            "SO_TYPE {})",
            accepting, type);
    }
}

// The successor's side of hand_over: returns the listener once the old server said "go", or
// none if a stop signal came first. The caller reads it and returns 128+n: a normal end goes by
// return, to main's or, in the demo's child, to spawn's _exit; never by std::exit from here.
ipc::unique_fd ask_for_listener(server& s, const options& opt) {
    const ipc::unique_fd conn = connect_unix(opt.socket_path);
    s.stop = stop_signals();  // after the connect, which a signal must still be able to end
    const auto deadline = ipc::deadline_after(opt.handover_timeout);
    woke why{};
    auto offer = receive_message(conn.get(), s.stop.get(), deadline, &why);
    if (why == woke::stopped) return {};
    if (!offer)
        ipc::fail("{}: no listener came (the server {})", opt.socket_path,
                  why == woke::timed_out ? "did not answer in time" : "closed the connection");
    if (offer->fds.size() != 1 || !offer->line.starts_with("listener ")) {
        ipc::fail("{}: expected one listener and \"listener ADDR\", got {} descriptor(s) and {:?}",
                  opt.socket_path, offer->fds.size(), offer->line);
    }
    ipc::unique_fd listener = std::move(offer->fds.front());
    check_listener(listener.get());
    const int flags = ::fcntl(listener.get(), F_GETFL);
    if (flags == -1) ipc::die("fcntl(F_GETFL)");
    const auto& c = offer->sender;
    ipc::say(
        "received fd {} from pid {} (uid {}, gid {}) (SCM_CREDENTIALS): a listening "
        "socket on {}, {} (file status flags are shared, like the offset)",
        listener.get(), c ? c->pid : 0, c ? c->uid : 0, c ? c->gid : 0,
        ipc::addr_string(ipc::local_addr(listener.get())),
        (flags & O_NONBLOCK) != 0 ? "O_NONBLOCK as the old server set it" : "blocking");
    if (const int err = send_line(conn.get(), "ready\n"); err != 0)
        ipc::die_en(err, "write(ready): the old server has gone");
    const auto go = receive_message(conn.get(), s.stop.get(), deadline, &why);
    if (why == woke::stopped) return {};
    if (!go || go->line != "go") ipc::fail("the old server did not let go: it keeps the listener");
    // EOF comes when the old server has closed its listener and is on its way out.
    if (wait_readable(conn.get(), -1, deadline) == woke::timed_out)
        ipc::complain("the old server said go but did not close the connection in time");
    return listener;
}

}  // namespace

void start_serving(server& s, const options& opt) {
    s.control = listen_unix(opt.socket_path, s.control_file);
    ipc::say(
        "serving on {} as pid {}; a successor may take the listener: fdpass "
        "take-listener --socket {}",
        s.address, ::getpid(), opt.socket_path);
}

int serve(server& s, const options& opt) {
    for (;;) {
        std::array<pollfd, 4> fds{{{s.listener.get(), POLLIN, 0},
                                   {s.control.get(), POLLIN, 0},
                                   {s.stop.get(), POLLIN, 0},
                                   {s.successor, POLLIN, 0}}};  // poll skips a -1
        int n;
        do {
            n = ::poll(fds.data(), fds.size(), -1);
        } while (n == -1 && errno == EINTR);
        if (n == -1) ipc::die("poll");
        if (fds[2].revents != 0) {
            (void)read_stop_signal(s.stop.get());
            return 0;  // the control socket's file goes with `s`
        }
        if (fds[3].revents != 0) return 1;  // it ended without taking over: none will ask
        if (fds[0].revents != 0 && !greet(s)) return 1;
        if (opt.count != 0 && s.served >= opt.count) {
            ipc::say("served {} connection(s) (--count {}): exiting", s.served, opt.count);
            return 0;
        }
        if (fds[1].revents != 0 && hand_over(s, opt)) return 0;
    }
}

// `s` is a static, not a local: std::exit (ipc::die, a failed write) runs the destructors of
// statics, not of locals, and its control_file removes the socket file.
int serve_listener(const options& opt) {
    static server s;
    s.stop = stop_signals();  // first: from now on SIGTERM is read, and the socket file removed
    s.listener = listen_tcp(opt.listen, s.address);
    start_serving(s, opt);
    return serve(s, opt);
}

int take_listener(const options& opt) {
    static server s;  // a static, as in serve_listener
    s.listener = ask_for_listener(s, opt);
    if (!s.listener) return 128 + read_stop_signal(s.stop.get());
    s.address = ipc::addr_string(ipc::local_addr(s.listener.get()));
    start_serving(s, opt);  // the same control socket: the next successor asks here
    return serve(s, opt);
}

}  // namespace fdpass
