// graceful: an HTTP server that restarts on SIGHUP without dropping a single request.
// Usage: graceful [--listen HOST:PORT] [--pidfile PATH] [--restart-timeout D] [--drain-timeout D]
// Demonstrates the last section of signals-and-graceful-restart.md (Go网络服务器如果无缝重启): the
// listening socket handed to a re-executed copy as fd 3, the new copy saying it is ready, the old
// one stopping to accept, finishing the requests in flight, and exiting.
// Try: graceful -x --pidfile /tmp/g.pid &   then   curl localhost:8080/; kill -HUP $(cat
// /tmp/g.pid) See also: sigsend (send the HUP), curl and wrk (the clients), docs/graceful.md
#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/net.hpp"
#include "ipc/signals.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int listen_fd_number = 3;  // SD_LISTEN_FDS_START: where systemd and we put the socket
constexpr int ready_fd_number = 4;   // where the new copy finds the write end of the readiness pipe
constexpr int max_sleep_ms = 60'000;
constexpr auto accept_tick = milliseconds(50);

// One line, one write(2): several processes share our stdout, their lines must not mix.
template <typename... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
    const std::string line = fmt::format(format, std::forward<Args>(args)...) + "\n";
    (void)ipc::write_all(STDOUT_FILENO, line.data(), line.size());
}

// The same on stderr, prefixed with the tool's name: something went wrong, or was refused.
template <typename... Args>
void complain(fmt::format_string<Args...> format, Args&&... args) {
    ipc::complain(fmt::format(format, std::forward<Args>(args)...));
}

// What a parent handed us in the environment. Read once, before any thread starts, and removed,
// so that nothing this process starts later sees values that were meant for this process.
struct Inherited {
    int generation = 1;
    std::optional<int> listen_fd;  // socket activation: LISTEN_PID is us, LISTEN_FDS=1
    std::optional<int> ready_fd;   // IPCKIT_GRACEFUL_READY_FD: write "ready\n" there when serving
    std::string fail_hook;         // IPCKIT_GRACEFUL_FAIL (a test hook; kept for our children)
};

std::optional<long> env_number(const char* name) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < 0)
        ipc::fail(fmt::format("{}={}: not a number", name, text));
    return value;
}

Inherited take_inheritance() {
    Inherited in;
    if (auto g = env_number("IPCKIT_GRACEFUL_GENERATION")) in.generation = static_cast<int>(*g);
    if (auto fd = env_number("IPCKIT_GRACEFUL_READY_FD")) in.ready_fd = static_cast<int>(*fd);
    if (const char* hook = std::getenv("IPCKIT_GRACEFUL_FAIL")) in.fail_hook = hook;

    // sd_listen_fds(3): the variables are ours only if LISTEN_PID names this very process; a
    // stale pair inherited through a shell that forgot to remove them must be ignored.
    const auto pid = env_number("LISTEN_PID");
    const auto fds = env_number("LISTEN_FDS");
    if (pid && fds && *pid == ::getpid()) {
        if (*fds != 1) ipc::fail(fmt::format("LISTEN_FDS={}: expected exactly one socket", *fds));
        in.listen_fd = listen_fd_number;
        ipc::explain("LISTEN_PID={} is this process, LISTEN_FDS=1: the socket is fd {}", *pid,
                     listen_fd_number);
    } else if (pid || fds) {
        ipc::explain("LISTEN_PID={} is not this process: ignoring LISTEN_FDS", pid.value_or(-1));
    }
    for (const char* name : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
                             "IPCKIT_GRACEFUL_GENERATION", "IPCKIT_GRACEFUL_READY_FD"}) {
        if (std::getenv(name) == nullptr) continue;
        if (::unsetenv(name) == -1) ipc::die(fmt::format("unsetenv({})", name));
        ipc::explain("unsetenv({}): no child of ours will see it", name);
    }
    if (in.ready_fd && ::fcntl(*in.ready_fd, F_SETFD, FD_CLOEXEC) == -1)
        ipc::die(fmt::format("fcntl({}, F_SETFD, FD_CLOEXEC)", *in.ready_fd));
    return in;
}

// "1.2.3.4", 80 for a socket's own end (getsockname) or its peer's (getpeername); ip stays
// empty if the socket has no address.
void ip_and_port(int fd, bool peer, std::string& ip, int& port, int& family) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    auto* sa = reinterpret_cast<sockaddr*>(&ss);
    if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) == -1) return;
    family = ss.ss_family;
    std::array<char, NI_MAXHOST> host{};
    std::array<char, NI_MAXSERV> serv{};
    if (::getnameinfo(sa, len, host.data(), host.size(), serv.data(), serv.size(),
                      NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return;
    ip = host.data();
    port = std::atoi(serv.data());
}

// socket(2), bind(2), listen(2) on HOST:PORT ("[::1]:0" too; port 0 lets the kernel choose).
ipc::unique_fd open_listener(const std::string& spec) {
    const ipc::host_port hp = ipc::split_host_port("--listen", spec, ipc::port_zero::allowed);
    const std::string& host = hp.host;
    const std::string& port = hp.port;

    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (const int err =
            ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
        err != 0)
        ipc::usage_error(fmt::format("--listen: {}: {}", host, ::gai_strerror(err)));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list{found, ::freeaddrinfo};

    int last_errno = 0;
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        ipc::unique_fd fd{::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
        if (!fd) ipc::die("socket");
        const int on = 1;  // a restart after a full stop must not wait for TIME_WAIT to pass
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1)
            ipc::die("setsockopt(SO_REUSEADDR)");
        if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) == -1) {
            last_errno = errno;
            continue;
        }
        if (::listen(fd.get(), SOMAXCONN) == -1) ipc::die("listen");
        ipc::explain("socket() = {}; bind({}); listen({}, SOMAXCONN)", fd.get(), spec, fd.get());
        return fd;
    }
    ipc::die_en(last_errno, fmt::format("bind({})", spec));
}

// An inherited fd 3 must really be a listening socket before we bet the service on it.
ipc::unique_fd adopt_listener(int fd) {
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == -1)
        ipc::die(fmt::format("getsockopt({}, SO_ACCEPTCONN)", fd));
    if (accepting == 0) ipc::fail(fmt::format("fd {} is a socket but not a listening one", fd));
    // It came to us without FD_CLOEXEC; only the copy we hand to a new copy may cross exec.
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) ipc::die(fmt::format("fcntl({}, F_SETFD)", fd));
    return ipc::unique_fd{fd};
}

// Calls call() again while it fails with EINTR.
template <typename Call>
auto retry(Call call) {
    for (;;) {
        const auto rc = call();
        if (rc != -1 || errno != EINTR) return rc;
    }
}

// One accepted connection as httplib's Stream: recv(2) through a small buffer (the library
// reads request lines a byte at a time), send(2) in full, poll(2) for the timeouts.
class Connection final : public httplib::Stream {
  public:
    explicit Connection(int fd) : fd_(fd) {}

    // True when a byte (or the peer's end of file) can be read within timeout.
    bool wait_readable(milliseconds timeout) const {
        return next_ < end_ || wait_for(POLLIN, timeout);
    }
    bool is_readable() const override { return wait_readable(io_timeout); }
    bool is_writable() const override { return wait_for(POLLOUT, io_timeout); }

    ssize_t read(char* ptr, std::size_t size) override {
        if (next_ == end_) {
            if (!is_readable()) return -1;
            const ssize_t n = retry([&] { return ::recv(fd_, buf_.data(), buf_.size(), 0); });
            if (n <= 0) return n;
            next_ = 0;
            end_ = static_cast<std::size_t>(n);
        }
        const std::size_t n = std::min(size, end_ - next_);
        std::memcpy(ptr, buf_.data() + next_, n);
        next_ += n;
        return static_cast<ssize_t>(n);
    }
    ssize_t write(const char* ptr, std::size_t size) override {
        if (!is_writable()) return -1;
        return retry([&] { return ::send(fd_, ptr, size, MSG_NOSIGNAL); });  // EPIPE, no signal
    }
    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        int family = 0;
        ip_and_port(fd_, true, ip, port, family);
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        int family = 0;
        ip_and_port(fd_, false, ip, port, family);
    }
    int socket() const override { return fd_; }

    static constexpr auto io_timeout = milliseconds(5000);  // a client that stalls mid-request

  private:
    bool wait_for(short events, milliseconds timeout) const {
        pollfd p{fd_, events, 0};
        const int ms = static_cast<int>(timeout.count());
        return retry([&] { return ::poll(&p, 1, ms); }) > 0;
    }
    int fd_;
    std::array<char, 4096> buf_{};
    std::size_t next_ = 0, end_ = 0;  // buf_[next_, end_) is read but not yet consumed
};

// httplib::Server, taught what its 0.11 API lacks: to serve on a socket it did not open, to
// stop accepting without shutdown(2), and to let every connection it accepted finish.
//
// svr_sock_ is the library's (protected) listening descriptor: its accept loop runs while
// svr_sock_ != -1, and re-reads it each time accept(2) fails with EAGAIN, which SO_RCVTIMEO on
// the socket makes happen every accept_tick. The library's own per-connection loop drops the
// connections it has accepted but not started once svr_sock_ is -1; ours below finishes them.
class Server : public httplib::Server {
  public:
    Server() {
        // Runs on the thread that serves the connection, just before the headers are written.
        set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
            if (draining_ && res.get_header_value("Connection") != "close") {
                res.headers.erase("Keep-Alive");
                res.set_header("Connection", "close");
            }
            said_close_ = res.get_header_value("Connection") == "close";
        });
    }

    // Runs the accept loop on fd until stop_accepting(); then waits until every accepted
    // connection is finished, and returns. False if accept(2) failed (httplib closed fd then).
    bool serve(int fd) {
        svr_sock_ = fd;
        accept_failed_ = !listen_after_bind();
        return !accept_failed_;
    }
    [[nodiscard]] bool accept_failed() const { return accept_failed_; }

    // The socket itself is left open and untouched: shutdown(2) on it would stop it for every
    // process that holds it, the new copy included. Only this process stops calling accept(2),
    // and each connection closes after its current response, which says "Connection: close".
    void stop_accepting() {
        draining_ = true;
        svr_sock_ = INVALID_SOCKET;
    }
    [[nodiscard]] bool draining() const { return draining_; }

    // After --drain-timeout: shutdown(2) every connection still open (each is ours alone), so
    // that its thread's next recv or send fails at once, and wake the handlers in pause_for().
    void close_connections() {
        {
            std::lock_guard lock{mu_};
            closing_ = true;
            for (int fd : open_) {
                if (::shutdown(fd, SHUT_RDWR) == -1) ipc::warn(fmt::format("shutdown({})", fd));
                ipc::explain("shutdown({}, SHUT_RDWR): a connection still open", fd);
            }
        }
        closing_cv_.notify_all();
    }

    // Sleeps for d, unless close_connections() comes first: then returns false at once.
    bool pause_for(milliseconds d) {
        std::unique_lock lock{mu_};
        return !closing_cv_.wait_for(lock, d, [this] { return closing_; });
    }

  private:
    // Serves one connection: request after request (HTTP keep-alive) until the client closes,
    // stays idle too long, or a response says "Connection: close". Runs on a pool thread.
    bool process_and_close_socket(int sock) override {
        // accept(2) in the library leaves out SOCK_CLOEXEC; a new copy must not inherit this.
        if (::fcntl(sock, F_SETFD, FD_CLOEXEC) == -1) ipc::warn("fcntl(F_SETFD, FD_CLOEXEC)");
        // httplib writes the headers and the body with two send(2)s: without TCP_NODELAY, Nagle
        // holds the body back until the client's delayed ACK of the headers, 40 ms later.
        const int on = 1;
        (void)::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // fails: not TCP
        {
            std::lock_guard lock{mu_};
            if (closing_) {
                ::close(sock);
                return false;
            }
            open_.insert(sock);
        }
        Connection conn{sock};
        bool ok = true;
        for (int served = 1; ok && conn.wait_readable(keep_alive_idle); ++served) {
            bool client_said_close = false;
            said_close_ = false;
            ok = process_request(conn, served == max_requests_per_connection, client_said_close,
                                 nullptr);
            if (client_said_close || said_close_) break;
        }
        {
            std::lock_guard lock{mu_};  // out of the set before close: its number may be reused
            open_.erase(sock);
        }
        ::close(sock);
        return ok;
    }

    static constexpr auto keep_alive_idle = milliseconds(5000);
    static constexpr int max_requests_per_connection = 100;  // then it makes room for others
    std::atomic<bool> draining_{false};
    std::atomic<bool> accept_failed_{false};
    std::mutex mu_;                        // guards open_ and closing_
    std::set<int> open_;                   // the connections being served
    bool closing_ = false;                 // close_connections() was called
    std::condition_variable closing_cv_;   // notified when closing_ becomes true
    static thread_local bool said_close_;  // the last response on this thread said close
};
thread_local bool Server::said_close_ = false;

// Everything the child of fork() needs, made before fork(): the parent has threads, so in the
// child only async-signal-safe calls may run until execve (no malloc, no locks, no fmt).
struct ExecPlan {
    std::string exe;
    std::vector<std::string> env_text;
    std::array<char, 32> listen_pid{};  // "LISTEN_PID=" + the child's pid, written by the child
    std::vector<char*> argv;
    std::vector<char*> envp;
    sigset_t mask{};  // the signal mask the new program starts with
    int listen_fd = -1;
    int ready_fd = -1;
    bool narrate = false;
};

// Writes n in decimal and a NUL at out: async-signal-safe (snprintf is not on the list).
char* format_decimal(char* out, unsigned long n) {
    char digits[24];
    int count = 0;
    do {
        digits[count++] = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    while (count > 0) *out++ = digits[--count];
    *out = '\0';
    return out;
}

// "[pid] text\n" on stderr from the child, with write(2) only.
void child_explain(const ExecPlan& plan, const char* text) {
    if (!plan.narrate) return;
    char line[512] = "[";
    char* p = format_decimal(line + 1, static_cast<unsigned long>(::getpid()));
    *p++ = ']';
    *p++ = ' ';
    const std::size_t room = sizeof line - static_cast<std::size_t>(p - line) - 1;
    const std::size_t n = std::min(std::strlen(text), room);
    std::memcpy(p, text, n);
    p[n] = '\n';
    (void)ipc::write_all(STDERR_FILENO, line, static_cast<std::size_t>(p - line) + n + 1);
}

// The child tells the parent which call failed through the readiness pipe, as
// "child-error ERRNO CALL\n", and exits 127 (as a shell does when it cannot run a command).
[[noreturn]] void child_fail(int pipe_fd, const char* call) {
    char msg[128] = "child-error ";
    char* p = format_decimal(msg + std::strlen(msg), static_cast<unsigned long>(errno));
    *p++ = ' ';
    const std::size_t n =
        std::min(std::strlen(call), sizeof msg - static_cast<std::size_t>(p - msg) - 1);
    std::memcpy(p, call, n);
    p[n] = '\n';
    (void)ipc::write_all(pipe_fd, msg, static_cast<std::size_t>(p - msg) + n + 1);
    ::_exit(127);
}

// The child between fork() and execve(): put the socket on fd 3 and the readiness pipe on fd 4,
// both without FD_CLOEXEC, close everything else, restore the signal mask, and exec ourselves.
[[noreturn]] void exec_child(ExecPlan& plan) {
    char* pid_digits = plan.listen_pid.data() + std::strlen("LISTEN_PID=");
    format_decimal(pid_digits, static_cast<unsigned long>(::getpid()));  // our pid, after fork

    // dup2 clears FD_CLOEXEC on the new descriptor; a socket already on 3 needs fcntl instead.
    if ((plan.listen_fd == listen_fd_number ? ::fcntl(listen_fd_number, F_SETFD, 0)
                                            : ::dup2(plan.listen_fd, listen_fd_number)) == -1)
        child_fail(plan.ready_fd, "dup2(listener, 3)");
    if (::dup2(plan.ready_fd, ready_fd_number) == -1)  // ready_fd >= 5: 3 did not overwrite it
        child_fail(plan.ready_fd, "dup2(readiness pipe, 4)");
    // httplib accepts without SOCK_CLOEXEC: its client sockets must not leak into the new copy.
    if (::close_range(ready_fd_number + 1, ~0U, 0) == -1)
        child_fail(ready_fd_number, "close_range(5, ~0U)");
    if (::sigprocmask(SIG_SETMASK, &plan.mask, nullptr) == -1)
        child_fail(ready_fd_number, "sigprocmask");
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;  // httplib ignores SIGPIPE, and exec would keep that
    if (::sigaction(SIGPIPE, &dfl, nullptr) == -1)
        child_fail(ready_fd_number, "sigaction(SIGPIPE, SIG_DFL)");
    child_explain(plan, "dup2(listener, 3); dup2(readiness pipe, 4); close_range(5, ~0U); execve");
    ::execve(plan.exe.c_str(), plan.argv.data(), plan.envp.data());
    child_fail(ready_fd_number, "execve");
}

struct Options {
    std::string listen = "127.0.0.1:8080";
    std::string pidfile;
    std::chrono::nanoseconds restart_timeout = std::chrono::seconds(10);
    std::chrono::nanoseconds drain_timeout = std::chrono::seconds(30);
    std::size_t threads = 64;
};

// The pid file names whoever serves: written to a temporary name and rename(2)d over the old
// one, so a reader sees the old pid or the new one, never a half-written file.
void write_pidfile(const std::string& path) {
    if (path.empty()) return;
    const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
    ipc::unique_fd fd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (!fd) ipc::die(fmt::format("open({})", tmp));
    const std::string text = fmt::format("{}\n", ::getpid());
    if (!ipc::write_all(fd.get(), text.data(), text.size()))
        ipc::die(fmt::format("write({})", tmp));
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) == -1)
        ipc::die(fmt::format("rename({}, {})", tmp, path));
    ipc::explain("rename({}, {}): the pid file names {}", tmp, path, ::getpid());
}

// On the final exit only: a successor has already written its own pid there.
void remove_pidfile_if_ours(const std::string& path) {
    if (path.empty()) return;
    ipc::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (!fd) return;
    char buf[32] = {};
    const ssize_t n = ipc::read_some(fd.get(), buf, sizeof buf - 1);
    if (n <= 0 || std::atol(buf) != ::getpid()) return;
    if (::unlink(path.c_str()) == -1) return ipc::warn(fmt::format("unlink({})", path));
    ipc::explain("unlink({}): it named this process", path);
}

// Where the running binary lives, as a path: exec'ing the path (not /proc/self/exe itself,
// which is the running inode even after the file was replaced) lets a rebuilt binary take over.
std::string self_path() {
    std::array<char, 4096> buf{};
    const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    if (n == -1) ipc::die("readlink(/proc/self/exe)");
    std::string path(buf.data(), static_cast<std::size_t>(n));
    ipc::explain("readlink(/proc/self/exe) = {}: what a restart will execute", path);
    return path;
}

// The control thread: signals arrive here through signalfd, and everything about restarting and
// stopping happens here, on one thread, in the order the events come.
class Control {
  public:
    Control(const Options& opt, std::string exe, int generation, int listener, Server& server,
            std::thread& serving, ipc::unique_fd serving_done, std::atomic<int>& in_flight,
            char** argv, const sigset_t& original_mask)
        : opt_(opt),
          exe_(std::move(exe)),
          generation_(generation),
          listener_(listener),
          server_(server),
          serving_(serving),
          serving_done_(std::move(serving_done)),
          in_flight_(in_flight),
          argv_(argv),
          original_mask_(original_mask) {}

    // Returns when the server has drained; the exit status of the process.
    int run(int sfd) {
        for (;;) {
            std::array<pollfd, 3> fds{};
            fds[0] = {sfd, POLLIN, 0};
            fds[1] = {serving_done_.get(), POLLIN, 0};
            fds[2] = {pending_ ? pending_->ready.get() : -1, POLLIN, 0};
            const int rc = ::poll(fds.data(), fds.size(), timeout_ms());
            if (rc == -1 && errno != EINTR) ipc::die("poll");
            if (fds[0].revents != 0) on_signal(sfd);
            if (fds[2].revents != 0 && pending_) on_ready_pipe();
            if (fds[1].revents != 0) return finish();
            check_deadlines();
        }
    }

  private:
    struct Pending {  // a new copy that has not said "ready" yet
        pid_t pid = -1;
        ipc::unique_fd ready;  // read end of its readiness pipe
        clock_type::time_point deadline;
    };

    int timeout_ms() const {
        std::optional<clock_type::time_point> next;
        if (pending_) next = pending_->deadline;
        if (drain_deadline_ && (!next || *drain_deadline_ < *next)) next = drain_deadline_;
        if (!next) return -1;
        const auto left = std::chrono::ceil<milliseconds>(*next - clock_type::now()).count();
        return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
    }

    void on_signal(int sfd) {
        signalfd_siginfo si{};
        const ssize_t n = ipc::read_some(sfd, &si, sizeof si);
        if (n != static_cast<ssize_t>(sizeof si)) ipc::die("read(signalfd)");
        const int sig = static_cast<int>(si.ssi_signo);
        ipc::explain("read(signalfd) = {} from pid {}", ipc::signal_name(sig), si.ssi_pid);
        switch (sig) {
            case SIGCHLD: return reap_children();
            case SIGHUP:
            case SIGUSR2: return start_restart(sig);
            default: return shut_down(sig);  // SIGTERM, SIGINT
        }
    }

    void start_restart(int sig) {
        const auto name = ipc::signal_name(sig);
        if (server_.draining()) return complain("{} ignored: pid {} is draining", name, ::getpid());
        if (pending_) {
            return complain("{} ignored: a restart is already under way (pid {})", name,
                            pending_->pid);
        }
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) == -1) return ipc::warn("pipe2");  // keep serving
        ipc::unique_fd ready_read{fds[0]}, ready_write_low{fds[1]};
        // The child's end goes to fd >= 5, so that its dup2 to 3 and 4 cannot overwrite it.
        ipc::unique_fd ready_write{::fcntl(ready_write_low.get(), F_DUPFD_CLOEXEC, 5)};
        if (!ready_write) return ipc::warn("fcntl(F_DUPFD_CLOEXEC)");
        ready_write_low.reset();

        ExecPlan plan;
        make_plan(plan, ready_write.get());
        ipc::explain("pipe() = [{}, {}]: the readiness pipe; fork()", ready_read.get(),
                     ready_write.get());
        const pid_t pid = ::fork();
        if (pid == -1) return ipc::warn("fork");
        if (pid == 0) exec_child(plan);
        ready_write.reset();  // from now on only the child holds it: EOF means it is gone
        ipc::explain(
            "fork() = {}; the child gets fd 3 = listener {}, fd 4 = pipe, "
            "LISTEN_FDS=1 LISTEN_PID={}, then execve({})",
            pid, listener_, pid, exe_);
        say("pid {}: {}: starting generation {} as pid {}", ::getpid(), name, generation_ + 1, pid);
        pending_ = Pending{pid, std::move(ready_read), clock_type::now() + opt_.restart_timeout};
    }

    // Fills plan in place: envp and argv point into it, so it must not move afterwards.
    void make_plan(ExecPlan& plan, int ready_write) const {
        plan.exe = exe_;
        plan.listen_fd = listener_;
        plan.ready_fd = ready_write;
        plan.mask = original_mask_;
        plan.narrate = ipc::explaining();
        for (char** e = environ; *e != nullptr; ++e) {
            const std::string_view entry{*e};
            if (entry.starts_with("LISTEN_") || entry.starts_with("IPCKIT_GRACEFUL_GENERATION=") ||
                entry.starts_with("IPCKIT_GRACEFUL_READY_FD="))
                continue;
            plan.env_text.emplace_back(entry);
        }
        plan.env_text.push_back("LISTEN_FDS=1");
        plan.env_text.push_back(fmt::format("IPCKIT_GRACEFUL_GENERATION={}", generation_ + 1));
        plan.env_text.push_back(fmt::format("IPCKIT_GRACEFUL_READY_FD={}", ready_fd_number));
        for (auto& s : plan.env_text) plan.envp.push_back(s.data());
        std::strcpy(plan.listen_pid.data(), "LISTEN_PID=");
        plan.envp.push_back(plan.listen_pid.data());
        plan.envp.push_back(nullptr);
        for (char** a = argv_; *a != nullptr; ++a) plan.argv.push_back(*a);
        plan.argv.push_back(nullptr);
    }

    // The new copy wrote to its readiness pipe, or closed it.
    void on_ready_pipe() {
        const std::string text = read_message();
        if (text == "ready\n") return hand_over();
        const std::string why = failure(text, "closed its readiness pipe without saying ready");
        // A child that reported a failed call is already on its way to _exit(127).
        abandon_restart(why, /*kill_it=*/!text.starts_with("child-error "));
    }

    // What the new copy has written on its pipe, without waiting for more.
    std::string read_message() const {
        pollfd p{pending_->ready.get(), POLLIN, 0};
        if (::poll(&p, 1, 0) != 1) return {};
        char buf[128];
        const ssize_t n = ipc::read_some(pending_->ready.get(), buf, sizeof buf);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string{};
    }

    // Why the new copy failed, from what it wrote. exec_child's "child-error ERRNO CALL" is
    // reported the way ipc::warn reports a failed call.
    std::string failure(const std::string& text, const char* if_silent) const {
        if (text.empty()) return if_silent;
        if (!text.starts_with("child-error "))
            return fmt::format("said '{}' instead of ready", text.substr(0, text.find('\n')));
        char* rest = nullptr;
        const long err = std::strtol(text.c_str() + std::strlen("child-error "), &rest, 10);
        std::string call{rest + 1, std::strcspn(rest + 1, "\n")};
        if (call == "execve") call = fmt::format("execve({})", exe_);
        ipc::warn_en(static_cast<int>(err), fmt::format("pid {}: {}", pending_->pid, call));
        return "could not start";
    }

    void hand_over() {
        const pid_t successor = pending_->pid;
        pending_.reset();
        ipc::explain("read(readiness pipe) = \"ready\": pid {} is accepting on the same socket",
                     successor);
        begin_drain(fmt::format("pid {} is ready", successor));
    }

    // A new copy that failed: make sure it is gone (SIGKILL, then waitpid), keep serving.
    void abandon_restart(const std::string& why, bool kill_it = true) {
        const pid_t pid = pending_->pid;
        pending_.reset();
        int status = 0;
        if (kill_it && ::kill(pid, SIGKILL) == -1) ipc::warn(fmt::format("kill({}, SIGKILL)", pid));
        while (::waitpid(pid, &status, 0) == -1) {
            if (errno != EINTR) {
                ipc::warn(fmt::format("waitpid({})", pid));
                break;
            }
        }
        ipc::explain("{}waitpid({}) = {}", kill_it ? fmt::format("kill({}, SIGKILL); ", pid) : "",
                     pid, describe(status));
        complain("restart failed: pid {} {} ({}); pid {} keeps serving", pid, why, describe(status),
                 ::getpid());
    }

    static std::string describe(int status) {
        if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
        if (WIFSIGNALED(status))
            return fmt::format("killed by {}", ipc::signal_name(WTERMSIG(status)));
        return fmt::format("status {:#x}", status);
    }

    // SIGCHLD: a new copy died before it was ready, or a successor died while we drain.
    void reap_children() {
        for (;;) {
            int status = 0;
            const pid_t pid = ::waitpid(-1, &status, WNOHANG);
            if (pid <= 0) return;  // 0: none left to reap; -1 ECHILD: no children at all
            ipc::explain("waitpid(-1, WNOHANG) = {} ({})", pid, describe(status));
            if (pending_ && pending_->pid == pid) {
                const std::string why = failure(read_message(), "ended before it was ready");
                pending_.reset();
                complain("restart failed: pid {} {} ({}); pid {} keeps serving", pid, why,
                         describe(status), ::getpid());
            } else {
                say("pid {}: successor pid {} ended ({})", ::getpid(), pid, describe(status));
            }
        }
    }

    void shut_down(int sig) {
        if (pending_) abandon_restart(fmt::format("was stopped by {}", ipc::signal_name(sig)));
        if (server_.draining()) {
            say("pid {}: {}: already draining", ::getpid(), ipc::signal_name(sig));
            return;
        }
        begin_drain(ipc::signal_name(sig));
    }

    // Stop accepting; the serving thread returns once every connection it accepted is finished.
    void begin_drain(const std::string& why) {
        server_.stop_accepting();
        drain_deadline_ = clock_type::now() + opt_.drain_timeout;
        ipc::explain("stop accepting: svr_sock_ = -1 (no shutdown(2): fd {} is shared)", listener_);
        say("pid {}: {}: stopped accepting, finishing {} requests in flight", ::getpid(), why,
            in_flight_.load());
    }

    void check_deadlines() {
        const auto now = clock_type::now();
        if (pending_ && now >= pending_->deadline) {
            abandon_restart(fmt::format(
                "was not ready within {}ms",
                std::chrono::duration_cast<milliseconds>(opt_.restart_timeout).count()));
        }
        if (drain_deadline_ && now >= *drain_deadline_) {
            drain_deadline_.reset();
            forced_ = true;
            say("pid {}: drain timeout: closing {} requests still in flight", ::getpid(),
                in_flight_.load());
            server_.close_connections();
        }
    }

    int finish() {
        serving_.join();
        if (server_.accept_failed()) {
            complain("accept failed on fd {}: pid {} no longer serves", listener_, ::getpid());
            return ipc::exit_failure;
        }
        ipc::explain("the accept loop and every connection are done; close({})", listener_);
        remove_pidfile_if_ours(opt_.pidfile);
        say("pid {}: {}, exit 0", ::getpid(), forced_ ? "connections closed" : "drained");
        return 0;
    }

    const Options& opt_;
    const std::string exe_;  // the binary a restart executes
    const int generation_;
    const int listener_;
    Server& server_;
    std::thread& serving_;
    ipc::unique_fd serving_done_;  // EOF when the serving thread has returned
    std::atomic<int>& in_flight_;
    char** argv_;
    const sigset_t original_mask_;
    std::optional<Pending> pending_;
    std::optional<clock_type::time_point> drain_deadline_;
    bool forced_ = false;  // the drain timed out and the connections left were closed
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "An HTTP server that restarts on SIGHUP (or SIGUSR2) without dropping a request: it "
        "starts a new copy of itself with the listening socket as fd 3, waits until the copy "
        "says it is ready, stops accepting, finishes the requests in flight and exits. "
        "SIGTERM/SIGINT drain and exit 0. GET / answers 'hello from pid N, generation G'; "
        "GET /sleep?ms=N answers after N ms; GET /health says ok and how many requests are in "
        "flight; GET /env shows LISTEN_* and "
        "IPCKIT_GRACEFUL_* in this process's environment. Test hook: IPCKIT_GRACEFUL_FAIL=exit "
        "(or 1) makes every copy started by a restart exit 1 before serving, =hang makes it "
        "never say ready.",
        "graceful"};
    ipc::setup(app, "graceful --listen 127.0.0.1:0 --pidfile /tmp/graceful.pid -x");
    Options opt;
    app.add_option("--listen", opt.listen, "HOST:PORT to listen on; port 0 lets the kernel choose")
        ->capture_default_str();
    app.add_option("--pidfile", opt.pidfile, "Keep PATH naming the serving process");
    ipc::add_duration_option(app, "--restart-timeout", opt.restart_timeout,
                             "How long a new copy has to say it is ready before it is killed");
    ipc::add_duration_option(app, "--drain-timeout", opt.drain_timeout,
                             "How long requests in flight may take after a stop or handover");
    app.add_option("--threads", opt.threads, "Worker threads (one connection each at a time)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    ipc::parse(app, argc, argv);
    if (opt.restart_timeout.count() <= 0) ipc::usage_error("--restart-timeout must be positive");
    if (opt.drain_timeout.count() <= 0) ipc::usage_error("--drain-timeout must be positive");

    const Inherited in = take_inheritance();
    const std::string exe = self_path();

    // Block the signals we handle before any thread exists, so every thread inherits the mask
    // and they all wait in one queue that only signalfd reads.
    // SIGCHLD ignored by whoever started us would make the kernel reap our children itself, and
    // waitpid(2) would fail: take the default back. (Ignored HUP or INT, as nohup and a shell's
    // background jobs have them, still reach signalfd: a blocked signal is never discarded.)
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    if (::sigaction(SIGCHLD, &dfl, nullptr) == -1) ipc::die("sigaction(SIGCHLD, SIG_DFL)");
    sigset_t handled, original;
    sigemptyset(&handled);
    for (int s : {SIGHUP, SIGUSR2, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&handled, s);
    if (::sigprocmask(SIG_BLOCK, &handled, &original) == -1) ipc::die("sigprocmask");
    ipc::unique_fd sfd{::signalfd(-1, &handled, SFD_CLOEXEC)};
    if (!sfd) ipc::die("signalfd");

    ipc::unique_fd listener =
        in.listen_fd ? adopt_listener(*in.listen_fd) : open_listener(opt.listen);
    const std::string address = ipc::addr_string(ipc::local_addr(listener.get()));

    if (in.generation > 1 && !in.fail_hook.empty() && in.fail_hook != "0") {
        complain("IPCKIT_GRACEFUL_FAIL={}: failing on purpose (a test hook)", in.fail_hook);
        if (in.fail_hook == "hang") {
            for (;;) ::pause();  // never ready: the old process kills us at --restart-timeout
        }
        return ipc::exit_failure;
    }

    // accept(2) returns EAGAIN after this long without a connection, so the library's accept
    // loop re-reads svr_sock_ and notices stop_accepting(). A socket option: shared, harmless.
    timeval tick{0, static_cast<suseconds_t>(std::chrono::microseconds(accept_tick).count())};
    if (::setsockopt(listener.get(), SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick) == -1)
        ipc::die("setsockopt(SO_RCVTIMEO)");

    const int pid = ::getpid();
    const int generation = in.generation;
    std::atomic<int> in_flight{0};

    Server server;
    const std::size_t threads = opt.threads;
    server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // Counts a request in flight while its handler runs.
    auto counted = [&in_flight](auto handler) {
        return [&in_flight, handler](const httplib::Request& req, httplib::Response& res) {
            in_flight.fetch_add(1);
            handler(req, res);
            in_flight.fetch_sub(1);
        };
    };
    server.Get("/", counted([pid, generation](const httplib::Request&, httplib::Response& res) {
                   res.set_content(
                       fmt::format("hello from pid {}, generation {}\n", pid, generation),
                       "text/plain");
               }));
    server.Get(
        "/sleep",
        counted([pid, generation, &server](const httplib::Request& req, httplib::Response& res) {
            const std::string text = req.get_param_value("ms");
            char* end = nullptr;
            const long ms = std::strtol(text.c_str(), &end, 10);
            if (text.empty() || *end != '\0' || ms < 0 || ms > max_sleep_ms) {
                res.status = 400;
                res.set_content(fmt::format("ms must be 0..{}\n", max_sleep_ms), "text/plain");
                return;
            }
            if (!server.pause_for(milliseconds(ms))) {
                res.status = 503;  // cut short by the drain timeout; the connection is closed
                return;
            }
            res.set_content(
                fmt::format("slept {} ms in pid {}, generation {}\n", ms, pid, generation),
                "text/plain");
        }));
    server.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
        res.set_content(fmt::format("ok: pid {}, generation {}, {} requests in flight\n", pid,
                                    generation, in_flight.load()),
                        "text/plain");
    });
    server.Get("/env", counted([](const httplib::Request&, httplib::Response& res) {
                   std::string text;  // nothing changes the environment once the threads run
                   for (char** e = environ; *e != nullptr; ++e) {
                       const std::string_view entry{*e};
                       if (entry.starts_with("LISTEN_") || entry.starts_with("IPCKIT_GRACEFUL_"))
                           text += fmt::format("{}\n", entry);
                   }
                   res.set_content(text.empty() ? "none\n" : text, "text/plain");
               }));
    // The pid file first: a failure there must end the process before any thread runs.
    write_pidfile(opt.pidfile);
    auto done = ipc::make_pipe();
    std::thread serving([&, write_end = std::move(done.write)]() mutable {
        (void)server.serve(listener.get());
        write_end.reset();  // EOF on the read end: the control thread may finish
    });

    say("serving on {}: pid {}, generation {}", address, pid, generation);
    if (in.ready_fd) {
        ipc::unique_fd ready{*in.ready_fd};
        if (!ipc::write_all(ready.get(), "ready\n", 6)) ipc::warn("write(readiness pipe)");
        ipc::explain("write({}, \"ready\\n\"); close({}): the old process may stop now",
                     *in.ready_fd, *in.ready_fd);
    }

    Control control{opt,    exe,     generation,           listener.get(),
                    server, serving, std::move(done.read), in_flight,
                    argv,   original};
    const int status = control.run(sfd.get());
    if (server.accept_failed()) (void)listener.release();  // httplib closed it
    return status;
}
