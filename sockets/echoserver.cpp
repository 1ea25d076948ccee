// echoserver: listen on a stream socket and write back every line a client sends, a thread each.
// Usage: echoserver [--network tcp|tcp4|tcp6|unix|unixpacket] [--listen ADDR] [--timeout 10s]
//                   [--max-line 64K] [--max-conns N] [--drain 5s] [--backlog N] [-x]
// Demonstrates the notes' "Socket" part (multiprocess-ipc.md): net.Listen is socket, bind and
// listen; Accept is accept4; a thread per connection (the notes' goroutine) runs ReadBytes('\n')
// and Write with SetDeadline renewed per line; SIGTERM stops accepting and drains.
// Try: echoserver --listen 127.0.0.1:0 -x   then   nc 127.0.0.1 PORT
// See also: echoloop (the same with one epoll loop), echodgram (datagrams), echoclient, nc.
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/net.hpp"
#include "ipc/output.hpp"
#include "server.hpp"

namespace {

using ipc::steady;
using ipc::unique_fd;

// --network, --listen, --timeout, --max-line, --max-conns, --drain, --backlog (server.hpp).
struct options : echo::server_options {};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Echo server: accept connections and write back each line a client sends, with a thread "
        "per connection, as the notes' net.Listen, Accept and ReadBytes('\\n') example does with "
        "a goroutine each. Logs each connection (RemoteAddr, LocalAddr, bytes) on stdout. "
        "SIGINT/SIGTERM: stop accepting, let connections finish their line, exit 0.",
        "echoserver"};
    ipc::setup(app, "echoserver --listen 127.0.0.1:0 --timeout 30s    (then: nc 127.0.0.1 PORT)");
    options opt;
    echo::add_server_options(app, opt, SOCK_STREAM);
    std::string model = "thread";
    app.add_option("--model", model,
                   "thread: a thread per connection, the only model here (accepted so that older "
                   "scripts still run); the epoll loop is echoloop")
        ->check(CLI::IsMember({"thread", "epoll"}))
        ->capture_default_str();
    ipc::parse(app, argc, argv);
    if (model == "epoll") {
        ipc::usage_error(
            "--model epoll: the epoll loop is a tool of its own: run echoloop with "
            "the same options");
    }
    echo::check_server_options(app, opt, SOCK_STREAM);
    return opt;
}

// net.Listen(network, address): socket(2), bind(2), listen(2). The listening socket is
// non-blocking: poll(2) says when a client is queued, and accept4(2) then never waits, even if
// that client gave up meanwhile (the main thread must stay free to see signals and ended threads).
unique_fd listen_on(const options& opt) {
    const ipc::sock_addr addr =
        ipc::resolve(*opt.net, "--listen", opt.listen, ipc::resolve_for::listen).front();
    unique_fd fd(::socket(addr.family(), opt.net->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) ipc::die(fmt::format("socket({})", opt.network));
    ipc::explain("socket({}) = {}", opt.network, fd.get());
    echo::listener_options(fd.get(), *opt.net, addr);
    echo::prepare_socket_file(opt.listen, addr, opt.net->type);
    if (::bind(fd.get(), addr.get(), addr.len) == -1) ipc::die(fmt::format("bind({})", opt.listen));
    ipc::explain("bind({}, {})", fd.get(), opt.listen);
    echo::adopt_socket_file(opt.listen, addr);
    if (::listen(fd.get(), opt.backlog) == -1) ipc::die("listen");
    ipc::explain("listen({}, {})", fd.get(), opt.backlog);
    return fd;
}

// ---- A connection's thread ----

// What the connection threads share with the main thread.
struct shared_state {
    explicit shared_state(const options& o) : opt(o) {}
    const options& opt;
    unique_fd stop_fd{::eventfd(0, EFD_CLOEXEC)};  // readable once the server stops: wakes polls
    unique_fd done_fd{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};  // bumped as a thread ends
    std::atomic<bool> stopping{false};
    std::mutex mu;                    // guards done
    std::vector<std::uint64_t> done;  // connections whose thread has ended, for main to join
};

// One connection, served by its own thread. The main thread owns it and closes the socket only
// after pthread_join(), so its shutdown(2) at the drain deadline never hits a reused descriptor.
struct thread_conn : echo::connection {
    thread_conn(std::uint64_t number, unique_fd sock, const ipc::sock_addr& from, shared_state& sh)
        : connection(number, std::move(sock), from, sh.opt), shared(sh) {}
    shared_state& shared;
    pthread_t thread{};
    std::string reason;   // why it ended: written by the thread, read by main after the join
    bool forced = false;  // main shut it down at the drain deadline (main's own field)
};

enum class woke { data, stop, deadline };

// Waits in poll(2) for the socket to be readable, the server to stop (stop_fd; -1: don't watch),
// or the deadline: the blocking Read with a deadline that Go's runtime does for a goroutine.
woke wait_readable(const thread_conn& c, int stop_fd, steady::time_point deadline) {
    for (;;) {
        std::array<pollfd, 2> fds{{{c.fd.get(), POLLIN, 0}, {stop_fd, POLLIN, 0}}};
        const int n = ::poll(fds.data(), fds.size(), ipc::ms_until(deadline));
        if (n == -1 && errno == EINTR) continue;
        if (n == -1) ipc::die("poll");
        ipc::explain("conn {}: poll() = {}", c.id, n);
        if (fds[0].revents != 0) return woke::data;  // POLLHUP and POLLERR too: recv reports them
        if (fds[1].revents != 0) return woke::stop;
        if (steady::now() >= deadline) return woke::deadline;
    }
}

// Write: all of `data`, as Go's Write. What the socket buffer cannot take at once (EAGAIN, or a
// partial write) waits in poll(2) for POLLOUT, at most --timeout without progress: a client that
// reads nothing cannot hold its thread forever. Returns why it failed, or nullopt.
std::optional<std::string> send_all(thread_conn& c, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(c.fd.get(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1 && errno == EAGAIN) {
            pollfd p{c.fd.get(), POLLOUT, 0};
            int ready = 0;
            do {
                ready = ::poll(&p, 1, ipc::ms_until(ipc::deadline_after(c.shared.opt.timeout)));
            } while (ready == -1 && errno == EINTR);
            if (ready == -1) ipc::die("poll");
            if (ready == 0) return echo::connection::write_timeout_reason(c.shared.opt);
            continue;
        }
        if (n == -1) return ipc::error_text(errno, "send");
        ipc::explain("conn {}: send({}) = {}", c.id, data.size(), n);
        c.bytes_out += static_cast<std::uint64_t>(n);
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return std::nullopt;
}

std::string idle(thread_conn& c) {
    (void)send_all(c, echo::idle_text);
    return echo::connection::idle_reason(c.shared.opt);
}

// What one read brought: the lines it completes go back (Write); a line longer than --max-line
// gets an error and ends the connection. Returns why the connection ends, or nullopt.
std::optional<std::string> echo_bytes(thread_conn& c, std::string_view got, std::string& chunk) {
    c.bytes_in += got.size();
    chunk.clear();
    const bool fits = c.frame.feed(got, chunk);
    if (auto err = send_all(c, chunk)) return err;
    if (fits) return std::nullopt;
    (void)send_all(c, c.too_long_text(c.shared.opt));
    return c.too_long_reason(c.shared.opt);
}

// The notes' loop, for one connection:
//     for {
//         conn.SetDeadline(time.Now().Add(timeout))
//         line, err := reader.ReadBytes('\n')
//         conn.Write(line)
//     }
// The thread waits in poll() for data, the deadline or the server's stop (a blocking recv(2)
// could not see the last two), then reads what is there. Returns why the connection ended.
std::string serve(thread_conn& c) {
    const options& opt = c.shared.opt;
    // A unixpacket message must fit whole, to be measured: one byte more than the longest.
    std::vector<char> buf(opt.net->type == SOCK_STREAM ? 64 * 1024UL : opt.max_line + 1);
    std::string chunk;  // what goes back for one read, reused
    steady::time_point deadline = ipc::deadline_after(opt.timeout);
    bool stopping = false;
    for (;;) {
        stopping = stopping || c.shared.stopping.load();
        if (stopping && c.idle()) return "shutdown";  // between two lines, nothing sent since
        const woke w = wait_readable(c, stopping ? -1 : c.shared.stop_fd.get(), deadline);
        if (w == woke::deadline) return idle(c);
        if (w == woke::stop) {
            stopping = true;
            continue;
        }
        const ssize_t n = ::recv(c.fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n == -1 && (errno == EINTR || errno == EAGAIN)) continue;  // poll again
        if (n == -1) return ipc::error_text(errno, "recv");
        ipc::explain("conn {}: recv() = {}", c.id, n);
        if (n == 0) return send_all(c, c.frame.finish()).value_or("eof");
        const std::uint64_t lines_before = c.frame.units();
        if (auto end = echo_bytes(c, {buf.data(), static_cast<std::size_t>(n)}, chunk)) return *end;
        if (c.frame.units() != lines_before) {
            deadline = ipc::deadline_after(opt.timeout);  // SetDeadline again, for the next line
        } else if (steady::now() >= deadline) {           // bytes keep coming, but no line ends
            return idle(c);
        }
    }
}

// The thread's start routine (pthread_create(3)): serve, then ask main to join it.
void* connection_thread(void* arg) {
    thread_conn& c = *static_cast<thread_conn*>(arg);
    c.reason = serve(c);
    {
        const std::lock_guard lock(c.shared.mu);
        c.shared.done.push_back(c.id);
    }
    const std::uint64_t one = 1;
    if (!ipc::write_all(c.shared.done_fd.get(), &one, sizeof one)) ipc::die("write(eventfd)");
    return nullptr;
}

// ---- The main thread: accept, start a thread per client, join them, stop ----

class thread_server {
  public:
    thread_server(const options& opt, unique_fd listener, int sigfd)
        : opt_(opt), listener_(std::move(listener)), sigfd_(sigfd), acc_(listener_.get()) {
        if (!shared_.stop_fd || !shared_.done_fd) ipc::die("eventfd");
    }

    // Waits in poll(2) for a stop signal, a thread that ended, or a client to accept; after a
    // stop, until every connection is closed or the drain deadline passes.
    int run() {
        for (;;) {
            const bool stopping = shared_.stopping.load();
            if (stopping && live_.empty()) break;
            const bool accepting = !stopping && room() && steady::now() >= pause_end_;
            std::array<pollfd, 3> fds{{{sigfd_, POLLIN, 0},
                                       {shared_.done_fd.get(), POLLIN, 0},
                                       {accepting ? listener_.get() : -1, POLLIN, 0}}};
            if (::poll(fds.data(), fds.size(), ipc::ms_until(next_wake(accepting))) == -1) {
                if (errno == EINTR) continue;
                ipc::die("poll");
            }
            if (fds[0].revents != 0) on_signal();
            if (fds[1].revents != 0) join_ended();
            if (fds[2].revents != 0 && listener_) accept_clients();
            if (shared_.stopping.load() && !live_.empty() && steady::now() >= drain_end_) {
                shut_down_all();
            }
        }
        echo::say_stopped(next_id_ - 1);
        return 0;
    }

  private:
    [[nodiscard]] bool room() const {
        return opt_.max_conns == 0 || live_.size() < static_cast<std::size_t>(opt_.max_conns);
    }

    // poll(2) sleeps until the drain's end, or the end of an accept pause; else until a signal,
    // a thread that ends or a client wakes it.
    [[nodiscard]] steady::time_point next_wake(bool accepting) const {
        if (shared_.stopping.load()) return drain_end_;
        return room() && !accepting ? pause_end_ : ipc::never;
    }

    // Accept: takes the queued clients, each into a thread of its own, until the queue is empty
    // or --max-conns are open (then the next ones wait in the kernel's listen queue).
    void accept_clients() {
        while (room()) {
            ipc::sock_addr from;
            unique_fd fd(::accept4(listener_.get(), from.get(), &from.len, SOCK_CLOEXEC));
            if (!fd) {
                const echo::after_accept next = acc_.failed(errno);
                if (next == echo::after_accept::retry) continue;
                if (next == echo::after_accept::pause) {
                    pause_end_ = steady::now() + echo::acceptor::pause_for;
                }
                return;
            }
            ipc::explain("accept4({}) = {} from {}", listener_.get(), fd.get(),
                         ipc::addr_string(from));
            acc_.accepted();
            start_thread(std::move(fd), from);
            if (!room()) echo::say_at_limit(live_.size(), opt_.max_conns);
        }
    }

    void start_thread(unique_fd fd, const ipc::sock_addr& from) {
        auto c = std::make_unique<thread_conn>(next_id_++, std::move(fd), from, shared_);
        echo::log_open(*c);
        if (const int err = ::pthread_create(&c->thread, nullptr, connection_thread, c.get());
            err != 0) {
            echo::log_close(*c, ipc::error_text(err, "pthread_create"));
            return;  // its socket is closed as c goes
        }
        ipc::explain("conn {}: pthread_create() = a thread of its own", c->id);
        live_.emplace(c->id, std::move(c));
    }

    // pthread_join(3) each thread that said it ended, then close its socket and log it.
    void join_ended() {
        std::uint64_t count = 0;
        if (ipc::read_some(shared_.done_fd.get(), &count, sizeof count) == -1 && errno != EAGAIN) {
            ipc::die("read(eventfd)");
        }
        std::vector<std::uint64_t> done;
        {
            const std::lock_guard lock(shared_.mu);
            done.swap(shared_.done);
        }
        for (const std::uint64_t id : done) {
            const auto it = live_.find(id);
            thread_conn& c = *it->second;
            if (const int err = ::pthread_join(c.thread, nullptr); err != 0) {
                ipc::die_en(err, "pthread_join");
            }
            ipc::explain("conn {}: pthread_join(); close({})", c.id, c.fd.get());
            c.fd.reset();  // only now: no thread uses the number any more
            echo::log_close(c, c.forced ? "drain deadline" : c.reason);
            live_.erase(it);
        }
    }

    // SIGINT/SIGTERM: close the listener (new clients are refused), wake every thread through
    // stop_fd, and give the connections --drain to finish their line. A second signal: now.
    void on_signal() {
        const int sig = echo::read_signal(sigfd_);
        if (sig == 0) return;
        if (shared_.stopping.load()) {
            echo::say_closing_now(sig);
            drain_end_ = steady::now();
            return;
        }
        echo::say_draining(sig, live_.size(), opt_.drain);
        listener_.reset();  // close(2): from now on a client's connect is refused
        drain_end_ = ipc::deadline_after(opt_.drain);
        shared_.stopping.store(true);
        const std::uint64_t one = 1;
        if (!ipc::write_all(shared_.stop_fd.get(), &one, sizeof one)) ipc::die("write(eventfd)");
    }

    // The drain deadline: shutdown(2) wakes each thread, in poll() or in send(); its socket is
    // closed only after the join.
    void shut_down_all() {
        echo::say_drain_deadline(live_.size());
        for (auto& [id, c] : live_) {
            c->forced = true;
            if (::shutdown(c->fd.get(), SHUT_RDWR) == -1 && errno != ENOTCONN) {  // ENOTCONN: gone
                ipc::warn(fmt::format("shutdown(conn {})", id));
            }
            ipc::explain("conn {}: shutdown(SHUT_RDWR)", id);
        }
        drain_end_ = ipc::never;
    }

    const options& opt_;
    unique_fd listener_;  // closed at the first stop signal
    int sigfd_;
    shared_state shared_{opt_};
    echo::acceptor acc_;
    std::map<std::uint64_t, std::unique_ptr<thread_conn>> live_;
    std::uint64_t next_id_ = 1;
    steady::time_point drain_end_ = ipc::never;
    steady::time_point pause_end_ = steady::now();  // accept errors other than EMFILE: wait a bit
};

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    const unique_fd sigfd = echo::stop_signals();  // first: every thread inherits the mask
    unique_fd listener = listen_on(opt);
    echo::say_listening(opt, listener.get());
    thread_server server(opt, std::move(listener), sigfd.get());
    return server.run();
} catch (...) {
    return ipc::internal_error();
}
