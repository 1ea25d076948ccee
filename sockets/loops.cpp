#include "loops.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <map>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"

namespace echo {

std::string events_name(std::uint32_t events) {
    std::string out;
    for (const auto& [bit, name] : {std::pair{EPOLLIN, "EPOLLIN"}, std::pair{EPOLLOUT, "EPOLLOUT"},
                                    std::pair{EPOLLEXCLUSIVE, "EPOLLEXCLUSIVE"}}) {
        if ((events & static_cast<std::uint32_t>(bit)) == 0) continue;
        out += out.empty() ? name : std::string("|") + name;
    }
    return out.empty() ? "nothing" : out;
}

void add_loop_options(CLI::App& app, loop_options& opt) {
    add_server_options(app, opt, SOCK_STREAM);
    app.add_option("--loops", opt.loops,
                   "Event loops, each a thread with its own epoll instance (0: one per online "
                   "CPU)")
        ->check(CLI::Range(0, 1024))
        ->capture_default_str();
    const std::map<std::string, share_mode> modes{{"reuseport", share_mode::reuseport},
                                                  {"exclusive", share_mode::exclusive},
                                                  {"shared", share_mode::shared}};
    app.add_option("--share", opt.share,
                   "How the loops share the address: reuseport (a socket each with SO_REUSEPORT; "
                   "the kernel spreads the connections; tcp's default), exclusive (one socket in "
                   "every loop's epoll set with EPOLLEXCLUSIVE: one loop woken per client; unix's "
                   "default), shared (the same without EPOLLEXCLUSIVE: the thundering herd)")
        ->transform(CLI::CheckedTransformer(modes))
        ->default_str("reuseport");
    app.add_flag("-v,--verbose", opt.verbose,
                 "Name each connection's loop, and print the spread over the loops at the end");
}

void check_loop_options(const CLI::App& app, loop_options& opt) {
    check_server_options(app, opt, SOCK_STREAM);
    if (opt.loops == 0) opt.loops = static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
    if (opt.net->family != AF_UNIX) return;
    if (app.count("--share") == 0) opt.share = share_mode::exclusive;
    if (opt.share == share_mode::reuseport) {
        ipc::usage_error(
            "--share reuseport: a unix socket path can be bound only once "
            "(SO_REUSEPORT is for TCP and UDP); use --share exclusive");
    }
}

std::vector<ipc::unique_fd> open_listeners(const loop_options& opt) {
    ipc::sock_addr addr =
        ipc::resolve(*opt.net, "--listen", opt.listen, ipc::resolve_for::listen).front();
    const bool reuseport = opt.share == share_mode::reuseport && opt.loops > 1;
    std::vector<ipc::unique_fd> out;
    for (int k = 0; k < opt.loops; ++k) {
        if (k > 0 && !reuseport) {  // the one socket: a descriptor of its own for loop k
            out.emplace_back(::fcntl(out.front().get(), F_DUPFD_CLOEXEC, 0));
            if (!out.back()) ipc::die("fcntl(F_DUPFD_CLOEXEC)");
            ipc::explain("dup({}) = {}: loop {}'s descriptor of the listening socket",
                         out.front().get(), out.back().get(), k + 1);
            continue;
        }
        ipc::unique_fd fd(::socket(addr.family(), opt.net->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) ipc::die(fmt::format("socket({})", opt.network));
        ipc::explain("socket({}) = {}", opt.network, fd.get());
        listener_options(fd.get(), *opt.net, addr, reuseport);
        if (k == 0) prepare_socket_file(opt.listen, addr, opt.net->type);
        if (::bind(fd.get(), addr.get(), addr.len) == -1) {
            ipc::die(fmt::format("bind({})", opt.listen));
        }
        ipc::explain("bind({}, {})", fd.get(), k == 0 ? opt.listen : ipc::addr_string(addr));
        if (k == 0) adopt_socket_file(opt.listen, addr);
        if (::listen(fd.get(), opt.backlog) == -1) ipc::die("listen");
        ipc::explain("listen({}, {})", fd.get(), opt.backlog);
        addr = ipc::local_addr(fd.get());  // for port 0: the next loops bind the port chosen
        out.push_back(std::move(fd));
    }
    return out;
}

// ---- The group ----

loop_group::loop_group(const loop_options& opt)
    : opt_(opt), reports_(static_cast<std::size_t>(opt.loops)), listening_(opt.loops) {
    for (int k = 0; k < opt.loops; ++k) {
        wake_.emplace_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!wake_.back()) ipc::die("eventfd");
    }
}

void loop_group::read_wake(int loop) const {
    std::uint64_t count = 0;
    if (ipc::read_some(wake_fd(loop), &count, sizeof count) == -1 && errno != EAGAIN) {
        ipc::die("read(eventfd)");
    }
}

void loop_group::wake_all() const {
    const std::uint64_t one = 1;
    for (const ipc::unique_fd& fd : wake_) {
        if (!ipc::write_all(fd.get(), &one, sizeof one)) ipc::die("write(eventfd)");
    }
}

int loop_group::reserve() {
    const int before = open_.fetch_add(1);
    if (opt_.max_conns == 0 || before < opt_.max_conns) return before + 1;
    release();  // not ours to take; and if another loop released meanwhile, it wakes the loops
    return 0;
}

void loop_group::release() {
    // From the limit to below it: loops that stopped accepting may go on.
    if (open_.fetch_sub(1) == opt_.max_conns && opt_.max_conns != 0) wake_all();
}

void loop_group::report(int loop, std::uint64_t connections, std::uint64_t empty_wakeups) {
    rusage usage{};  // this thread's: how often it slept (in epoll_wait) and was woken
    if (::getrusage(RUSAGE_THREAD, &usage) == -1) ipc::die("getrusage(RUSAGE_THREAD)");
    reports_[static_cast<std::size_t>(loop)] = {connections, empty_wakeups, usage.ru_nvcsw};
}

namespace {
// A std::thread for loop k; pthread_create's failure (EAGAIN: too many threads) exits 1 with
// the project's one line, not std::terminate.
template <typename Body>
std::thread start_thread(int k, Body body) {
    try {
        return std::thread(std::move(body));
    } catch (const std::system_error& e) {
        ipc::die_en(e.code().value(), fmt::format("pthread_create(loop {})", k + 1));
    }
}
}  // namespace

void loop_group::run(int sigfd, const std::function<void(int)>& body) {
    const ipc::unique_fd done(::eventfd(0, EFD_CLOEXEC));  // each loop adds 1 as it ends
    if (!done) ipc::die("eventfd");
    std::vector<std::thread> threads;
    for (int k = 0; k < opt_.loops; ++k) {
        threads.push_back(start_thread(k, [&, k] {
            body(k);
            const std::uint64_t one = 1;
            if (!ipc::write_all(done.get(), &one, sizeof one)) ipc::die("write(eventfd)");
        }));
    }
    for (std::uint64_t ended = 0; ended < static_cast<std::uint64_t>(opt_.loops);) {
        std::array<pollfd, 2> fds{{{sigfd, POLLIN, 0}, {done.get(), POLLIN, 0}}};
        if (::poll(fds.data(), fds.size(), -1) == -1) {
            if (errno == EINTR) continue;
            ipc::die("poll");
        }
        if (fds[0].revents != 0) {
            if (const int sig = read_signal(sigfd); sig != 0 && now() == stage::running) {
                signal_.store(sig);
                open_at_stop_.store(open_.load());
                stage_.store(stage::draining);
                wake_all();
            } else if (sig != 0) {
                say_closing_now(sig);
                stage_.store(stage::closing);
                wake_all();
            }
        }
        std::uint64_t count = 0;
        if (fds[1].revents != 0 && ipc::read_some(done.get(), &count, sizeof count) == -1) {
            ipc::die("read(eventfd)");
        }
        ended += count;
    }
    for (std::thread& t : threads) t.join();
    for (std::size_t k = 0; k < reports_.size() && (opt_.loops > 1 || opt_.verbose); ++k) {
        const loop_report& r = reports_[k];
        ipc::say("{}: loop {} of {}: {} connections; woken {} times, {} found nothing to accept",
                 ipc::tool_name(), k + 1, opt_.loops, r.connections, r.wakeups, r.empty_wakeups);
    }
    say_stopped(next_id_.load() - 1);
}

// ---- One loop's listener ----

loop_listener::loop_listener(const loop_options& opt, loop_group& group, ipc::unique_fd fd,
                             int epfd)
    : opt_(opt), group_(group), fd_(std::move(fd)), epfd_(epfd), acc_(fd_.get()) {}

int loop_listener::ctl(int op) {
    epoll_event ev{};
    ev.events = EPOLLIN | (opt_.share == share_mode::exclusive ? EPOLLEXCLUSIVE : 0U);
    ev.data.u64 = id;
    if (::epoll_ctl(epfd_, op, fd_.get(), &ev) == -1) return errno;
    ipc::explain("epoll_ctl({}, {}, {})", op == EPOLL_CTL_ADD ? "ADD" : "DEL", fd_.get(),
                 op == EPOLL_CTL_ADD ? events_name(ev.events) : "the listener");
    return 0;
}

void loop_listener::watch() {
    acc_.keep_spare();
    const bool room = opt_.max_conns == 0 || group_.open() < opt_.max_conns;
    const bool want = fd_.valid() && room && ipc::steady::now() >= pause_end_;
    if (want == watched_) return;
    if (const int err = ctl(want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL)) {
        ipc::die_en(err, "epoll_ctl(listener)");
    }
    watched_ = want;
}

void loop_listener::accept_all(const take_fn& take) {
    for (bool first = true; fd_.valid(); first = false) {
        const int open = group_.reserve();
        if (open == 0) return;  // at --max-conns: watch() takes the listener out
        ipc::sock_addr from;
        ipc::unique_fd conn(
            ::accept4(fd_.get(), from.get(), &from.len, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!conn) {
            const int err = errno;
            group_.release();
            if (err == EAGAIN && first) ++empty_wakeups_;  // woken for a client another loop took
            const after_accept next = acc_.failed(err);
            if (next == after_accept::retry) continue;
            if (next == after_accept::pause) pause_end_ = ipc::steady::now() + acceptor::pause_for;
            return;
        }
        ipc::explain("accept4({}) = {} from {}", fd_.get(), conn.get(), ipc::addr_string(from));
        acc_.accepted();
        take(std::move(conn), from, open);
    }
}

bool loop_listener::close() {
    if (watched_ && ctl(EPOLL_CTL_DEL) != 0) ipc::die("epoll_ctl(listener)");
    watched_ = false;
    // With --share exclusive or shared, other loops hold descriptors of the same socket: it is
    // closed, and refuses clients, when the last loop closes its own.
    fd_.reset();
    return group_.stopped_listening();
}

}  // namespace echo
