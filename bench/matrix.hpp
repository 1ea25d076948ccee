// bench/matrix.hpp: what `ipcbench matrix` (matrix.cpp) asks of each mechanism it measures.
// A mechanism is set up whole in one process, before fork (so every POSIX name it uses is
// removed before there is a second process that could fail), then each process keeps its end.
// matrix_kernel.cpp holds the mechanisms where the kernel copies the payload (pipe, sockets,
// FIFO, message queue); matrix_shm.cpp those that hand it over in shared memory or in a
// notification's own value (futex, spin, semaphore, eventfd, signal).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "measure.hpp"

namespace ipcbench::matrix {

enum class side { client, server };

// Thrown in the client when SIGINT or SIGTERM stopped the run: the stack unwinds, so every
// mapping and descriptor is released on the way out (POSIX names are gone already).
struct interrupted {};

// Thrown in the client when the echo side died before its answer came: the run stops with
// how it ended (killed by a signal, or its own exit status).
struct echo_died {};

// matrix_stop.cpp: how a run ends early, by SIGINT or SIGTERM, or by the echo side's death.
void catch_stop_signals();
// From fork to just before the echo side `pid` is reaped: a stop kills it, and its SIGCHLD
// means it died.
void watch_echo_side(pid_t pid);
void forget_echo_side();
// True once SIGINT or SIGTERM arrived; stop_signal_number says which (0: none).
[[nodiscard]] bool stop_requested() noexcept;
[[nodiscard]] int stop_signal_number() noexcept;

// One mechanism, set up and shared by both processes. The client sends a message, the server
// receives it and sends the same bytes back.
class link {
  public:
    link() = default;
    link(const link&) = delete;
    link& operator=(const link&) = delete;
    virtual ~link() = default;

    // After fork, in each process: keep this side's ends, drop the other side's.
    void open(side s, pid_t peer) {
        side_ = s;
        peer_ = peer;
        keep(s);
    }
    // The whole message, or the process dies (the server with _exit); the client throws
    // interrupted when the run was stopped, echo_died when the echo side died.
    virtual void send(std::span<const std::byte> msg) = 0;
    // Exactly msg.size() bytes, one message.
    virtual void receive(std::span<std::byte> msg) = 0;

  protected:
    virtual void keep(side s) = 0;
    [[nodiscard]] side who() const { return side_; }
    [[nodiscard]] pid_t peer() const { return peer_; }
    // A failed call: the server _exits with "call: strerror"; the client throws interrupted
    // when a signal stopped the run, echo_died when the echo side has died, or dies with the
    // same line.
    [[noreturn]] void fail(const char* call) const;
    // After EINTR from a blocking call (or now and then while spinning): false when the run
    // was stopped, or when the echo side died and its answer has not come (the caller fails
    // with it); true to retry.
    [[nodiscard]] bool retry_eintr() const;
    // The client's look at the echo side, with no signal handler involved: true once it has
    // ended (waitid with WNOWAIT: it stays to be reaped). Always false in the echo side.
    [[nodiscard]] bool peer_gone() const;

  private:
    side side_ = side::client;
    pid_t peer_ = 0;
};

// Why a mechanism cannot carry --size bytes: "max 8192 B" and the reason, for the table.
struct limit {
    std::uint64_t max = 0;
    std::string why;
};

// For the verdict: the notes' claim compares shared memory with the kernel's copies.
enum class family {
    kernel_copy,    // the kernel copies the payload in and out: pipes, sockets, queues
    shared_memory,  // both processes read and write the same pages
    notification,   // the payload rides in a notification's own value: eventfd, signal
};

struct mechanism {
    std::string_view name;  // what --only takes, and the row's name
    std::string_view path;  // the payload's path, one way
    bool stream = false;    // a byte stream: also measured one way for MB/s
    family kind = family::kernel_copy;
    std::optional<limit> (*fits)(std::uint64_t size) = nullptr;  // nullopt: it can
    std::unique_ptr<link> (*make)(std::uint64_t size) = nullptr;
};

[[nodiscard]] std::vector<mechanism> kernel_mechanisms();  // matrix_kernel.cpp
[[nodiscard]] std::vector<mechanism> shm_mechanisms();     // matrix_shm.cpp

// One row of the matrix: a mechanism measured, or why it could not carry --size bytes.
struct row {
    const mechanism* mech = nullptr;
    std::optional<limit> na;  // set: not measured at this size
    latency_histogram latency;
    double seconds = 0;     // the timed round trips, first send to last answer
    double client_cpu = 0;  // CPU seconds over the timed round trips, getrusage(RUSAGE_SELF)
    double server_cpu = 0;  // the same, measured by the echo side itself and sent back
    std::optional<double> stream_mb_s;  // stream mechanisms: one way, --size writes
};

// What the report says about the run as a whole.
struct run_info {
    std::uint64_t size = 0;
    std::uint64_t count = 0;
    std::uint64_t warmup = 0;
    std::string cpu;       // where the two sides ran
    std::string cpu_note;  // why --cpu could not be followed, or empty
};

// The table for people (with a bar per row and the verdict), or one JSON object.
void print_table(const run_info& info, const std::vector<row>& rows);  // matrix_report.cpp
void print_json(const run_info& info, const std::vector<row>& rows);

// "/ipcbench-shm-PID-N": a name no other run uses, for mq_open and shm_open.
[[nodiscard]] std::string unique_name(std::string_view what);

}  // namespace ipcbench::matrix
