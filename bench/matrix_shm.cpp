// bench/matrix_shm.cpp: the mechanisms of `ipcbench matrix` where no kernel buffer carries the
// payload. Shared memory (shm_open + mmap) with three ways to say "your turn": a futex, a spin
// on the flag, a POSIX semaphore; and two notifications that carry a tiny payload in their own
// value: an eventfd counter and a signal's sigval (sigqueue). Each is set up before fork.
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "ipc/error.hpp"
#include "ipc/fd.hpp"
#include "matrix.hpp"

namespace ipcbench::matrix {
namespace {

// ---- Shared memory: two slots, one each way ----

enum class hand_off { futex, spin, semaphore };

// One direction's slot. `full` is the flag (and the futex word): 1 while a message waits.
struct alignas(64) slot {
    std::atomic<std::uint32_t> full{0};
    sem_t posted{};  // hand_off::semaphore only: posted once per message
};

struct region {
    slot up;    // client -> server
    slot down;  // server -> client
};

// A mapping of shm_open'ed memory. The name is removed with shm_unlink right after shm_open:
// the mapping (inherited across fork) is all either process needs.
class shm_link final : public link {
  public:
    shm_link(std::uint64_t size, hand_off how) : size_(size), how_(how) {
        const std::string name = unique_name("shm");
        const ipc::unique_fd fd{
            ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
        if (!fd) ipc::die(fmt::format("shm_open({})", name));
        if (::shm_unlink(name.c_str()) == -1) ipc::die(fmt::format("shm_unlink({})", name));
        bytes_ = sizeof(region) + 2 * size;
        if (::ftruncate(fd.get(), static_cast<off_t>(bytes_)) == -1) ipc::die("ftruncate");
        // ftruncate reserves nothing: on a full /dev/shm the first store would be a SIGBUS.
        // posix_fallocate takes the pages now, or says ENOSPC.
        if (const int err = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(bytes_)); err != 0)
            ipc::die_en(err, "posix_fallocate(/dev/shm)");
        void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
        if (p == MAP_FAILED) ipc::die("mmap");
        shared_ = new (p) region;  // fd closes now: the mapping keeps the memory
        if (how_ == hand_off::semaphore) {
            for (slot* s : {&shared_->up, &shared_->down}) {
                if (::sem_init(&s->posted, 1, 0) == -1) ipc::die("sem_init");  // 1: shared
            }
        }
    }
    ~shm_link() override {
        if (how_ == hand_off::semaphore && who() == side::client) {
            (void)::sem_destroy(&shared_->up.posted);  // no one waits on them any more
            (void)::sem_destroy(&shared_->down.posted);
        }
        (void)::munmap(shared_, bytes_);
    }
    shm_link(const shm_link&) = delete;
    shm_link& operator=(const shm_link&) = delete;

    void send(std::span<const std::byte> msg) override {
        std::memcpy(data(out_), msg.data(), msg.size());
        if (how_ == hand_off::semaphore) {
            if (::sem_post(&out_->posted) == -1) fail("sem_post");
            return;
        }
        out_->full.store(1, std::memory_order_release);  // the bytes above are visible first
        if (how_ == hand_off::futex && futex(&out_->full, FUTEX_WAKE, 1) == -1) fail("futex");
    }

    void receive(std::span<std::byte> msg) override {
        wait_for(*in_);
        std::memcpy(msg.data(), data(in_), msg.size());
        in_->full.store(0, std::memory_order_relaxed);  // refilled only after our answer
    }

  private:
    void keep(side s) override {
        out_ = s == side::client ? &shared_->up : &shared_->down;
        in_ = s == side::client ? &shared_->down : &shared_->up;
    }
    [[nodiscard]] std::byte* data(const slot* s) const {
        auto* base = reinterpret_cast<std::byte*>(shared_ + 1);
        return s == &shared_->up ? base : base + size_;
    }
    static long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t val) {
        return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, val, nullptr,
                         nullptr, 0);
    }
    void wait_for(slot& s) const;

    std::uint64_t size_;
    hand_off how_;
    std::size_t bytes_ = 0;
    region* shared_ = nullptr;
    slot* in_ = nullptr;
    slot* out_ = nullptr;
};

// Until the other side has filled slot s: sleep in the kernel on the futex word (woken by
// FUTEX_WAKE), or on the semaphore, or never sleep: read the flag again and again, with a
// sched_yield now and then so that an other side on the same CPU gets to run at all.
void shm_link::wait_for(slot& s) const {
    if (how_ == hand_off::semaphore) {
        while (::sem_wait(&s.posted) == -1) {
            if (errno != EINTR || !retry_eintr()) fail("sem_wait");
        }
        return;
    }
    for (unsigned polls = 1; s.full.load(std::memory_order_acquire) == 0; ++polls) {
        if (how_ == hand_off::futex) {
            // Sleeps only while the word is still 0: a wake that came first is never missed.
            if (futex(&s.full, FUTEX_WAIT, 0) == -1 && errno != EAGAIN) {
                if (errno != EINTR || !retry_eintr()) fail("futex");
            }
        } else if (polls % 1024 == 0) {
            if (!retry_eintr()) fail("spin");  // stopped, or the other side died
            if (::sched_yield() == -1) fail("sched_yield");
        }
    }
}

std::unique_ptr<link> make_shm_futex(std::uint64_t size) {
    return std::make_unique<shm_link>(size, hand_off::futex);
}
std::unique_ptr<link> make_shm_spin(std::uint64_t size) {
    return std::make_unique<shm_link>(size, hand_off::spin);
}
std::unique_ptr<link> make_shm_sem(std::uint64_t size) {
    return std::make_unique<shm_link>(size, hand_off::semaphore);
}

// ---- eventfd: a 64-bit counter, one each way ----

// write(2) adds its 8-byte value to the counter, read(2) takes the sum and resets it to 0. 0
// cannot be sent (it adds nothing, and read waits while the count is 0) nor can 2^64-1, so
// the payload takes the low 7 bytes and bit 56 is always set.
constexpr std::uint64_t eventfd_max = 7;
constexpr std::uint64_t eventfd_mark = std::uint64_t{1} << 56;

class eventfd_link final : public link {
  public:
    eventfd_link() {
        for (ipc::unique_fd& e : counters_) {
            e = ipc::unique_fd{::eventfd(0, EFD_CLOEXEC)};
            if (!e) ipc::die("eventfd");
        }
    }
    void send(std::span<const std::byte> msg) override {
        std::uint64_t value = 0;
        std::memcpy(&value, msg.data(), msg.size());
        value |= eventfd_mark;
        while (::write(counters_[out_].get(), &value, sizeof value) == -1) {
            if (errno != EINTR || !retry_eintr()) fail("write");
        }
    }
    void receive(std::span<std::byte> msg) override {
        std::uint64_t value = 0;
        while (::read(counters_[in_].get(), &value, sizeof value) == -1) {
            if (errno != EINTR || !retry_eintr()) fail("read");
        }
        value &= ~eventfd_mark;
        std::memcpy(msg.data(), &value, msg.size());
    }

  private:
    void keep(side s) override {  // counter 0 counts client -> server, counter 1 the answer
        out_ = s == side::client ? 0 : 1;
        in_ = s == side::client ? 1 : 0;
    }
    std::array<ipc::unique_fd, 2> counters_;
    std::size_t in_ = 0;
    std::size_t out_ = 0;
};

std::unique_ptr<link> make_eventfd(std::uint64_t /*size*/) {
    return std::make_unique<eventfd_link>();
}

std::optional<limit> eventfd_fits(std::uint64_t size) {
    if (size <= eventfd_max) return std::nullopt;
    return limit{eventfd_max,
                 "an eventfd counter is 8 B, and 0 and 2^64-1 cannot be written: 7 B carried, "
                 "one marker bit"};
}

// ---- Signals: sigqueue(3) with a value, sigwaitinfo(2) to take it ----

// SIGRTMIN is blocked before fork (the child inherits the mask) so that it stays pending until
// sigwaitinfo takes it: never a handler. Real-time signals queue, so none is lost.
class signal_link final : public link {
  public:
    signal_link() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGRTMIN);
        if (::sigprocmask(SIG_BLOCK, &set_, &old_) == -1) ipc::die("sigprocmask");
    }
    ~signal_link() override {
        const timespec now{0, 0};  // one a stopped run left pending would kill us once unblocked
        while (::sigtimedwait(&set_, nullptr, &now) != -1) {}
        (void)::sigprocmask(SIG_SETMASK, &old_, nullptr);
    }
    signal_link(const signal_link&) = delete;
    signal_link& operator=(const signal_link&) = delete;

    void send(std::span<const std::byte> msg) override {
        sigval value{};
        std::memcpy(&value, msg.data(), msg.size());
        if (::sigqueue(peer(), SIGRTMIN, value) == -1) fail("sigqueue");
    }
    void receive(std::span<std::byte> msg) override {
        siginfo_t info{};
        while (::sigwaitinfo(&set_, &info) == -1) {
            if (errno != EINTR || !retry_eintr()) fail("sigwaitinfo");
        }
        if (info.si_code != SI_QUEUE || info.si_pid != peer()) {
            errno = EPERM;  // a SIGRTMIN from someone else: not our message
            fail("sigwaitinfo");
        }
        std::memcpy(msg.data(), &info.si_value, msg.size());
    }

  private:
    void keep(side /*s*/) override {}
    sigset_t set_{};
    sigset_t old_{};
};

std::unique_ptr<link> make_signal(std::uint64_t /*size*/) {
    return std::make_unique<signal_link>();
}

std::optional<limit> signal_fits(std::uint64_t size) {
    if (size <= sizeof(sigval)) return std::nullopt;
    return limit{sizeof(sigval), "a signal's value is one union sigval (an int or a pointer)"};
}

}  // namespace

std::vector<mechanism> shm_mechanisms() {
    return {
        {"shm-futex", "memcpy -> shared memory -> memcpy; futex wait/wake", false,
         family::shared_memory, nullptr, make_shm_futex},
        {"shm-spin", "memcpy -> shared memory -> memcpy; spin on a flag", false,
         family::shared_memory, nullptr, make_shm_spin},
        {"eventfd", "write -> eventfd counter (7 B) -> read", false, family::notification,
         eventfd_fits, make_eventfd},
        {"shm-sem", "memcpy -> shared memory -> memcpy; sem_post/sem_wait", false,
         family::shared_memory, nullptr, make_shm_sem},
        {"signal", "sigqueue -> SIGRTMIN's sigval (8 B) -> sigwaitinfo", false,
         family::notification, signal_fits, make_signal},
    };
}

}  // namespace ipcbench::matrix
