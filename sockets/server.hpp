// sockets/server.hpp: what echoserver, echoloop and echodgram share that is not their lesson:
// the command line they have in common, the stop signals, the listening socket's options, the
// unix socket file, the connection log, and the acceptor that survives running out of
// descriptors (EMFILE). Each tool makes its own socket(2), bind(2), listen(2) and accept4(2).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "framer.hpp"
#include "ipc/clock.hpp"
#include "ipc/fd.hpp"
#include "ipc/net.hpp"

namespace CLI {
class App;  // <CLI/CLI.hpp> costs seconds per file: only the files that parse include it
}

namespace echo {

using namespace std::chrono_literals;

// The command line the servers share. `net` is set by check_server_options.
struct server_options {
    std::string network = "tcp";
    std::string listen = "127.0.0.1:8000";   // the notes' address
    std::chrono::nanoseconds timeout = 10s;  // to read each line (SetDeadline); 0: none
    std::uint64_t max_line = 64 * 1024UL;
    int max_conns = 0;  // 0: no limit but the descriptor limit
    std::chrono::nanoseconds drain = 5s;
    int backlog = SOMAXCONN;
    const ipc::network* net = nullptr;
};

// Adds --network, --listen and --max-line; for a stream server (`type` SOCK_STREAM) also
// --timeout, --max-conns, --drain and --backlog. --network takes every name of the notes' table,
// so that the wrong kind gets a usage error naming the right tool (check_server_options).
void add_server_options(CLI::App& app, server_options& opt, int type);

// After parsing: sets opt.net; a network of the other kind (a datagram network for a stream
// server, or the reverse) is a usage error naming the tool that serves it, as Go's net.Listen
// refuses "udp" and net.ListenPacket refuses "tcp"; so are --max-line 0 and a unix network
// without --listen.
void check_server_options(const CLI::App& app, server_options& opt, int type);

// SIGINT and SIGTERM blocked (in this thread and every thread it starts later) and readable from
// the returned signalfd, non-blocking: no code runs in a signal handler.
[[nodiscard]] ipc::unique_fd stop_signals();

// Reads one signal from the signalfd: its number, or 0 if none was pending.
[[nodiscard]] int read_signal(int sigfd);

// The options a listening socket needs before bind(2): SO_REUSEADDR for TCP (a restarted server
// binds while its old connections sit in TIME_WAIT, as Go does), IPV6_V6ONLY for [::] (tcp takes
// IPv4 clients too, tcp6 only IPv6 ones), and SO_REUSEPORT when asked (echoloop --loops).
void listener_options(int fd, const ipc::network& net, const ipc::sock_addr& addr,
                      bool reuseport = false);

// The unix socket file bind(2) is about to make at `path`: a stale one (its server is gone) is
// removed first; one that is not a socket, or that a server still accepts on, is refused
// (exit 1). After bind, adopt_socket_file(path) records it; it is removed when the process ends,
// by main's return or by std::exit (which ipc::die and a failed write to stdout call), and only
// if it is still ours. Both do nothing for the abstract namespace (@name) or an IP address.
void prepare_socket_file(const std::string& path, const ipc::sock_addr& addr, int type);
void adopt_socket_file(const std::string& path, const ipc::sock_addr& addr);

// What the servers say, the same way in each.
void say_listening(const server_options& opt, int listener);
void say_at_limit(std::size_t open, int max_conns);
void say_draining(int sig, std::size_t open, std::chrono::nanoseconds drain);
void say_closing_now(int sig);
void say_drain_deadline(std::size_t open);
void say_stopped(std::uint64_t served);

// ---- Connections ----

inline constexpr std::string_view idle_text = "error: idle timeout\n";

// A last word to a client before its connection is closed ("error: idle timeout"): one send(2)
// that never blocks (MSG_DONTWAIT), EINTR retried; if the socket buffer is full, it is lost.
void send_note(int fd, std::string_view text);

// One accepted connection, and what its log lines report.
struct connection {
    std::uint64_t id = 0;
    ipc::unique_fd fd;
    std::string remote;  // RemoteAddr()
    std::string local;   // LocalAddr()
    framer frame;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;

    connection(std::uint64_t id_, ipc::unique_fd fd_, const ipc::sock_addr& from,
               const server_options& opt);
    // Between two lines and nothing more has arrived (recv with MSG_PEEK finds nothing): at a
    // stop, the connection can be closed without losing a line the client sent.
    [[nodiscard]] bool idle() const;
    // "error: line longer than 64 KiB\n": what the client is told before the close.
    [[nodiscard]] std::string too_long_text(const server_options& opt) const;
    // "line longer than --max-line 64 KiB": the close's reason in the log.
    [[nodiscard]] std::string too_long_reason(const server_options& opt) const;
    [[nodiscard]] static std::string idle_reason(const server_options& opt);
    [[nodiscard]] static std::string write_timeout_reason(const server_options& opt);
};

// "conn 1 open: remote 127.0.0.1:5000, local 127.0.0.1:8000" (and `extra`, if any).
void log_open(const connection& c, std::string_view extra = {});
// "conn 1 closed: remote ..., local ...; 12 bytes in, 12 bytes out, 2 lines; eof"
void log_close(const connection& c, std::string_view reason);

// ---- Accepting, also when out of descriptors ----

enum class after_accept { retry, queue_empty, pause };

// accept4(2) that survives EMFILE. When the process has no descriptor left, accept fails but the
// client stays queued, so poll/epoll report the listener readable again at once: a server that
// just retries spins at 100% CPU and serves nobody. The way out (libev's manual): hold one spare
// descriptor; on EMFILE close it, accept the client, tell it and close it, then take the spare
// back. The queue drains, refused clients learn it at once, the server keeps serving the clients
// it has, and accepts again once some leave. The tool calls accept4(2) itself and hands each
// failure to failed().
class acceptor {
  public:
    explicit acceptor(int listener);

    // accept4(2) returned a client: ends an EMFILE burst, saying how many were refused.
    void accepted();
    // accept4(2) failed with `err`: retry (EINTR, ECONNABORTED, EPROTO, or a client refused for
    // lack of descriptors), queue_empty (EAGAIN), or pause (ENOBUFS, ENOMEM, EPERM: wait a
    // little before accepting again, as Go's Serve does).
    [[nodiscard]] after_accept failed(int err);

    // Takes the spare back if it was lost (with several loops, another loop's accept4 may have
    // taken the descriptor it freed): for a loop to call now and then; cheap when it is there.
    void keep_spare();
    [[nodiscard]] bool has_spare() const { return spare_.valid(); }

    static constexpr std::chrono::milliseconds pause_for{250};

  private:
    bool refuse_one();

    int listener_;
    ipc::unique_fd spare_;   // the reserve descriptor; empty only while refusing one client
    bool refusing_ = false;  // in an EMFILE burst
    std::uint64_t refused_ = 0;
};

}  // namespace echo
