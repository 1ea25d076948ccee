// sockets/loops.hpp: echoloop --loops N, the part where the loops meet. N event loops run on a
// thread each, with an epoll instance each, and share: the listening address (SO_REUSEPORT: a
// socket per loop; or one socket in every loop's epoll set, with EPOLLEXCLUSIVE, or without it
// to show the thundering herd), one --max-conns count, and one stop. A loop's connections are
// its own (echoloop.cpp): on the hot path, reading and writing lines, the loops share nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ipc/clock.hpp"
#include "ipc/fd.hpp"
#include "ipc/net.hpp"
#include "server.hpp"

namespace echo {

enum class share_mode { reuseport, exclusive, shared };

// "EPOLLIN|EPOLLOUT": epoll events as -x shows them ("nothing" for none).
[[nodiscard]] std::string events_name(std::uint32_t events);

struct loop_options : server_options {
    int loops = 1;  // --loops 0 is made one per online CPU by check_loop_options
    share_mode share = share_mode::reuseport;
    bool verbose = false;  // -v: each connection's loop, and the spread for one loop too
};

// --network ... --backlog (server.hpp), --loops, --share, -v.
void add_loop_options(CLI::App& app, loop_options& opt);
// After parsing: check_server_options, --loops 0, and --share for the unix networks (a path can
// be bound once: exclusive is their default, reuseport a usage error).
void check_loop_options(const CLI::App& app, loop_options& opt);

// net.Listen for N loops, non-blocking (accept4 says EAGAIN when the queue is empty). With
// --share reuseport and N > 1, N sockets bound to one address, each with SO_REUSEPORT: the kernel
// spreads new connections over their queues by a hash of the client's address and port.
// Otherwise one socket, and a dup(2) of it for each other loop, so that each loop closes its own.
[[nodiscard]] std::vector<ipc::unique_fd> open_listeners(const loop_options& opt);

// What the loops share, and the main thread's part: start them, pass them the stop, join them.
class loop_group {
  public:
    enum class stage { running, draining, closing };

    explicit loop_group(const loop_options& opt);

    // Runs body(k) for each loop k on a thread of its own; meanwhile reads SIGINT/SIGTERM from
    // `sigfd` and passes each on (the first: drain; the next: close now) until every loop has
    // ended; joins them, prints the spread over the loops (N > 1, or -v) and the total.
    void run(int sigfd, const std::function<void(int)>& body);

    [[nodiscard]] stage now() const { return stage_.load(); }
    [[nodiscard]] int stop_signal() const { return signal_.load(); }
    [[nodiscard]] int open_at_stop() const { return open_at_stop_.load(); }
    // An eventfd in loop k's epoll set: readable when the stage changed, or when a place became
    // free under --max-conns. read_wake empties it.
    [[nodiscard]] int wake_fd(int loop) const {
        return wake_[static_cast<std::size_t>(loop)].get();
    }
    void read_wake(int loop) const;

    [[nodiscard]] std::uint64_t next_id() { return next_id_.fetch_add(1); }
    // --max-conns over all loops: a place is reserved before accept4(2) and released when it
    // failed or the connection closes. reserve() returns the count with ours, or 0 at the limit.
    [[nodiscard]] int reserve();
    void release();
    [[nodiscard]] int open() const { return open_.load(); }
    // A loop closed its listener; true for the last one, after which no connect succeeds.
    [[nodiscard]] bool stopped_listening() { return listening_.fetch_sub(1) == 1; }
    // What loop k did, for the spread: written by the loop as it ends, read after the join.
    void report(int loop, std::uint64_t connections, std::uint64_t empty_wakeups);

  private:
    void wake_all() const;

    const loop_options& opt_;
    std::vector<ipc::unique_fd> wake_;  // an eventfd per loop
    struct loop_report {
        std::uint64_t connections = 0;
        std::uint64_t empty_wakeups = 0;
        long wakeups = 0;  // the thread's voluntary context switches: each sleep in epoll_wait
    };
    std::vector<loop_report> reports_;  // each loop writes its own; main reads after the join
    std::atomic<stage> stage_{stage::running};
    std::atomic<int> signal_{0};        // the first stop signal, and the connections open then,
    std::atomic<int> open_at_stop_{0};  // for the message
    std::atomic<std::uint64_t> next_id_{1};
    std::atomic<int> open_{0};  // connections open (and places reserved) in all loops
    std::atomic<int> listening_;
};

// One loop's side of the listening address: its own socket (reuseport) or its own descriptor
// of the one socket, in the loop's epoll set only while a client may be accepted.
class loop_listener {
  public:
    static constexpr std::uint64_t id = UINT64_MAX;  // its epoll_event.data

    loop_listener(const loop_options& opt, loop_group& group, ipc::unique_fd fd, int epfd);

    // In the epoll set or out of it, as accepting allows: not at --max-conns (the next clients
    // wait in the kernel's queue), not during an accept pause, not once closed. ADD and DEL, not
    // MOD: a descriptor added with EPOLLEXCLUSIVE cannot be modified.
    void watch();
    // Accepts every client queued, until EAGAIN or --max-conns; take(fd, from, open) gets each
    // (open: the connections open in all loops with it). A wake-up that finds the queue empty
    // at once is counted: another loop took the client.
    using take_fn = std::function<void(ipc::unique_fd, const ipc::sock_addr&, int)>;
    void accept_all(const take_fn& take);
    // Stops accepting: out of the epoll set, then close(2). With SO_REUSEPORT, clients still in
    // this socket's queue are reset. Returns true for the last loop to stop.
    bool close();

    // In an accept pause (not merely out of the set at --max-conns, which a wake-up ends).
    [[nodiscard]] bool paused() const {
        return fd_.valid() && !watched_ && ipc::steady::now() < pause_end_;
    }
    [[nodiscard]] ipc::steady::time_point pause_end() const { return pause_end_; }
    // Without its spare descriptor: another loop's accept4 took the number this loop freed.
    // watch() takes it back, so the loop must not sleep for ever until it has.
    [[nodiscard]] bool lacks_spare() const { return fd_.valid() && !acc_.has_spare(); }
    [[nodiscard]] std::uint64_t empty_wakeups() const { return empty_wakeups_; }

  private:
    int ctl(int op);

    const loop_options& opt_;
    loop_group& group_;
    ipc::unique_fd fd_;
    int epfd_;
    acceptor acc_;
    bool watched_ = false;                                    // in the epoll set
    ipc::steady::time_point pause_end_ = ipc::steady::now();  // accept errors but EMFILE: wait
    std::uint64_t empty_wakeups_ = 0;
};

}  // namespace echo
