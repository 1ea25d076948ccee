// ipcbench echo --bulk: stream bytes through one connection while reading the echo back, as
// fast as both ends go; every byte is compared with what was sent, and GiB/s is reported. A
// writer thread sends while the main thread reads: done one after the other, both ends'
// buffers would fill and the two programs would wait on each other forever.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "echo.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/text.hpp"
#include "ipc/units.hpp"

namespace ipcbench {
namespace {

using ipc::steady;

constexpr std::size_t bulk_chunk = std::size_t{256} * 1024;  // bytes per send(2) and recv(2)

// The stream is a repeating pattern of '\n'-terminated lines (so a line-echo server echoes it
// as it goes); line k of the period differs from line k+1, so a lost or repeated line shows.
std::string bulk_pattern(std::size_t line) {
    const std::size_t lines = std::max<std::size_t>(1, (1U << 20) / line);
    std::string p(lines * line, '\0');
    for (std::size_t k = 0; k < lines; ++k) {
        for (std::size_t i = 0; i + 1 < line; ++i) {
            p[k * line + i] = static_cast<char>('!' + (k + i) % 94);
        }
        p[k * line + line - 1] = '\n';
    }
    return p;
}

class bulk_run {
  public:
    bulk_run(const echo_options& opt, int fd)
        : opt_(opt), fd_(fd), pattern_(bulk_pattern(opt.size)), buf_(bulk_chunk) {
        if (!writer_done_) ipc::die("eventfd");
    }

    // Sends, reads and verifies until the whole echo is back; "" or what went wrong.
    std::string run() {
        stop_at_ = ipc::deadline_after(opt_.duration);
        std::thread writer([this] { write_stream(); });
        progress bar;
        while (failure_.empty() && !(writer_finished_ && (eof_ || received_ == sent_.load()))) {
            if (steady::now() >= stop_at_) stop_.store(true, std::memory_order_relaxed);
            bar.show(fmt::format("echo --bulk: {} echoed", ipc::format_size(received_)));
            if (!read_once()) wait_once();
        }
        if (failure_.empty() && eof_ && received_ != sent_.load()) failure_ = closed();
        if (!failure_.empty()) {
            // Unblocks a writer stuck in send(2): close(2) would not, and could even let the
            // number be reused under it. shutdown(2) makes its send return EPIPE at once.
            stop_.store(true);
            (void)::shutdown(fd_, SHUT_RDWR);
        }
        writer.join();
        if (failure_.empty() && writer_errno_.load() != 0) {
            failure_ = ipc::error_text(writer_errno_.load(), "send");
        }
        return failure_;
    }
    [[nodiscard]] std::uint64_t received() const { return received_; }

  private:
    // The writer thread: the pattern, round and round, then a half-close as the end of what
    // we send (the server's read returns 0 once it has all). Says so through the eventfd.
    void write_stream() {
        const std::uint64_t period = pattern_.size();
        std::uint64_t off = 0;
        while (off < opt_.bulk && !stop_.load(std::memory_order_relaxed)) {
            const std::uint64_t at = off % period;
            const auto chunk = static_cast<std::size_t>(
                std::min<std::uint64_t>({opt_.bulk - off, period - at, bulk_chunk}));
            const ssize_t n = ::send(fd_, pattern_.data() + at, chunk, MSG_NOSIGNAL);
            if (n == -1 && errno == EINTR) continue;
            if (n == -1) {
                writer_errno_.store(errno);
                break;
            }
            off += static_cast<std::uint64_t>(n);
        }
        if (::shutdown(fd_, SHUT_WR) == -1 && writer_errno_.load() == 0) {
            writer_errno_.store(errno);
        }
        sent_.store(off);
        const std::uint64_t one = 1;
        (void)ipc::write_all(writer_done_.get(), &one, sizeof one);  // a counter: cannot fill
    }

    // One recv(2) that does not block. Read first, as Go's netpoller does; poll only when there
    // is nothing to read: returns false then (and when it failed: failure_ says so).
    bool read_once() {
        if (eof_) return false;
        const ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT);
        if (n > 0) {
            failure_ = verify({buf_.data(), static_cast<std::size_t>(n)});
            return true;
        }
        if (n == 0) eof_ = true;
        if (n == 0 || errno == EINTR) return true;
        if (errno != EAGAIN) {
            failure_ = fmt::format("bulk: after {} bytes echoed: {}", received_,
                                   ipc::error_text(errno, "recv"));
        }
        return false;
    }

    // Nothing to read: waits for the echo, the writer's end, the deadline or --duration.
    void wait_once() {
        if (!failure_.empty()) return;
        const auto deadline = ipc::deadline_after(opt_.deadline);
        const auto wake =
            stop_.load(std::memory_order_relaxed) ? deadline : std::min(deadline, stop_at_);
        // poll(2) skips an entry whose fd is negative.
        std::array<pollfd, 2> p{{{eof_ ? -1 : fd_, POLLIN, 0},
                                 {writer_finished_ ? -1 : writer_done_.get(), POLLIN, 0}}};
        const int ready = ::poll(p.data(), p.size(), ipc::ms_until(wake));
        if (ready == -1 && errno == EINTR) return;
        if (ready == -1) {
            failure_ = ipc::error_text(errno, "poll");
            return;
        }
        if (ready == 0 && steady::now() >= deadline) {
            failure_ = eof_ ? closed()
                            : fmt::format("bulk: no echo for {} (--deadline) after {} bytes",
                                          ipc::format_duration(opt_.deadline), received_);
        }
        if (!writer_finished_ && p[1].revents != 0) {
            std::uint64_t value = 0;
            if (ipc::read_some(writer_done_.get(), &value, sizeof value) == -1) {
                failure_ = ipc::error_text(errno, "read(eventfd)");
            }
            // A failed send ends the writer; the reader goes on, to report what the server did.
            writer_finished_ = true;
        }
    }

    // Compares what came with the pattern at this offset, one piece per wrap of the period.
    std::string verify(std::string_view got) {
        const std::uint64_t period = pattern_.size();
        while (!got.empty()) {
            const std::uint64_t at = received_ % period;
            const auto piece =
                static_cast<std::size_t>(std::min<std::uint64_t>(got.size(), period - at));
            if (std::memcmp(got.data(), pattern_.data() + at, piece) != 0) {
                std::size_t k = 0;
                while (got[k] == pattern_[at + k]) ++k;
                return fmt::format("bulk: the echo differs at byte {}: sent {}, got {}",
                                   received_ + k,
                                   ipc::quoted(std::string_view(pattern_).substr(at + k, 16), 60),
                                   ipc::quoted(got.substr(k, 16), 60));
            }
            got.remove_prefix(piece);
            received_ += piece;
        }
        if (received_ > (writer_finished_ ? sent_.load() : opt_.bulk)) {
            return fmt::format("bulk: the server echoed more bytes ({}) than were sent", received_);
        }
        return {};
    }

    [[nodiscard]] std::string closed() const {
        return fmt::format("bulk: connection closed by the server after {} of {} bytes echoed",
                           received_, writer_finished_ ? sent_.load() : opt_.bulk);
    }

    const echo_options& opt_;
    int fd_;
    std::string pattern_;
    std::vector<char> buf_;
    steady::time_point stop_at_ = ipc::never;
    ipc::unique_fd writer_done_{::eventfd(0, EFD_CLOEXEC)};  // the writer says "I am done"
    std::atomic<bool> stop_{false};       // the reader asks the writer to stop early
    std::atomic<std::uint64_t> sent_{0};  // bytes the writer sent; final once writer_done fires
    std::atomic<int> writer_errno_{0};
    // The reader's own state.
    std::uint64_t received_ = 0;
    bool writer_finished_ = false;
    bool eof_ = false;  // the server closed: judge once the writer's count is final
    std::string failure_;
};

void print_bulk(const echo_options& opt, std::uint64_t bytes, double seconds,
                const cpu_meter& cpu) {
    const double gib = static_cast<double>(bytes) / static_cast<double>(1ULL << 30);
    if (opt.json) {
        ipc::say("{}", json_object{}
                           .text("mode", "bulk")
                           .text("network", opt.network)
                           .text("address", opt.connect)
                           .fixed("client_cpu_s", cpu.client(), 3)
                           .fixed("server_cpu_s", cpu.server(), 3)
                           .number("line", opt.size)
                           .number("bytes", bytes)
                           .fixed("seconds", seconds, 3)
                           .fixed("gib_per_sec", gib / seconds, 3)
                           .str());
        return;
    }
    table t({{"network", true}, {"address", true}, {"line"}, {"bytes"}, {"seconds"}, {"GiB/s"}});
    t.add({opt.network, opt.connect, std::to_string(opt.size), std::to_string(bytes),
           fmt::format("{:.3f}", seconds), fmt::format("{:.3f}", gib / seconds)});
    ipc::print(t.text());
    ipc::say("{}", cpu_summary(opt, cpu, seconds, gib, "GiB"));
}

}  // namespace

int run_bulk(const echo_options& opt, const ipc::network& net,
             const std::vector<ipc::sock_addr>& addrs) {
    const ipc::unique_fd conn = dial(opt, net, addrs);
    bulk_run bulk(opt, conn.get());
    cpu_meter cpu(opt.server_pid);
    const auto start = steady::now();
    const std::string failure = bulk.run();
    const double seconds = std::chrono::duration<double>(steady::now() - start).count();
    cpu.stop();
    if (!failure.empty()) ipc::fail(failure);
    print_bulk(opt, bulk.received(), seconds, cpu);
    return 0;
}

}  // namespace ipcbench
