// robust: a process is killed while it holds a lock. A semaphore stays taken for good (it has no
// owner, so nothing gives it back when its holder dies); a robust mutex goes to the next locker
// with EOWNERDEAD, who repairs the data it guards and calls pthread_mutex_consistent.
// Usage: robust [--timeout DURATION] [--no-consistent]
// Demonstrates "关于同步" in multiprocess-ipc.md (互斥, mutual exclusion) when a holder dies inside
// its critical section: sem_timedwait ends in ETIMEDOUT; PTHREAD_MUTEX_ROBUST gives EOWNERDEAD.
// Try: robust -x
// See also: race (the same semaphore when nobody dies), semaphore (named ones, sem_timedwait)
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <new>

#include <fmt/format.h>

#include "ipc/child.hpp"
#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/process.hpp"
#include "ipc/units.hpp"

namespace {

struct options {
    std::chrono::nanoseconds timeout{std::chrono::seconds(1)};  // how long sem_timedwait waits
    bool consistent = true;  // after EOWNERDEAD: repair and call pthread_mutex_consistent
};

// The page parent and children share (MAP_SHARED|MAP_ANONYMOUS, inherited across fork).
struct shared_state {
    sem_t semaphore{};
    pthread_mutex_t mutex{};
    long accounts[2]{};  // the data the mutex guards: their sum is 100 whenever it is unlocked
};

shared_state* map_shared_state() {
    void* memory = ::mmap(nullptr, sizeof(shared_state), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) ipc::die("mmap(MAP_SHARED|MAP_ANONYMOUS)");
    ipc::explain("mmap({}, MAP_SHARED|MAP_ANONYMOUS) = {}", sizeof(shared_state), memory);
    return new (memory) shared_state{};
}

// fork(): the child runs take() (it takes the lock), says so through a pipe, then sleeps until
// it is killed, holding the lock. Returns once the child holds it.
template <typename Take>
pid_t start_holder(Take take) {
    auto ready = ipc::make_pipe();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == -1) ipc::die("fork");
    if (pid == 0) {
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) ipc::child::die("prctl", 1);
        if (::getppid() != parent) ::_exit(1);  // the parent died before prctl
        ready.read.reset();
        take();
        if (!ipc::write_all(ready.write.get(), "!", 1)) ipc::child::die("write(pipe)", 1);
        for (;;) ::pause();  // holds the lock until SIGKILL; never returns, never unwinds
    }
    ipc::explain("fork() = {}", pid);
    ready.write.reset();  // ours: so that a child that dies early gives end of file
    char byte = 0;
    const ssize_t n = ipc::read_some(ready.read.get(), &byte, 1);
    if (n == -1) ipc::die("read(pipe)");
    if (n == 0) ipc::fail("child {} ended before it took the lock", pid);
    return pid;
}

void kill_holder(pid_t pid) {
    if (::kill(pid, SIGKILL) == -1) ipc::die(fmt::format("kill({}, SIGKILL)", pid));
    const int status = ipc::wait_child(pid);
    ipc::say("parent {}: kill({}, SIGKILL), waitpid: {}: it never unlocked", ::getpid(), pid,
             ipc::describe_status(status));
}

// Part 1. A semaphore is a counter, not an owner: when its holder dies nothing gives it back.
void semaphore_holder_dies(shared_state& s, std::chrono::nanoseconds timeout) {
    ipc::say("1. an unnamed semaphore (sem_init, pshared 1, value 1) whose holder is killed");
    if (::sem_init(&s.semaphore, 1, 1) == -1) ipc::die("sem_init");
    ipc::explain("sem_init(pshared 1, value 1) = 0");
    const pid_t pid = start_holder([&s] {
        while (::sem_wait(&s.semaphore) == -1) {
            if (errno != EINTR) ipc::child::die("sem_wait", 1);
        }
    });
    ipc::say("child  {}: sem_wait() = 0: it holds the semaphore", pid);
    kill_holder(pid);
    int value = -1;
    if (::sem_getvalue(&s.semaphore, &value) == -1) ipc::die("sem_getvalue");
    ipc::say("parent {}: sem_getvalue() = {}: the kernel does not know who took it", ::getpid(),
             value);
    const timespec deadline = ipc::realtime_after(timeout);
    int rc = 0;
    while ((rc = ::sem_timedwait(&s.semaphore, &deadline)) == -1 && errno == EINTR) {}
    if (rc == 0) ipc::fail("sem_timedwait() = 0: the semaphore was given back after all");
    if (errno != ETIMEDOUT) ipc::die("sem_timedwait");
    ipc::say(
        "parent {}: sem_timedwait({}) = -1 ETIMEDOUT: taken for good (sem_wait would block "
        "for ever)",
        ::getpid(), ipc::format_duration(timeout));
    if (::sem_destroy(&s.semaphore) == -1) ipc::die("sem_destroy");
}

void init_robust_mutex(pthread_mutex_t* mutex) {
    pthread_mutexattr_t attr;
    if (const int err = ::pthread_mutexattr_init(&attr)) ipc::die_en(err, "pthread_mutexattr_init");
    // Shared: it lives in memory that several processes map. Robust: glibc keeps the robust
    // mutexes a thread holds on a list in the thread's own memory, registered with
    // set_robust_list(2); when the thread dies, the kernel walks it and marks each owner-dead.
    if (const int err = ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED))
        ipc::die_en(err, "pthread_mutexattr_setpshared");
    if (const int err = ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST))
        ipc::die_en(err, "pthread_mutexattr_setrobust");
    if (const int err = ::pthread_mutex_init(mutex, &attr)) ipc::die_en(err, "pthread_mutex_init");
    ipc::explain("pthread_mutex_init(PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST) = 0");
    (void)::pthread_mutexattr_destroy(&attr);
}

// pthread_mutex_lock returns the error number; EOWNERDEAD means "locked, but ..." (see below).
int lock(pthread_mutex_t* mutex) {
    const int rc = ::pthread_mutex_lock(mutex);
    if (rc != 0 && rc != EOWNERDEAD && rc != ENOTRECOVERABLE) ipc::die_en(rc, "pthread_mutex_lock");
    ipc::explain("pthread_mutex_lock() = {}", rc == 0 ? "0" : ipc::errno_name(rc));
    return rc;
}

void unlock(pthread_mutex_t* mutex) {
    if (const int err = ::pthread_mutex_unlock(mutex)) ipc::die_en(err, "pthread_mutex_unlock");
}

// EOWNERDEAD: we hold the mutex now, but the data may be half changed. Repair it, then say so
// with pthread_mutex_consistent; without that, unlocking makes the mutex unusable for good.
void recover(shared_state& s, bool consistent) {
    const pid_t self = ::getpid();
    ipc::say(
        "parent {}: pthread_mutex_lock() = EOWNERDEAD: locked, but accounts {} + {} = {}, "
        "not 100: the holder died half-way",
        self, s.accounts[0], s.accounts[1], s.accounts[0] + s.accounts[1]);
    if (consistent) {
        s.accounts[1] = 100 - s.accounts[0];  // the repair: finish the transfer
        if (const int err = ::pthread_mutex_consistent(&s.mutex))
            ipc::die_en(err, "pthread_mutex_consistent");
        ipc::say("parent {}: repaired (accounts {} + {}), pthread_mutex_consistent() = 0", self,
                 s.accounts[0], s.accounts[1]);
    } else {
        ipc::say("parent {}: unlocks without pthread_mutex_consistent (--no-consistent)", self);
    }
    unlock(&s.mutex);
}

// Part 2. A robust mutex has an owner, so the kernel can tell the next locker that it died.
void mutex_holder_dies(shared_state& s, bool consistent) {
    ipc::say(
        "2. a robust mutex (PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST) whose holder is "
        "killed in the middle of an update");
    init_robust_mutex(&s.mutex);
    s.accounts[0] = 100;
    s.accounts[1] = 0;
    const pid_t pid = start_holder([&s] {
        if (::pthread_mutex_lock(&s.mutex) != 0) ::_exit(1);
        s.accounts[0] -= 10;  // the first half of moving 10 from one account to the other
    });
    ipc::say("child  {}: pthread_mutex_lock() = 0, took 10 from account 0 (accounts {} + {})", pid,
             s.accounts[0], s.accounts[1]);
    kill_holder(pid);
    if (lock(&s.mutex) != EOWNERDEAD) {  // 0: we hold it, and a second lock would hang
        unlock(&s.mutex);
        ipc::fail("pthread_mutex_lock() = 0: this kernel did not report the holder's death");
    }
    recover(s, consistent);
    const int rc = lock(&s.mutex);
    if (rc == 0) {
        ipc::say("parent {}: pthread_mutex_lock() = 0: the mutex works again", ::getpid());
        unlock(&s.mutex);
    } else {
        ipc::say("parent {}: pthread_mutex_lock() = {}: nobody can ever lock it again", ::getpid(),
                 ipc::errno_name(rc));
    }
    if (const int err = ::pthread_mutex_destroy(&s.mutex))
        ipc::die_en(err, "pthread_mutex_destroy");
}

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "A child takes a lock in shared memory and is killed (SIGKILL) while it holds it. An "
        "unnamed semaphore stays taken: the parent's sem_timedwait ends in ETIMEDOUT. A robust "
        "mutex (PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST) is handed to the parent with "
        "EOWNERDEAD: it repairs the data and calls pthread_mutex_consistent.",
        "robust"};
    ipc::setup(app, "robust -x");
    options opt;
    bool no_consistent = false;
    ipc::add_duration_option(app, "--timeout", opt.timeout,
                             "How long the parent's sem_timedwait waits for the dead holder");
    app.add_flag("--no-consistent", no_consistent,
                 "After EOWNERDEAD unlock without pthread_mutex_consistent: the next lock gets "
                 "ENOTRECOVERABLE");
    ipc::parse(app, argc, argv);
    if (opt.timeout.count() == 0) ipc::usage_error("--timeout: must be more than 0");
    opt.consistent = !no_consistent;
    return opt;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    shared_state* state = map_shared_state();
    semaphore_holder_dies(*state, opt.timeout);
    mutex_holder_dies(*state, opt.consistent);
    if (::munmap(state, sizeof(shared_state)) == -1) ipc::die("munmap");
    return 0;
} catch (...) {
    return ipc::internal_error();
}
