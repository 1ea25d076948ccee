// graceful: a web server that restarts on SIGHUP without dropping a request.
// Usage: graceful [--listen HOST:PORT] [--pidfile PATH] [--restart-timeout D] [--drain-timeout D]
//                 [--threads N] [-x]
// Demonstrates "Go网络服务器如果无缝重启" and "其它" in signals-and-graceful-restart.md: the socket
// handed to a new copy of the program as fd 3, the copy saying "ready" on a pipe, the old one
// stopping to accept, finishing its requests in flight, and exiting. The HTTP server is beside.
// Try: graceful -x --pidfile /tmp/g.pid &   curl localhost:8080/;   kill -HUP $(cat /tmp/g.pid)
// See also: sigsend (sends the HUP), curl and wrk (the clients), docs/graceful.md
#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "graceful_http.hpp"
#include "graceful_support.hpp"
#include "ipc/child.hpp"
#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/net.hpp"
#include "ipc/output.hpp"
#include "ipc/process.hpp"
#include "ipc/signals.hpp"

namespace {

using graceful::env_number;  // the number in an environment variable (beside)

constexpr int listen_fd_number = 3;  // SD_LISTEN_FDS_START: where systemd and we put the socket
constexpr std::string_view listen_pid_prefix = "LISTEN_PID=";  // the child appends its pid
constexpr int ready_fd_number = 4;  // where the new copy finds the write end of the readiness pipe

struct options {
    std::string listen = "127.0.0.1:8080";
    std::string pidfile;
    std::chrono::nanoseconds restart_timeout = std::chrono::seconds(10);
    std::chrono::nanoseconds drain_timeout = std::chrono::seconds(30);
    int threads = 0;        // event loops; 0: one per CPU
    char** argv = nullptr;  // what a restart executes again
};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "An HTTP server that restarts on SIGHUP (or SIGUSR2) without dropping a request: it starts "
        "a new copy of itself with the listening socket as fd 3, waits until the copy says it is "
        "ready, stops accepting, finishes the requests in flight and exits. SIGTERM/SIGINT drain "
        "and exit 0. Pages: / (who answers), /sleep?ms=N, /health, /env. With LISTEN_FDS=1 and "
        "LISTEN_PID (a restart, or systemd), it serves fd 3, a listening stream socket. Test hook: "
        "IPCKIT_GRACEFUL_FAIL=exit|hang|throw makes the copies a restart starts fail.",
        "graceful"};
    ipc::setup(app, "graceful --listen 127.0.0.1:0 --pidfile /tmp/graceful.pid -x");
    options opt;
    app.add_option("--listen", opt.listen, "HOST:PORT to listen on; port 0 lets the kernel choose")
        ->capture_default_str();
    app.add_option("--pidfile", opt.pidfile, "Keep PATH naming the serving process");
    ipc::add_duration_option(app, "--restart-timeout", opt.restart_timeout,
                             "How long a new copy has to say it is ready before it is killed");
    ipc::add_duration_option(app, "--drain-timeout", opt.drain_timeout,
                             "How long requests in flight may take after a stop or handover");
    app.add_option("--threads", opt.threads, "Event loops, one thread each (0: one per CPU)")
        ->capture_default_str()
        ->check(CLI::Range(0, 256));
    ipc::parse(app, argc, argv);
    (void)ipc::split_host_port("--listen", opt.listen, ipc::port_zero::allowed);
    if (opt.restart_timeout.count() <= 0) ipc::usage_error("--restart-timeout must be positive");
    if (opt.drain_timeout.count() <= 0) ipc::usage_error("--drain-timeout must be positive");
    opt.argv = argv;
    return opt;
}

// What a parent handed us in the environment. Read once, before any thread starts, and removed,
// so that nothing this process starts later sees values that were meant for this process.
struct inherited {
    int generation = 1;
    std::optional<int> listen_fd;  // socket activation: LISTEN_PID is us, LISTEN_FDS=1
    std::optional<int> ready_fd;   // IPCKIT_GRACEFUL_READY_FD: write "ready\n" there when serving
};

inherited take_inheritance() {
    inherited in;
    if (auto g = env_number("IPCKIT_GRACEFUL_GENERATION")) in.generation = static_cast<int>(*g);
    if (auto fd = env_number("IPCKIT_GRACEFUL_READY_FD")) in.ready_fd = static_cast<int>(*fd);
    // sd_listen_fds(3): the variables are ours only if LISTEN_PID names this very process; a
    // stale pair inherited through a shell that forgot to remove them must be ignored.
    const auto pid = env_number("LISTEN_PID");
    const auto fds = env_number("LISTEN_FDS");
    if (pid && fds && *pid == ::getpid()) {
        if (*fds != 1) ipc::fail("LISTEN_FDS={}: expected exactly one socket", *fds);
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

// An inherited fd 3 must be a listening stream socket before we bet the service on it.
ipc::unique_fd adopt_listener(int fd) {
    int type = 0, accepting = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1) {
        if (errno == ENOTSOCK) ipc::fail("fd {} (LISTEN_FDS=1) is not a socket", fd);
        ipc::die(fmt::format("getsockopt({}, SO_TYPE)", fd));
    }
    if (type != SOCK_STREAM) {
        ipc::fail("fd {} (LISTEN_FDS=1) is a {} socket, not a listening stream socket", fd,
                  type == SOCK_DGRAM ? "datagram (SOCK_DGRAM)" : fmt::format("type {}", type));
    }
    len = sizeof accepting;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == -1)
        ipc::die(fmt::format("getsockopt({}, SO_ACCEPTCONN)", fd));
    if (accepting == 0)
        ipc::fail("fd {} (LISTEN_FDS=1) is a stream socket that is not listening", fd);
    // It came to us without FD_CLOEXEC; only the copy we hand to a new copy may cross exec.
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) ipc::die(fmt::format("fcntl({}, F_SETFD)", fd));
    ipc::explain("getsockopt({}, SO_TYPE) = SOCK_STREAM, SO_ACCEPTCONN = 1: serving it", fd);
    return ipc::unique_fd{fd};
}

// The signals we handle are blocked before any thread exists, so every thread inherits the mask
// and they all wait in one queue that only the signalfd reads: no code runs in a handler.
ipc::unique_fd block_signals(sigset_t& original) {
    // SIGCHLD ignored by whoever started us would make the kernel reap our children itself, and
    // waitpid(2) would fail: take the default back. (An ignored HUP or INT, as nohup and a
    // shell's background jobs have them, still reaches signalfd: a blocked signal is kept.)
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    if (::sigaction(SIGCHLD, &dfl, nullptr) == -1) ipc::die("sigaction(SIGCHLD, SIG_DFL)");
    sigset_t handled;
    ::sigemptyset(&handled);
    for (int s : {SIGHUP, SIGUSR2, SIGTERM, SIGINT}) ::sigaddset(&handled, s);
    if (::sigprocmask(SIG_BLOCK, &handled, &original) == -1) ipc::die("sigprocmask");
    ipc::unique_fd sfd{::signalfd(-1, &handled, SFD_CLOEXEC)};
    if (!sfd) ipc::die("signalfd");
    return sfd;
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

// Everything the child of fork() needs, made before fork(): the parent has threads, so in the
// child only async-signal-safe calls may run until execve (no malloc, no locks, no fmt).
struct exec_plan {
    std::string exe;
    char** argv = nullptr;               // ours: the same command line
    std::array<std::string, 3> env_add;  // LISTEN_FDS=1, the next generation, the readiness fd
    std::array<char, 32> listen_pid{};   // "LISTEN_PID=" + the child's pid, written by the child
    std::vector<char*> envp;             // environ (no LISTEN_*: removed at start) + the above
    std::string failed_exec;             // "execve(EXE)", for ipc::child::die
    sigset_t mask{};                     // the signal mask the new program starts with
    int listen_fd = -1, ready_fd = -1;
};

// The child between fork() and execve(): the socket on fd 3 and the readiness pipe on fd 4,
// both without FD_CLOEXEC, everything else closed, the signal mask restored, and ourselves again.
[[noreturn]] void exec_child(exec_plan& plan) {
    const auto pid = static_cast<unsigned long>(::getpid());  // ours, known only after fork()
    ipc::child::format_decimal(plan.listen_pid.data() + listen_pid_prefix.size(), pid);
    // dup2 clears FD_CLOEXEC on the new descriptor; a socket already on 3 needs fcntl instead.
    if ((plan.listen_fd == listen_fd_number ? ::fcntl(listen_fd_number, F_SETFD, 0)
                                            : ::dup2(plan.listen_fd, listen_fd_number)) == -1)
        ipc::child::die("dup2(listener, 3)");
    if (::dup2(plan.ready_fd, ready_fd_number) == -1)  // ready_fd >= 5: 3 did not overwrite it
        ipc::child::die("dup2(readiness pipe, 4)");
    if (::close_range(ready_fd_number + 1, ~0U, 0) == -1) ipc::child::die("close_range(5, ~0U)");
    if (::sigprocmask(SIG_SETMASK, &plan.mask, nullptr) == -1) ipc::child::die("sigprocmask");
    ipc::child::explain("dup2(listener, 3); dup2(readiness pipe, 4); close_range(5, ~0U); execve");
    ::execve(plan.exe.c_str(), plan.argv, plan.envp.data());
    ipc::child::die(plan.failed_exec.c_str());  // 127: what a shell returns when it cannot run it
}

// The control thread: signals arrive here through the signalfd, and everything about restarting
// and stopping happens here, on one thread, in the order the events come.
struct control {
    const options& opt;
    const std::string exe;  // the binary a restart executes
    const int generation;
    const int listener;
    http::server& server;
    const sigset_t original_mask;  // what a new copy starts with
    struct new_copy {              // a new copy that has not said "ready" yet
        pid_t pid = -1;
        ipc::unique_fd ready;  // read end of its readiness pipe
        ipc::steady::time_point deadline;
    };
    std::optional<new_copy> pending{};
    ipc::steady::time_point drain_deadline = ipc::never;
    bool forced = false;  // the drain timed out and the connections left were closed

    // Returns when the server has drained: the exit status of the process.
    int run(int sfd) {
        for (;;) {
            std::array<pollfd, 3> fds{{{sfd, POLLIN, 0},
                                       {server.done_fd(), POLLIN, 0},
                                       {pending ? pending->ready.get() : -1, POLLIN, 0}}};
            const auto next = std::min(pending ? pending->deadline : ipc::never, drain_deadline);
            if (::poll(fds.data(), fds.size(), ipc::ms_until(next)) == -1 && errno != EINTR)
                ipc::die("poll");
            if (fds[0].revents != 0) on_signal(sfd);
            if (fds[2].revents != 0 && pending) on_ready_pipe();
            if (fds[1].revents != 0) return finish();
            check_deadlines();
        }
    }

    void on_signal(int sfd) {
        signalfd_siginfo si{};
        if (ipc::read_some(sfd, &si, sizeof si) != sizeof si) ipc::die("read(signalfd)");
        const int sig = static_cast<int>(si.ssi_signo);
        ipc::explain("read(signalfd) = {} from pid {}", ipc::signal_name(sig), si.ssi_pid);
        if (sig == SIGHUP || sig == SIGUSR2) return start_restart(sig);
        if (pending) abandon_restart(fmt::format("was stopped by {}", ipc::signal_name(sig)));
        if (!server.accepting())
            return ipc::say("pid {}: {}: already draining", ::getpid(), ipc::signal_name(sig));
        begin_drain(ipc::signal_name(sig));  // SIGTERM, SIGINT
    }

    void start_restart(int sig) {
        const auto name = ipc::signal_name(sig);
        if (!server.accepting() || pending) {
            return ipc::complain(
                "{} ignored: {}", name,
                pending ? fmt::format("a restart is already under way (pid {})", pending->pid)
                        : fmt::format("pid {} is draining", ::getpid()));
        }
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) == -1) return ipc::warn("pipe2");  // keep serving
        ipc::unique_fd ready_read{fds[0]}, ready_write_low{fds[1]};
        // The child's end goes to fd >= 5, so that its dup2 to 3 and 4 cannot overwrite it.
        const ipc::unique_fd ready_write{::fcntl(ready_write_low.get(), F_DUPFD_CLOEXEC, 5)};
        if (!ready_write) return ipc::warn("fcntl(F_DUPFD_CLOEXEC)");
        exec_plan plan;
        make_plan(plan, ready_write.get());
        ipc::explain("pipe() = [{}, {}]: the readiness pipe; fork()", fds[0], ready_write.get());
        const pid_t pid = ::fork();
        if (pid == -1) return ipc::warn("fork");
        if (pid == 0) exec_child(plan);
        // Our copies of the write end close as we return: then only the child holds it, and
        // end of file on the read end means the child is gone.
        ipc::explain(
            "fork() = {}; the child gets fd 3 = listener {}, fd 4 = pipe, LISTEN_FDS=1 "
            "LISTEN_PID={}, then execve({})",
            pid, listener, pid, exe);
        ipc::say("pid {}: {}: starting generation {} as pid {}", ::getpid(), name, generation + 1,
                 pid);
        pending = new_copy{pid, std::move(ready_read), ipc::deadline_after(opt.restart_timeout)};
    }

    // Fills plan in place: envp points into it, so it must not move afterwards.
    void make_plan(exec_plan& plan, int ready_write) const {
        plan.exe = exe;
        plan.argv = opt.argv;
        plan.env_add = {"LISTEN_FDS=1",
                        fmt::format("IPCKIT_GRACEFUL_GENERATION={}", generation + 1),
                        fmt::format("IPCKIT_GRACEFUL_READY_FD={}", ready_fd_number)};
        listen_pid_prefix.copy(plan.listen_pid.data(), listen_pid_prefix.size());
        for (char** e = environ; *e != nullptr; ++e) plan.envp.push_back(*e);
        for (auto& s : plan.env_add) plan.envp.push_back(s.data());
        plan.envp.insert(plan.envp.end(), {plan.listen_pid.data(), nullptr});
        plan.failed_exec = fmt::format("execve({})", exe);
        plan.mask = original_mask;
        plan.listen_fd = listener;
        plan.ready_fd = ready_write;
    }

    // The new copy wrote to its readiness pipe, or closed it.
    void on_ready_pipe() {
        char buf[64];
        const ssize_t n = ipc::read_some(pending->ready.get(), buf, sizeof buf);
        const std::string_view text{buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0))};
        if (text != "ready\n")
            return abandon_restart(fmt::format("closed its readiness pipe without saying ready{}",
                                               text.empty() ? "" : fmt::format(" ('{}')", text)));
        const pid_t successor = pending->pid;
        pending.reset();
        ipc::explain("read(readiness pipe) = \"ready\": pid {} is accepting on the same socket",
                     successor);
        begin_drain(fmt::format("pid {} is ready", successor));
    }

    // A new copy that failed: make sure it is gone (SIGKILL, then waitpid), and keep serving.
    // (Its death needs no SIGCHLD: it closes the readiness pipe, the one place we wait on it.)
    void abandon_restart(const std::string& why) {
        const pid_t pid = pending->pid;
        pending.reset();
        if (::kill(pid, SIGKILL) == -1) ipc::warn(fmt::format("kill({}, SIGKILL)", pid));
        const int status = ipc::wait_child(pid);  // a zombie already, or dead by SIGKILL
        ipc::explain("kill({}, SIGKILL); waitpid({}) = {}", pid, pid, ipc::describe_status(status));
        graceful::reclaim_pidfile(opt.pidfile);  // it may have written its pid there already
        const bool exec_failed = WIFEXITED(status) && WEXITSTATUS(status) == 127;
        ipc::complain("restart failed: pid {} {} ({}); pid {} keeps serving", pid,
                      exec_failed ? "could not start" : why, ipc::describe_status(status),
                      ::getpid());
    }

    // Stop accepting; the loops return once every connection they accepted is finished.
    void begin_drain(const std::string& why) {
        server.stop_accepting();
        drain_deadline = ipc::deadline_after(opt.drain_timeout);
        ipc::explain("stop accepting: EPOLL_CTL_DEL {} in each loop (no shutdown(2): it is shared)",
                     listener);
        ipc::say("pid {}: {}: stopped accepting, finishing {} requests in flight", ::getpid(), why,
                 server.in_flight());
    }

    void check_deadlines() {
        const auto now = ipc::steady::now();
        if (pending && now >= pending->deadline) {
            abandon_restart(fmt::format("was not ready within {}ms",
                                        opt.restart_timeout / std::chrono::milliseconds(1)));
        }
        if (now >= drain_deadline) {
            drain_deadline = ipc::never;
            forced = true;
            ipc::say("pid {}: drain timeout: closing {} requests still in flight", ::getpid(),
                     server.in_flight());
            server.close_connections();
        }
    }

    int finish() {
        server.join();
        if (server.accept_error() != 0) return ipc::exit_failure;  // the server said why
        ipc::explain("the accept loop and every connection are done; close({})", listener);
        graceful::remove_pidfile_if_ours(opt.pidfile);
        ipc::say("pid {}: {}, exit 0", ::getpid(), forced ? "connections closed" : "drained");
        return 0;
    }
};

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    const inherited in = take_inheritance();
    const std::string exe = self_path();
    const ipc::unique_fd listener =
        in.listen_fd ? adopt_listener(*in.listen_fd) : graceful::open_listener(opt.listen);
    sigset_t original;
    const ipc::unique_fd sfd = block_signals(original);
    graceful::fail_if_asked(in.generation);  // IPCKIT_GRACEFUL_FAIL, the test hook
    graceful::write_pidfile(opt.pidfile);    // rename(2)d into place; before any thread starts

    const int pid = ::getpid();
    http::server server{listener.get(), opt.threads, graceful::pages(pid, in.generation)};
    ipc::say("serving on {}: pid {}, generation {}",
             ipc::addr_string(ipc::local_addr(listener.get())), pid, in.generation);
    if (in.ready_fd) {
        ipc::unique_fd ready{*in.ready_fd};
        if (!ipc::write_all(ready.get(), "ready\n", 6)) ipc::warn("write(readiness pipe)");
        ipc::explain("write({}, \"ready\\n\"); close({}): the old process may stop now",
                     *in.ready_fd, *in.ready_fd);
    }
    control c{opt, exe, in.generation, listener.get(), server, original};
    return c.run(sfd.get());
} catch (...) {
    return ipc::internal_error();
}
