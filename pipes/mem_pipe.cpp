// pipes/mem_pipe.cpp: the hand-off behind ipc::mem_pipe (see mem_pipe.hpp for the guarantees,
// docs/pipecmp.md for why it is fast).
//
// One atomic word, `state`, carries the hand-off between the writer and the reader:
//
//   idle --writer offers--> offered --a reader claims--> copying --it has copied--> copied
//     ^                                                                               |
//     +----------------------- the writer takes the count -------------------------+
//
// plus a `closed` bit that either close() sets and that is never cleared. The writer lends
// its buffer (offer_data, offer_size); a reader copies straight out of it into its own buffer
// and reports the count (taken). Once a reader has claimed an offer, the writer waits for the
// copy to finish even if the pipe is closed meanwhile, so its buffer outlives every read of it.
// A thread that has to wait spins for a while (wait_mode) and then sleeps on `state` with
// futex(2); whoever changes `state` wakes the sleepers, with a system call only if there are any.
#include "mem_pipe.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>

namespace ipc {

namespace {

class mem_pipe_category_impl final : public std::error_category {
  public:
    [[nodiscard]] const char* name() const noexcept override { return "mem_pipe"; }
    [[nodiscard]] std::string message(int value) const override {
        return value == static_cast<int>(mem_pipe_errc::closed_pipe) ? "read/write on closed pipe"
                                                                     : "unknown mem_pipe error";
    }
};

// The states of the hand-off (the diagram above), and the bit close() sets.
constexpr std::uint32_t idle = 0;
constexpr std::uint32_t offered = 1;
constexpr std::uint32_t copying = 2;
constexpr std::uint32_t copied = 3;  // copying | 1: fetch_or makes it and keeps the closed bit
constexpr std::uint32_t closed_bit = 4;

// How long a wait spins before it sleeps: longer than a hand-off of a few 64 KiB copies takes,
// and about what waking a sleeping thread on another CPU costs, so spinning never loses more
// than twice what sleeping would have cost.
constexpr std::chrono::nanoseconds max_spin = std::chrono::microseconds(50);

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();  // a spin-wait hint: less power, and no memory-order stall on exit
#endif
}

// futex(2) on a 32-bit atomic: sleep while *word == expected; wake every sleeper on word.
// The atomic itself carries the data and its ordering; the futex only puts threads to sleep.
static_assert(sizeof(std::atomic<std::uint32_t>) == 4 &&
              std::atomic<std::uint32_t>::is_always_lock_free);

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
    if (::syscall(SYS_futex, static_cast<void*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
                  nullptr, 0) == -1 &&
        errno != EAGAIN && errno != EINTR) {
        std::abort();  // EFAULT or EINVAL: a bug in this file, not a condition to handle
    }
}

void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
    if (::syscall(SYS_futex, static_cast<void*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
                  nullptr, 0) == -1) {
        std::abort();
    }
}

}  // namespace

const std::error_category& mem_pipe_category() noexcept {
    static const mem_pipe_category_impl category;
    return category;
}

std::error_code make_error_code(mem_pipe_errc e) noexcept {
    return {static_cast<int>(e), mem_pipe_category()};
}

namespace detail {

// What one end tells the other about itself, for deciding whether spinning can pay.
struct end_info {
    std::atomic<int> cpu{-1};  // sched_getcpu() at its last read or write

    void arrive() noexcept {
        const int now = ::sched_getcpu();
        // Store only a change: a store would take the cache line back from the other end.
        if (cpu.load(std::memory_order_relaxed) != now) cpu.store(now, std::memory_order_relaxed);
    }
};

// The two threads write different fields; each group on its own cache line (64 bytes on x86)
// keeps one thread's writes from evicting the line the other is reading ("false sharing").
constexpr std::size_t cache_line = 64;

struct mem_pipe_state {  // NOLINT(clang-analyzer-optin.performance.Padding): on purpose
    explicit mem_pipe_state(wait_mode m) noexcept : mode(m) {}

    const wait_mode mode;

    // The writer's line.
    alignas(cache_line) std::mutex write_mu;  // serialises writes: no two writes' bytes mix
    end_info writer;  // where it last ran: adaptive spins only if the other end is elsewhere

    // The reader's line.
    alignas(cache_line) std::mutex read_mu;  // one reader at a time waits for and takes an offer
    end_info reader;

    // The hand-off's line. The offer is written by the writer before it publishes `offered`
    // and read by the reader that claims it; `taken` goes back before `copied`. `state` orders
    // them.
    alignas(cache_line) std::atomic<std::uint32_t> state{idle};  // also the futex word
    std::atomic<std::uint32_t> sleepers{0};  // threads in futex_wait on state: wake only if any
    const std::byte* offer_data = nullptr;
    std::size_t offer_size = 0;
    std::size_t taken = 0;

    alignas(cache_line) std::mutex error_mu;      // guards the two close errors
    std::optional<std::error_code> read_closed;   // set once by the reader's close
    std::optional<std::error_code> write_closed;  // set once by the writer's close ({} = EOF)

    // Waits until done(state) holds and returns that state: spins as the mode says, then sleeps.
    template <typename Done>
    std::uint32_t await(Done done, end_info& self, const end_info& peer) noexcept;

    // After changing state: wakes whoever sleeps on it. The change must be seq_cst, as the
    // sleeper's count and check are, so that either it sees the change or we see it counted.
    void wake() noexcept {
        if (sleepers.load(std::memory_order_seq_cst) != 0) futex_wake_all(state);
    }

    void close(std::optional<std::error_code>& side, std::error_code err) noexcept {
        {
            std::lock_guard lock(error_mu);
            if (!side) side = err;  // the first error wins
        }
        state.fetch_or(closed_bit, std::memory_order_seq_cst);
        wake();
    }

    // What a reader sees once the pipe is closed: closed_pipe after its own close, else the
    // writer's error ({} for end of file). And the mirror image for a writer.
    std::error_code read_error() noexcept {
        std::lock_guard lock(error_mu);
        if (!read_closed && write_closed) return *write_closed;
        return mem_pipe_errc::closed_pipe;
    }
    std::error_code write_error() noexcept {
        std::lock_guard lock(error_mu);
        if (!write_closed && read_closed) return *read_closed;
        return mem_pipe_errc::closed_pipe;
    }
};

template <typename Done>
std::uint32_t mem_pipe_state::await(Done done, end_info& self, const end_info& peer) noexcept {
    std::uint32_t s = state.load(std::memory_order_acquire);
    if (done(s)) return s;

    // Spinning pays only while the other end runs on another CPU: on ours, it cannot run
    // until we stop. `spin` ignores that (to show what it costs); `adaptive` does not.
    const bool spin = mode == wait_mode::spin ||
                      (mode == wait_mode::adaptive && peer.cpu.load(std::memory_order_relaxed) !=
                                                          self.cpu.load(std::memory_order_relaxed));
    if (spin) {
        const auto start = std::chrono::steady_clock::now();
        for (unsigned i = 1;; ++i) {
            cpu_relax();
            s = state.load(std::memory_order_acquire);
            if (done(s)) return s;
            // Reading the clock costs about as much as a few pauses: look only now and then.
            if (i % 64 == 0 && std::chrono::steady_clock::now() - start >= max_spin) break;
        }
    }

    for (;;) {
        sleepers.fetch_add(1, std::memory_order_seq_cst);
        s = state.load(std::memory_order_seq_cst);
        if (!done(s)) futex_wait(state, s);  // returns at once if state is no longer s
        sleepers.fetch_sub(1, std::memory_order_relaxed);
        s = state.load(std::memory_order_acquire);
        if (done(s)) return s;
    }
}

}  // namespace detail

mem_pipe_ends mem_pipe(wait_mode mode) {
    auto p = std::make_shared<detail::mem_pipe_state>(mode);
    return {mem_pipe_reader{p}, mem_pipe_writer{p}};
}

// --- reader ---

mem_pipe_reader::mem_pipe_reader(std::shared_ptr<detail::mem_pipe_state> p) noexcept
    : p_(std::move(p)) {}

mem_pipe_reader& mem_pipe_reader::operator=(mem_pipe_reader&& other) noexcept {
    if (this != &other) {
        if (p_) close();
        p_ = std::move(other.p_);
    }
    return *this;
}

mem_pipe_reader::~mem_pipe_reader() {
    if (p_) close();
}

pipe_result mem_pipe_reader::read(std::span<std::byte> buf) {
    auto& p = *p_;
    const std::lock_guard lock(p.read_mu);
    if (buf.empty()) {
        return {0, (p.state.load(std::memory_order_acquire) & closed_bit) ? p.read_error()
                                                                          : std::error_code{}};
    }
    p.reader.arrive();
    std::uint32_t s = p.await([](std::uint32_t st) { return st == offered || (st & closed_bit); },
                              p.reader, p.writer);
    // Claim the offer. Only a close can change `offered` under us (the writer withdraws its
    // offer only once the pipe is closed), and then the pipe's error is the answer.
    if (s & closed_bit || !p.state.compare_exchange_strong(s, copying, std::memory_order_seq_cst)) {
        return {0, p.read_error()};
    }
    const std::size_t n = std::min(buf.size(), p.offer_size);
    std::memcpy(buf.data(), p.offer_data, n);  // the one copy: writer's buffer -> reader's
    p.taken = n;
    p.state.fetch_or(copied, std::memory_order_seq_cst);  // copying -> copied, closed bit kept
    p.wake();
    return {n, {}};
}

void mem_pipe_reader::close() noexcept { close_with_error({}); }

void mem_pipe_reader::close_with_error(std::error_code err) noexcept {
    p_->close(p_->read_closed, err ? err : make_error_code(mem_pipe_errc::closed_pipe));
}

// --- writer ---

mem_pipe_writer::mem_pipe_writer(std::shared_ptr<detail::mem_pipe_state> p) noexcept
    : p_(std::move(p)) {}

mem_pipe_writer& mem_pipe_writer::operator=(mem_pipe_writer&& other) noexcept {
    if (this != &other) {
        if (p_) close();
        p_ = std::move(other.p_);
    }
    return *this;
}

mem_pipe_writer::~mem_pipe_writer() {
    if (p_) close();
}

pipe_result mem_pipe_writer::write(std::span<const std::byte> data) {
    auto& p = *p_;
    const std::lock_guard lock(p.write_mu);
    std::size_t done = 0;
    if (data.empty()) {
        return {0, (p.state.load(std::memory_order_acquire) & closed_bit) ? p.write_error()
                                                                          : std::error_code{}};
    }
    p.writer.arrive();
    while (done < data.size()) {
        p.offer_data = data.data() + done;
        p.offer_size = data.size() - done;
        std::uint32_t expected = idle;  // we hold write_mu: only a close can make it not idle
        if (!p.state.compare_exchange_strong(expected, offered, std::memory_order_seq_cst)) {
            return {done, p.write_error()};
        }
        p.wake();
        const std::uint32_t s = p.await(
            [](std::uint32_t st) {
                return (st & ~closed_bit) == copied || st == (offered | closed_bit);
            },
            p.writer, p.reader);
        if (s == (offered | closed_bit)) {
            // Closed before any reader claimed the offer: withdraw it. No reader can claim an
            // offer once the closed bit is set, so the buffer is ours again.
            p.state.store(closed_bit, std::memory_order_seq_cst);
            return {done, p.write_error()};
        }
        done += p.taken;
        p.state.fetch_and(closed_bit, std::memory_order_seq_cst);  // copied -> idle, bit kept
    }
    return {done, {}};
}

void mem_pipe_writer::close() noexcept { close_with_error({}); }

void mem_pipe_writer::close_with_error(std::error_code err) noexcept {
    p_->close(p_->write_closed, err);
}

}  // namespace ipc
