// fdpass demo: a file, then a listening socket, passed between processes in one run.
// Usage: fdpass demo [-x]
// Demonstrates both halves of fdpass with forked processes that meet on abstract unix sockets
// (no file: nothing left behind, however it ends): a receiver forked before the file exists
// gets it and reads on from the sender's offset; a server hands its listener to a successor.
// Try: fdpass demo -x
// See also: fdpass send/receive, serve-listener/take-listener (two terminals), graceful
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "fdpass.hpp"
#include "ipc/child.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/process.hpp"

namespace {

// A process the demo forked, with a pidfd for it: the pidfd turns readable when the child ends,
// so one poll(2) can wait for a socket and for the death of the child that should use it.
struct child {
    pid_t pid = -1;
    std::string_view role;  // "receiver", "successor": what the messages call it
    ipc::unique_fd pidfd;
};

// Runs `body` in a child process, which always ends in _exit with what body returned. Not exit:
// that would run, a second time, what the parent registered with atexit (ipc::start's check of
// stdout) and the destructors of statics, and flush a copy of any stdio buffer. ipc::die and
// ipc::fail, which the child shares with the commands, know they are in a forked child and
// end it with _exit too.
template <typename Body>
child spawn(std::string_view role, Body body) {
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == -1) ipc::die("fork");
    if (pid == 0) {
        // SIGKILL when the demo dies: a successor serving on would wait for ever for a client.
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) ipc::child::die("prctl", 1);
        if (::getppid() != parent) ::_exit(1);  // the demo died before prctl
        int code = 1;
        try {
            code = body();
        } catch (...) {
            code = ipc::internal_error();
        }
        ::_exit(code);
    }
    ipc::explain("fork() = {}", pid);
    // No race with pid reuse: a child's pid is not given to another process until we reap it.
    // (syscall(2): glibc's pidfd_open came in 2.36, and its header is not C++-ready there.)
    child c{pid, role, ipc::unique_fd{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))}};
    if (!c.pidfd) ipc::die(fmt::format("pidfd_open({})", pid));
    ipc::explain("pidfd_open({}) = {}", pid, c.pidfd.get());
    return c;
}

// Reaps `c`. If it did not exit 0, says how it ended, in one line, and exits 1:
// "fdpass: the receiver (pid 4242) killed by SIGKILL (137)".
void check_child(const child& c) {
    const int status = ipc::wait_child(c.pid);
    if (status != 0) ipc::fail("the {} (pid {}) {}", c.role, c.pid, ipc::describe_status(status));
}

void pass_a_file() {
    fdpass::options opt;
    opt.socket_path = fmt::format("@fdpass-demo-{}-file", ::getpid());
    opt.file = "memfd:fdpass-demo";
    ipc::socket_file no_file;  // an abstract socket has none
    ipc::unique_fd listener = fdpass::listen_unix(opt.socket_path, no_file);
    ipc::say("1. a file, passed to a receiver forked before the file exists; they meet on {}",
             opt.socket_path);
    // The receiver is forked now, before the file exists: it cannot inherit the descriptor.
    const child receiver = spawn("receiver", [&opt, &listener] {
        listener.reset();  // the parent's, not the receiver's
        return fdpass::receive_file(opt);
    });

    const ipc::unique_fd file{::memfd_create("fdpass-demo", MFD_CLOEXEC)};
    if (!file) ipc::die("memfd_create");
    constexpr std::string_view text = "skipped\nthe receiver reads on from the sender's offset\n";
    if (!ipc::write_all(file.get(), text.data(), text.size())) ipc::die("write(memfd)");
    if (::lseek(file.get(), 8, SEEK_SET) == -1) ipc::die("lseek(memfd, 8)");
    ipc::say(
        "memfd_create() = fd {}; {} bytes written; lseek to 8, past \"skipped\\n\"; the "
        "receiver is pid {}",
        file.get(), text.size(), receiver.pid);
    // Its connection, or its end: a receiver that died before connecting would leave us
    // waiting for ever. (Once connected, its death closes the connection: pass_file sees EOF.)
    if (fdpass::wait_readable(listener.get(), receiver.pidfd.get(), ipc::never) ==
        fdpass::woke::stopped) {
        check_child(receiver);
        ipc::fail("the receiver (pid {}) exited 0 before it connected", receiver.pid);
    }
    const int rc = fdpass::pass_file(listener.get(), -1, file.get(), opt);
    listener.reset();       // if another process connected first, the receiver gets ECONNRESET
    check_child(receiver);  // none of our sockets is open for it to wait on: it ends
    if (rc != 0) ipc::fail("passing failed");
}

// connect(2) to a TCP address. A connect that a signal interrupts (EINTR) goes on in the kernel:
// calling it again waits for it (Linux, on a blocking socket), or says EISCONN (done) or, as
// POSIX also allows, EALREADY (then poll waits for it).
ipc::unique_fd dial(const ipc::sock_addr& addr) {
    ipc::unique_fd sock{::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (!sock) ipc::die("socket");
    int rc;
    do {
        rc = ::connect(sock.get(), addr.get(), addr.len);
    } while (rc == -1 && errno == EINTR);
    if (rc == -1 && errno == EALREADY) {
        pollfd p{sock.get(), POLLOUT, 0};
        while (::poll(&p, 1, -1) == -1) {
            if (errno != EINTR) ipc::die("poll");
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len) == -1)
            ipc::die("getsockopt(SO_ERROR)");
        rc = err == 0 ? 0 : -1;
        errno = err;
    }
    if (rc == -1 && errno != EISCONN) ipc::die(fmt::format("connect({})", ipc::addr_string(addr)));
    return sock;
}

// What a server wrote to the client before closing.
std::string greeting(const ipc::unique_fd& client) {
    std::array<char, 64> buf{};
    const ssize_t n = ipc::read_full(client.get(), buf.data(), buf.size());
    if (n == -1) ipc::die("read(client)");
    std::string text(buf.data(), static_cast<std::size_t>(n));
    if (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

void hand_over_a_listener() {
    fdpass::options opt;
    opt.socket_path = fmt::format("@fdpass-demo-{}-control", ::getpid());
    ipc::say("2. a listener. This process serves; a successor will ask it for its listener");
    fdpass::server old;
    old.listener = ipc::unique_fd{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (!old.listener) ipc::die("socket(AF_INET, SOCK_STREAM)");
    ipc::sock_addr any =
        ipc::resolve(*ipc::find_network("tcp4"), "listen", "127.0.0.1:0", ipc::resolve_for::listen)
            .front();
    if (::bind(old.listener.get(), any.get(), any.len) == -1) ipc::die("bind(127.0.0.1:0)");
    if (::listen(old.listener.get(), SOMAXCONN) == -1) ipc::die("listen");
    const ipc::sock_addr addr = ipc::local_addr(old.listener.get());
    old.address = ipc::addr_string(addr);
    fdpass::start_serving(old, opt);

    fdpass::options next = opt;
    next.count = 1;  // the successor serves one connection, then exits
    const child successor = spawn("successor", [&next, &old] {
        old.listener.reset();  // the copies fork gave it: it must get the listener by asking,
        old.control.reset();   // and bind the control socket's name once the old one lets go
        return fdpass::take_listener(next);
    });
    // The first client connects before the server looks: the kernel completes the handshake
    // into the listen queue, and the old server accepts it before it hands the listener over.
    const ipc::unique_fd first = dial(addr);
    old.successor = successor.pidfd.get();  // serve() stops if it dies: it would never ask
    if (fdpass::serve(old, opt) != 0) {
        old.control.reset();     // a successor still at the handover sees EOF or ECONNREFUSED
        check_child(successor);  // so it ends: say how, if that is why serving stopped
        ipc::fail("serving failed");
    }
    const ipc::unique_fd second = dial(addr);
    const std::string first_got = greeting(first), second_got = greeting(second);
    check_child(successor);  // so that its lines come before ours
    ipc::say("the first client, queued before the handover, got {:?}", first_got);
    ipc::say("the second client, after it, got {:?}: the same port, another process", second_got);
}

}  // namespace

namespace fdpass {

int demo() {
    pass_a_file();
    hand_over_a_listener();
    return 0;
}

}  // namespace fdpass
