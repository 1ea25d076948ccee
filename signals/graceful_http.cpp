// The HTTP/1.1 server under graceful: see graceful_http.hpp. The parser of
// requests is in graceful_http_parse.cpp, which the unit test shares.
#include "graceful_http.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/io.hpp"

namespace http {
namespace {

using namespace std::chrono_literals;

constexpr auto idle_limit = 5s;       // a request must arrive whole, an answer be taken, in this
constexpr auto drain_idle = 1s;       // while draining, how long an idle connection is kept
constexpr auto sweep_every = 250ms;   // how often the limits above are checked
constexpr auto accept_pause = 100ms;  // after EMFILE and the like: let connections end first
constexpr std::size_t max_output =
    std::size_t{64} * 1024;  // unsent: read no more requests until it drains
constexpr int max_events = 64;

std::string_view reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Content Too Large";
        case 431: return "Request Header Fields Too Large";
        case 501: return "Not Implemented";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

// "Date: Mon, 01 Dec 2025 10:00:00 GMT" as RFC 9110 asks, formatted once a second per thread.
std::string_view date_header() {
    thread_local std::time_t cached = 0;
    thread_local std::array<char, 64> text{};
    thread_local std::size_t size = 0;
    const std::time_t now = std::time(nullptr);
    if (now != cached) {
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        size = std::strftime(text.data(), text.size(), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        cached = now;
    }
    return {text.data(), size};
}

// What a request gets. It is written out when it is due: a held one (GET /sleep) only then
// learns whether the server is draining, and so whether it says "Connection: close".
struct answer {
    int status = 200;
    std::string body;
    bool head = false;  // HEAD: the headers alone
    bool keep_alive = true;
    bool http10 = false;
};

void append_answer(std::string& out, const answer& a) {
    const std::string_view connection = !a.keep_alive ? "Connection: close\r\n"
                                        : a.http10    ? "Connection: keep-alive\r\n"
                                                      : "";
    fmt::format_to(std::back_inserter(out),
                   "HTTP/1.1 {} {}\r\n{}Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: {}\r\n{}{}\r\n",
                   a.status, reason(a.status), date_header(), a.body.size(),
                   a.status == 405 ? "Allow: GET, HEAD\r\n" : "", connection);
    if (!a.head) out += a.body;
}

struct connection {
    std::string in, out;         // received and not yet parsed; answered and not yet sent
    std::optional<answer> held;  // an answer held back until held_until (GET /sleep)
    ipc::steady::time_point held_until = ipc::never;
    ipc::steady::time_point since;   // when the current wait began: for a request, or to send
    std::uint32_t events = EPOLLIN;  // what epoll watches for now
    bool closing = false;            // close once `out` is sent
    bool peer_done = false;          // recv(2) returned 0: the client sends no more
    [[nodiscard]] bool idle() const { return in.empty() && out.empty() && !held; }
};

}  // namespace

// One thread: an epoll instance with the listening socket, an eventfd that the other threads
// use to wake it, and the connections this thread accepted, which only it touches.
class server::loop {
  public:
    explicit loop(server& s) : s_(s), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (!epoll_) ipc::die("epoll_create1");
        if (!wake_) ipc::die("eventfd");
        watch(wake_.get(), EPOLLIN);
        watch(s_.listener_, EPOLLIN);
    }
    void wake() {
        const std::uint64_t one = 1;  // a counter: never blocks, never fails short
        // Retried on EINTR (write_all) as every write is: a lost wake-up would leave this loop
        // serving on after a stop, and the server would never drain.
        if (!ipc::write_all(wake_.get(), &one, sizeof one)) ipc::warn("write(eventfd)");
    }

    void run() {
        std::array<epoll_event, max_events> events{};
        while (!(draining_ && conns_.empty())) {
            const int n = ::epoll_wait(epoll_.get(), events.data(), max_events, timeout());
            if (n == -1 && errno != EINTR) ipc::die("epoll_wait");
            for (int i = 0; i < n; ++i) dispatch(events[static_cast<std::size_t>(i)]);
            if (ipc::steady::now() >= next_sweep_) sweep();
        }
    }

  private:
    void watch(int fd, std::uint32_t events, int op = EPOLL_CTL_ADD) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_.get(), op, fd, &ev) == -1) ipc::die("epoll_ctl");
    }

    int timeout() const {
        if (conns_.empty() && !paused_) return -1;  // nothing to time out: sleep until an event
        return ipc::ms_until(next_sweep_);
    }

    void dispatch(const epoll_event& ev) {
        if (ev.data.fd == wake_.get()) return on_wake();
        if (ev.data.fd == s_.listener_) return accept_one();
        const auto it = conns_.find(ev.data.fd);
        if (it == conns_.end()) return;
        if ((ev.events & (EPOLLHUP | EPOLLERR)) != 0) return close_conn(it->first);
        if ((ev.events & EPOLLIN) != 0 && !receive(it->first, it->second)) return;
        serve(it->first, it->second);
    }

    // Another thread changed the server's state: stop accepting, or close everything.
    void on_wake() {
        std::uint64_t count = 0;
        if (ipc::read_some(wake_.get(), &count, sizeof count) == -1 && errno != EAGAIN)
            ipc::die("read(eventfd)");
        if (!s_.accepting_ && !draining_) {
            draining_ = true;
            if (!paused_) watch(s_.listener_, 0, EPOLL_CTL_DEL);  // the socket stays open
            const auto now = ipc::steady::now();
            for (auto& [fd, c] : conns_) {
                if (c.idle()) c.since = now;  // a request already on its way gets drain_idle
            }
            next_sweep_ = std::min(next_sweep_, now + drain_idle);
        }
        if (s_.closing_) {
            while (!conns_.empty()) close_conn(conns_.begin()->first);
        }
    }

    // One connection per wake-up, so that the loops share a burst of new connections.
    void accept_one() {
        const int fd = ::accept4(s_.listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) return accept_failed(errno);
        const int on = 1;  // one send(2) per answer: Nagle would only delay it (fails on unix)
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        watch(fd, EPOLLIN);
        conns_[fd].since = ipc::steady::now();
        next_sweep_ = std::min(next_sweep_, conns_[fd].since + sweep_every);
    }

    void accept_failed(int err) {
        switch (err) {
            case EAGAIN:  // another loop, or another process, took it first
            case EINTR:
            case ECONNABORTED:  // the client gave up while it waited in the queue
            case EPROTO:
            case ENETDOWN:
            case EHOSTUNREACH:
            case ENETUNREACH: return;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:  // out of descriptors or memory: stop accepting for a moment
                ipc::warn_en(err, "accept4: pausing for 100 ms");
                watch(s_.listener_, 0, EPOLL_CTL_DEL);
                paused_ = true;
                next_sweep_ = std::min(next_sweep_, ipc::steady::now() + accept_pause);
                return;
            default:  // EINVAL (no longer listening), EBADF...: this server cannot accept
                ipc::warn_en(err, "accept4: no more connections here; finishing, then exit 1");
                int expected = 0;
                s_.accept_error_.compare_exchange_strong(expected, err);
                s_.stop_accepting();
        }
    }

    // One recv(2): false if the connection was closed.
    bool receive(int fd, connection& c) {
        std::array<char, 16384> buf;
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n > 0) c.in.append(buf.data(), static_cast<std::size_t>(n));
        if (n == 0) c.peer_done = true;
        if (n == -1 && errno != EAGAIN && errno != EINTR) {
            close_conn(fd);  // ECONNRESET and the like: nobody to answer
            return false;
        }
        return true;
    }

    // Answers the whole requests received, in order, sends, and sets what to wait for next.
    void serve(int fd, connection& c) {
        while (!c.held && !c.closing && c.out.size() < max_output) {
            const parsed p = parse_request(c.in);
            if (p.result == parsed::state::incomplete) break;
            if (p.result == parsed::state::bad) {
                write_answer(c, {p.status, fmt::format("{}\n", reason(p.status)), false, false});
                break;
            }
            respond(c, p);
            c.in.erase(0, p.length);
        }
        if (c.peer_done && !c.held && parse_request(c.in).result != parsed::state::complete)
            c.closing = true;  // nothing more will come; what was answered is still sent
        flush(fd, c);
    }

    void respond(connection& c, parsed p) {
        p.req.in_flight = s_.in_flight_.load();
        reply r = s_.pages_(p.req);
        answer a{r.status, std::move(r.body), p.req.method == "HEAD", p.keep_alive, p.http10};
        if (r.delay.count() <= 0) return write_answer(c, std::move(a));
        c.held = std::move(a);
        c.held_until = ipc::steady::now() + r.delay;
        s_.in_flight_.fetch_add(1);
        next_sweep_ = std::min(next_sweep_, c.held_until);
    }

    void write_answer(connection& c, answer a) {
        a.keep_alive = a.keep_alive && s_.accepting_;  // draining: the last answer says close
        c.closing = !a.keep_alive;
        append_answer(c.out, a);
    }

    void flush(int fd, connection& c) {
        if (!c.out.empty()) {
            const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
            if (n == -1 && errno != EAGAIN && errno != EINTR) return close_conn(fd);  // EPIPE
            if (n > 0) {
                c.out.erase(0, static_cast<std::size_t>(n));
                c.since = ipc::steady::now();  // progress: the client is reading
            }
        }
        if (c.out.empty() && c.closing) return close_conn(fd);
        std::uint32_t want = c.out.empty() ? 0U : std::uint32_t{EPOLLOUT};
        if (!c.held && !c.peer_done && c.out.size() < max_output) want |= std::uint32_t{EPOLLIN};
        if (want != c.events) watch(fd, want, EPOLL_CTL_MOD);
        c.events = want;
    }

    void close_conn(int fd) {
        const auto it = conns_.find(fd);
        if (it->second.held) s_.in_flight_.fetch_sub(1);
        conns_.erase(it);
        ::close(fd);  // also takes it out of the epoll set: nobody else holds this descriptor
    }

    // Every sweep_every, and when a held answer is due: release held answers, close the idle.
    void sweep() {
        const auto now = ipc::steady::now();
        next_sweep_ = now + sweep_every;
        if (paused_ && !draining_) watch(s_.listener_, EPOLLIN);
        paused_ = false;
        std::vector<int> due, expired;  // acted on after the walk: both may erase from conns_
        for (auto& [fd, c] : conns_) {
            const auto limit = c.idle() && draining_ ? drain_idle : idle_limit;
            if (c.held && now >= c.held_until)
                due.push_back(fd);
            else if (!c.held && now - c.since >= limit)
                expired.push_back(fd);
            else
                next_sweep_ = std::min(next_sweep_, c.held_until);
        }
        for (int fd : expired) close_conn(fd);
        for (int fd : due) release(fd, conns_.at(fd));
    }

    void release(int fd, connection& c) {
        write_answer(c, std::move(*c.held));
        c.held.reset();
        c.held_until = ipc::never;
        c.since = ipc::steady::now();
        s_.in_flight_.fetch_sub(1);
        serve(fd, c);  // answers what was pipelined behind it, and may close it
    }

    server& s_;
    ipc::unique_fd epoll_;
    ipc::unique_fd wake_{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    std::unordered_map<int, connection> conns_;
    ipc::steady::time_point next_sweep_ = ipc::never;
    bool draining_ = false;  // the listener is out of our epoll set for good
    bool paused_ = false;    // the listener is out of our epoll set until the next sweep
};

server::server(int listener, int loops, handler pages)
    : listener_(listener), pages_(std::move(pages)) {
    // Every loop is woken for a new connection and one takes it: the others' accept4 must not
    // block. O_NONBLOCK belongs to the open file, so it holds for every process that shares it.
    const int flags = ::fcntl(listener, F_GETFL);
    if (flags == -1 || ::fcntl(listener, F_SETFL, flags | O_NONBLOCK) == -1)
        ipc::die("fcntl(listener, F_SETFL, O_NONBLOCK)");
    auto done = ipc::make_pipe();
    done_read_ = std::move(done.read);
    done_write_ = std::move(done.write);
    if (loops <= 0) loops = static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
    for (int i = 0; i < loops; ++i) loops_.push_back(std::make_unique<loop>(*this));
    running_ = loops;
    for (auto& l : loops_) {
        threads_.emplace_back([this, &l] {
            l->run();
            loop_finished();
        });
    }
}

server::~server() { join(); }

void server::join() {
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
}

void server::stop_accepting() {
    accepting_ = false;
    for (auto& l : loops_) l->wake();
}

void server::close_connections() {
    closing_ = true;
    for (auto& l : loops_) l->wake();
}

void server::loop_finished() {
    if (running_.fetch_sub(1) == 1) done_write_.reset();  // end of file on done_fd()
}

}  // namespace http
