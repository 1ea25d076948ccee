// echoloop: the same as echoserver, except that one thread serves every client from an epoll loop.
// Usage: echoloop [--network tcp|tcp4|tcp6|unix|unixpacket] [--listen ADDR] [--timeout 10s]
//                 [--max-line 64K] [--max-conns N] [--drain 5s] [--backlog N] [--loops N]
//                 [--share reuseport|exclusive|shared] [-v] [-x]
// Demonstrates what Go's runtime does under the notes' goroutines ("Socket", multiprocess-ipc.md):
// non-blocking sockets, EAGAIN, partial reads and writes, backpressure, per-line deadlines in a
// timer list; --loops N: a loop per core, sharing the listener (loops.cpp, beside this file).
// Try: echoloop --listen 127.0.0.1:0 -x  then  nc 127.0.0.1 PORT   See also: echoserver, ipcbench
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <span>
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
#include "ipc/net.hpp"
#include "ipc/output.hpp"
#include "loops.hpp"
#include "server.hpp"

namespace {

using ipc::steady;
using ipc::unique_fd;

// echoserver's options (server.hpp), and --loops, --share, -v (loops.hpp).
struct options : echo::loop_options {};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Echo server with an epoll loop: the same service as echoserver (each line a client "
        "sends comes back), but one thread serves every client over non-blocking sockets, as "
        "Go's runtime does under its goroutines; --loops N runs N such loops, one per core. -x "
        "shows EAGAIN, partial writes and the backpressure on a client that does not read. "
        "SIGINT/SIGTERM: stop accepting, let connections finish their line, exit 0.",
        "echoloop"};
    ipc::setup(app, "echoloop --listen 127.0.0.1:0 -x    (then: nc 127.0.0.1 PORT)");
    options opt;
    echo::add_loop_options(app, opt);
    ipc::parse(app, argc, argv);
    echo::check_loop_options(app, opt);
    return opt;
}

// Level-triggered epoll: a socket stays reported while it has something to read (or room to
// write), so reading a few times per event and coming back later loses nothing, and no client
// can hog the loop. Output a client does not read is queued; past max_backlog the connection is
// not read any more until its queue drains, so memory stays bounded whatever a client does.
constexpr std::size_t max_backlog = 256 * 1024UL;
constexpr int reads_per_event = 16;

struct loop_conn : echo::connection {
    using connection::connection;
    std::deque<std::string> out;  // echoes not yet written; a message per entry for unixpacket
    std::size_t out_offset = 0;   // bytes of out.front() already written
    std::size_t backlog = 0;      // bytes in out not yet written
    std::uint32_t events = 0;     // what epoll watches now
    bool paused = false;          // not reading: backlog over max_backlog, until it drains
    bool broken = false;          // the socket failed: close now, written or not
    std::string closing;          // set: read no more; close once out is written. Says why.
    void fail(std::string why) {  // marks it broken, saying why
        closing = std::move(why);
        broken = true;
    }
    steady::time_point deadline = ipc::never;
    std::list<loop_conn*>::iterator timer;  // its place in event_loop::timers_
};

// epoll_create1(2), checked at once: errno is the calling thread's, and the loop's thread is not.
unique_fd new_epoll() {
    unique_fd ep{::epoll_create1(EPOLL_CLOEXEC)};
    if (!ep) ipc::die("epoll_create1");
    ipc::explain("epoll_create1() = {}", ep.get());
    return ep;
}

// One event loop: a thread, an epoll instance, its listener (loops.cpp) and its connections.
class event_loop {
  public:
    event_loop(const options& opt, echo::loop_group& group, int loop, unique_fd listener)
        : opt_(opt),
          group_(group),
          loop_(loop),
          listener_(opt, group, std::move(listener), ep_.get()),
          buf_(opt.net->type == SOCK_STREAM ? 64 * 1024UL : opt.max_line + 1) {}

    // epoll_wait(2) until a stop has drained every connection: each event says which socket is
    // ready, and its handler does what it can without blocking, then comes back here.
    void run() {
        if (const int err = ctl(EPOLL_CTL_ADD, group_.wake_fd(loop_), wake_id, EPOLLIN)) {
            ipc::die_en(err, "epoll_ctl(eventfd)");
        }
        std::array<epoll_event, 64> events{};
        while (!stopping_ || !conns_.empty()) {
            listener_.watch();
            const int n = ::epoll_wait(ep_.get(), events.data(), static_cast<int>(events.size()),
                                       ipc::ms_until(next_wake()));
            if (n == -1 && errno == EINTR) continue;
            if (n == -1) ipc::die("epoll_wait");
            ipc::explain("epoll_wait() = {}", n);
            for (const epoll_event& ev : std::span(events.data(), static_cast<std::size_t>(n))) {
                if (ev.data.u64 == wake_id) {
                    on_wake();
                } else if (ev.data.u64 == echo::loop_listener::id) {
                    listener_.accept_all([this](unique_fd fd, const ipc::sock_addr& from,
                                                int open) { add_conn(std::move(fd), from, open); });
                } else if (const auto it = conns_.find(ev.data.u64); it != conns_.end()) {
                    on_conn(*it->second, ev.events);  // one closed earlier in this batch is gone
                }
            }
            expire();
        }
        group_.report(loop_, accepted_, listener_.empty_wakeups());
    }

  private:
    // epoll_event.data holds a connection's id, never reused, rather than a pointer or a
    // descriptor: an event for a connection closed earlier in the same batch finds nothing.
    static constexpr std::uint64_t wake_id = 0;

    // epoll_ctl(2): returns 0, or the error number for the caller to judge.
    int ctl(int op, int fd, std::uint64_t id, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = id;
        if (::epoll_ctl(ep_.get(), op, fd, &ev) == -1) return errno;
        ipc::explain("epoll_ctl({}, {}, {})", op == EPOLL_CTL_ADD ? "ADD" : "MOD", fd,
                     echo::events_name(events));
        return 0;
    }

    // The soonest of: the first connection's deadline, the drain's end, the end of an accept
    // pause, the next try to take back a lost spare. epoll_wait(2) sleeps until then at most.
    [[nodiscard]] steady::time_point next_wake() const {
        steady::time_point wake = timers_.empty() ? ipc::never : timers_.front()->deadline;
        if (stopping_) wake = std::min(wake, drain_end_);
        if (listener_.paused()) wake = std::min(wake, listener_.pause_end());
        if (listener_.lacks_spare())
            wake = std::min(wake, steady::now() + echo::acceptor::pause_for);
        return wake;
    }

    // The main thread read SIGINT or SIGTERM (loops.cpp) and woke every loop; or a place became
    // free under --max-conns (listener_.watch() sees to that).
    void on_wake() {
        group_.read_wake(loop_);
        const auto stage = group_.now();
        if (stage != echo::loop_group::stage::running && !stopping_) start_drain();
        if (stage == echo::loop_group::stage::closing) drain_end_ = steady::now();
    }

    // Stop accepting (the last loop to close its listener says so), close the idle
    // connections, and give the others --drain to finish their line.
    void start_drain() {
        stopping_ = true;
        drain_end_ = ipc::deadline_after(opt_.drain);
        if (listener_.close())
            echo::say_draining(group_.stop_signal(), group_.open_at_stop(), opt_.drain);
        std::vector<loop_conn*> all;  // settle() may close, and so erase, any of them
        for (auto& [id, c] : conns_) {
            if (c->idle() && c->closing.empty()) c->closing = "shutdown";
            all.push_back(c.get());
        }
        for (loop_conn* c : all) settle(*c);
    }

    void add_conn(unique_fd fd, const ipc::sock_addr& from, int open) {
        auto owned = std::make_unique<loop_conn>(group_.next_id(), std::move(fd), from, opt_);
        loop_conn& c = *owned;
        ++accepted_;
        echo::log_open(c, opt_.verbose ? fmt::format(", loop {}", loop_ + 1) : "");
        if (open == opt_.max_conns)
            echo::say_at_limit(static_cast<std::size_t>(open), opt_.max_conns);
        if (const int err = ctl(EPOLL_CTL_ADD, c.fd.get(), c.id, EPOLLIN)) {  // ENOSPC, ENOMEM
            echo::log_close(c, ipc::error_text(err, "epoll_ctl"));
            group_.release();
            return;
        }
        c.events = EPOLLIN;
        c.deadline = ipc::deadline_after(opt_.timeout);
        c.timer = timers_.insert(timers_.end(), &c);
        conns_.emplace(c.id, std::move(owned));
    }

    void on_conn(loop_conn& c, std::uint32_t ev) {
        if ((ev & EPOLLERR) != 0) {
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == -1) err = errno;
            c.fail(ipc::error_text(err, "socket error"));
        } else {
            if ((ev & (EPOLLIN | EPOLLHUP)) != 0 && (c.events & EPOLLIN) != 0) read_from(c);
            if ((ev & EPOLLOUT) != 0 && !c.broken) write_to(c);
            if ((ev & EPOLLHUP) != 0 && (c.events & EPOLLIN) == 0 && !c.broken) {
                c.fail("hang up: the client is gone");  // both directions are closed
            }
        }
        settle(c);
    }

    // Reads what the client sent and echoes it. A read shorter than the buffer means the socket
    // is drained for now: level-triggered epoll reports it again when more comes, so there is
    // no need to read on until recv() says EAGAIN (edge-triggered epoll would need that).
    void read_from(loop_conn& c) {
        for (int i = 0; i < reads_per_event && c.closing.empty() && c.backlog < max_backlog; ++i) {
            const ssize_t n = ::recv(c.fd.get(), buf_.data(), buf_.size(), 0);
            if (n == -1 && errno == EINTR) continue;
            if (n == -1 && errno == EAGAIN) {
                ipc::explain("conn {}: recv() = -1 EAGAIN: nothing to read; back to epoll_wait",
                             c.id);
                return;
            }
            if (n == -1) return c.fail(ipc::error_text(errno, "recv"));
            ipc::explain("conn {}: recv() = {}", c.id, n);
            if (n == 0) {
                emit(c, c.frame.finish());
                c.closing = "eof";
                return;
            }
            echo_bytes(c, {buf_.data(), static_cast<std::size_t>(n)});
            if (static_cast<std::size_t>(n) < buf_.size()) return;  // drained for now
        }
    }

    // What one read brought: the lines it completes go back; a line too long ends the connection.
    void echo_bytes(loop_conn& c, std::string_view got) {
        c.bytes_in += got.size();
        chunk_.clear();
        const std::uint64_t lines_before = c.frame.units();
        const bool fits = c.frame.feed(got, chunk_);
        emit(c, chunk_);
        if (!fits) {
            emit(c, c.too_long_text(opt_));
            c.closing = c.too_long_reason(opt_);
            return;
        }
        if (c.frame.units() != lines_before) renew(c);
        if (stopping_ && c.idle()) c.closing = "shutdown";
    }

    // Sends `data` at once if nothing is queued before it, until the socket says EAGAIN; what
    // it does not take waits in c.out for EPOLLOUT. The common case, an echo that fits in the
    // socket buffer, is one send(2) that copies and allocates nothing.
    void emit(loop_conn& c, std::string_view data) {
        for (std::size_t sent = 1; c.out.empty() && !data.empty() && sent > 0;) {
            sent = send_some(c, data);
            data.remove_prefix(sent);
        }
        if (data.empty() || c.broken) return;
        c.backlog += data.size();
        c.out.emplace_back(data);
    }

    // On EPOLLOUT: writes what is queued until the socket says EAGAIN (or all is written).
    void write_to(loop_conn& c) {
        while (!c.out.empty()) {
            const std::string& front = c.out.front();
            const std::size_t sent = send_some(c, std::string_view(front).substr(c.out_offset));
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
    std::size_t send_some(loop_conn& c, std::string_view data) {
        ssize_t n = 0;
        do {
            n = ::send(c.fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
        } while (n == -1 && errno == EINTR);
        if (n == -1 && errno == EAGAIN) {
            ipc::explain(
                "conn {}: send({}) = -1 EAGAIN: the socket buffer is full; those bytes "
                "wait in the queue for EPOLLOUT",
                c.id, data.size());
            return 0;
        }
        if (n == -1) {
            c.fail(ipc::error_text(errno, "send"));
            return 0;
        }
        const auto sent = static_cast<std::size_t>(n);
        ipc::explain("conn {}: send({}) = {}{}", c.id, data.size(), n,
                     sent < data.size()
                         ? fmt::format(": a partial write; {} bytes left", data.size() - sent)
                         : "");
        c.bytes_out += sent;
        renew(c);  // the client is reading: progress renews the deadline too
        return sent;
    }

    // After any change to a connection: close it if it is done, else watch what it now needs.
    void settle(loop_conn& c) {
        if (c.broken || (!c.closing.empty() && c.out.empty())) return close_now(c, c.closing);
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
        if (const int err = ctl(EPOLL_CTL_MOD, c.fd.get(), c.id, want))
            return close_now(c, ipc::error_text(err, "epoll_ctl"));
        c.events = want;
    }

    // Every connection's deadline is "now + timeout" when renewed, so moving a renewed one to the
    // back keeps the list sorted: the next deadline to expire is always at the front, in O(1).
    void renew(loop_conn& c) {
        if (opt_.timeout.count() == 0) return;
        c.deadline = steady::now() + opt_.timeout;
        timers_.splice(timers_.end(), timers_, c.timer);
    }

    // Closes the connections whose deadline has passed, and at the drain's end all of them.
    void expire() {
        const steady::time_point now = steady::now();
        if (stopping_ && now >= drain_end_ && !conns_.empty()) {
            echo::say_drain_deadline(conns_.size());
            while (!conns_.empty()) close_now(*conns_.begin()->second, "drain deadline");
        }
        while (!timers_.empty() && timers_.front()->deadline <= now) {
            loop_conn& c = *timers_.front();
            if (!c.out.empty()) {
                close_now(c, echo::connection::write_timeout_reason(opt_));
                continue;
            }
            echo::send_note(c.fd.get(), echo::idle_text);
            close_now(c, echo::connection::idle_reason(opt_));
        }
    }

    void close_now(loop_conn& c, std::string_view reason) {
        ipc::explain("conn {}: close({})", c.id, c.fd.get());
        c.fd.reset();  // close(2) also takes it out of the epoll set
        echo::log_close(c, reason);
        timers_.erase(c.timer);
        conns_.erase(c.id);
        group_.release();  // its place under --max-conns
    }

    const options& opt_;
    echo::loop_group& group_;
    int loop_;  // 0 .. --loops - 1
    unique_fd ep_{new_epoll()};
    echo::loop_listener listener_;
    std::vector<char> buf_;  // one read buffer for the loop's connections: one thread reads
    std::string chunk_;      // what goes back for one read, reused
    std::map<std::uint64_t, std::unique_ptr<loop_conn>> conns_;
    std::list<loop_conn*> timers_;  // connections by deadline, soonest first
    std::uint64_t accepted_ = 0;
    bool stopping_ = false;
    steady::time_point drain_end_ = ipc::never;
};

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    const unique_fd sigfd = echo::stop_signals();  // first: every thread inherits the mask
    std::vector<unique_fd> listeners = echo::open_listeners(opt);
    echo::say_listening(opt, listeners.front().get());
    echo::loop_group group(opt);
    std::vector<std::unique_ptr<event_loop>> loops;
    for (int k = 0; auto& listener : listeners)
        loops.push_back(std::make_unique<event_loop>(opt, group, k++, std::move(listener)));
    group.run(sigfd.get(), [&](int k) { loops[static_cast<std::size_t>(k)]->run(); });
    return 0;
} catch (...) {
    return ipc::internal_error();
}
