// race: N processes add 1 to one counter in shared memory. Without a lock updates are lost;
// with a semaphore around the increment (a critical section) or with an atomic add, none are.
// Usage: race [--procs N] [--count N] [--interrupt] [--lock none|semaphore|atomic|all]
// Demonstrates "关于同步" in multiprocess-ipc.md: the race condition, mutual exclusion with an
// unnamed POSIX semaphore (sem_init with pshared=1, in the shared page), and the atomic
// operation (std::atomic in the shared page: one locked instruction, no system call).
// Try: race --procs 4 --count 1000000;  race --interrupt --count 10000
// See also: semaphore (named semaphores, for unrelated processes), robust (a holder dies), shm
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <map>
#include <new>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ipc/child.hpp"
#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/process.hpp"

namespace {

enum class lock_kind { none, semaphore, atomic };

struct options {
    int procs = 4;
    long count = 1'000'000;  // increments per process
    bool interrupt = false;  // sched_yield between the load and the store
    std::vector<lock_kind> rounds{lock_kind::none, lock_kind::semaphore, lock_kind::atomic};
};

// The page every process maps. Related processes need no name for it: the mapping
// (MAP_SHARED|MAP_ANONYMOUS) is inherited across fork() and stays shared.
struct shared_state {
    long counter = 0;         // each add is a load and a store: two processes can interleave
    sem_t lock{};             // an unnamed semaphore, value 1: a lock for the critical section
    std::atomic<long> total;  // each add is one atomic read-modify-write instruction
};
// An atomic works between processes only if it is lock-free: a lock inside std::atomic would be
// the process's own, invisible to the others.
static_assert(std::atomic<long>::is_always_lock_free);

shared_state* map_shared_state() {
    void* memory = ::mmap(nullptr, sizeof(shared_state), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) ipc::die("mmap(MAP_SHARED|MAP_ANONYMOUS)");
    ipc::explain("mmap({}, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS) = {}",
                 sizeof(shared_state), memory);
    auto* state = new (memory) shared_state{};
    // pshared = 1: the semaphore lives in memory shared between processes (0: between threads).
    if (::sem_init(&state->lock, 1, 1) == -1) ipc::die("sem_init");
    ipc::explain("sem_init({}, pshared 1, value 1) = 0", fmt::ptr(&state->lock));
    return state;
}

// The critical section's entry: sem_wait, retried when a signal handler interrupts it (EINTR).
void enter(sem_t* lock) {
    while (::sem_wait(lock) == -1) {
        if (errno != EINTR) ipc::child::die("sem_wait", ipc::exit_failure);
    }
}
void leave(sem_t* lock) {
    if (::sem_post(lock) == -1) ipc::child::die("sem_post", ipc::exit_failure);
}

// One add as a load and a store. `volatile` makes the compiler load and store the counter on
// every turn (it could otherwise add `count` at once). --interrupt gives the CPU away between
// the two (sched_yield), as a timer interrupt may at any moment: the cause of a race.
void load_add_store(volatile long& counter, bool interrupt) {
    const long value = counter;
    if (interrupt && ::sched_yield() == -1) ipc::child::die("sched_yield", ipc::exit_failure);
    counter = value + 1;
}

// What each child does, `count` times.
void add(shared_state& state, lock_kind kind, const options& opt) {
    for (long i = 0; i < opt.count; ++i) {
        switch (kind) {
            case lock_kind::none: load_add_store(state.counter, opt.interrupt); break;
            case lock_kind::semaphore:
                enter(&state.lock);
                load_add_store(state.counter, opt.interrupt);  // the critical section
                leave(&state.lock);
                break;
            case lock_kind::atomic:  // one instruction: there is no "between" to interrupt
                state.total.fetch_add(1, std::memory_order_relaxed);
                break;
        }
    }
}

// fork(): the child waits at the gate, adds, and _exit()s: it never returns, never unwinds.
pid_t start_child(shared_state& state, lock_kind kind, const options& opt, ipc::pipe_fds& gate) {
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == -1) ipc::die("fork");  // the children so far are killed: PR_SET_PDEATHSIG
    if (pid != 0) return pid;
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) ipc::child::die("prctl", ipc::exit_failure);
    if (::getppid() != parent) ::_exit(ipc::exit_failure);  // the parent died before prctl
    gate.write.reset();  // the child's copy of the write end: else end of file could never come
    char byte = 0;
    if (ipc::read_some(gate.read.get(), &byte, 1) == -1)  // blocks until the gate opens
        ipc::child::die("read(gate)", ipc::exit_failure);
    add(state, kind, opt);
    ::_exit(0);
}

struct round_result {
    long counter = 0;
    std::chrono::duration<double> elapsed{};
};

// One round: the children are all forked before the gate opens, and each starts as soon as its
// read() of the gate returns, so they really run at the same time (on as many CPUs as there are).
round_result run_round(shared_state& state, lock_kind kind, const options& opt) {
    state.counter = 0;
    state.total.store(0);
    auto gate = ipc::make_pipe();
    std::vector<pid_t> children;
    children.reserve(static_cast<std::size_t>(opt.procs));
    for (int i = 0; i < opt.procs; ++i) children.push_back(start_child(state, kind, opt, gate));
    ipc::explain("fork() x {} = {} .. {}", opt.procs, children.front(), children.back());
    const auto start = std::chrono::steady_clock::now();
    gate.write.reset();  // the last write end closes: every child's read() returns 0, at once
    for (const pid_t pid : children) {
        const int status = ipc::wait_child(pid);
        if (status != 0) ipc::fail("child {} {}", pid, ipc::describe_status(status));
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    return {kind == lock_kind::atomic ? state.total.load() : state.counter, elapsed};
}

const char* name_of(lock_kind kind) {
    switch (kind) {
        case lock_kind::none: return "no lock";
        case lock_kind::semaphore: return "semaphore";
        case lock_kind::atomic: return "atomic";
    }
    return "?";
}

void report(lock_kind kind, const round_result& r, long expected) {
    const long lost = expected - r.counter;
    ipc::say("{:<10} counter {:>11}  lost {:>11} ({:4.1f}%)  {:8.3f}s", name_of(kind), r.counter,
             lost, 100.0 * static_cast<double>(lost) / static_cast<double>(expected),
             r.elapsed.count());
    if (kind == lock_kind::none && lost == 0)
        ipc::say(
            "           (none lost this time: a process must be interrupted between its "
            "load and its store: try --interrupt)");
}

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "N processes add 1 to one counter in a shared page COUNT times each, started together. "
        "Without a lock, two processes load the same value and one update is lost; with an "
        "unnamed semaphore (sem_init, pshared) around the increment none is; with an atomic add "
        "none is either, and faster. The times are one run's lesson figure, not a benchmark.",
        "race"};
    ipc::setup(app, "race --procs 4 --count 1000000");
    options opt;
    std::string lock = "all";
    app.add_option("-p,--procs", opt.procs, "How many processes add at once")
        ->check(CLI::Range(2, 64))
        ->capture_default_str()
        ->type_name("N");
    app.add_option("-n,--count", opt.count, "How many times each process adds 1")
        ->check(CLI::Range(1L, 1'000'000'000L))
        ->capture_default_str()
        ->type_name("N");
    app.add_flag("-i,--interrupt", opt.interrupt,
                 "Give the CPU away (sched_yield) between each load and store, as an interrupt "
                 "might: updates are lost even on one CPU, but not inside the critical section");
    app.add_option("--lock", lock, "none, semaphore, atomic, or all three in turn")
        ->check(CLI::IsMember({"none", "semaphore", "atomic", "all"}))
        ->capture_default_str();
    ipc::parse(app, argc, argv);
    const std::map<std::string, lock_kind> kinds{{"none", lock_kind::none},
                                                 {"semaphore", lock_kind::semaphore},
                                                 {"atomic", lock_kind::atomic}};
    if (lock != "all") opt.rounds = {kinds.at(lock)};
    return opt;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    shared_state* state = map_shared_state();
    const long expected = static_cast<long>(opt.procs) * opt.count;
    ipc::say("race: {} processes add 1 to a counter in shared memory {} times each: expected {}",
             opt.procs, opt.count, expected);
    std::map<lock_kind, round_result> results;
    for (const lock_kind kind : opt.rounds) {
        results[kind] = run_round(*state, kind, opt);
        report(kind, results[kind], expected);
    }
    if (!opt.interrupt && results.contains(lock_kind::semaphore) &&
        results.contains(lock_kind::atomic)) {
        // Above 1 the atomic won; below 1 it lost, said as "N.Nx slower", never "0x faster".
        const double ratio =
            results[lock_kind::semaphore].elapsed / results[lock_kind::atomic].elapsed;
        ipc::say(
            "atomic was {:.1f}x {} than the semaphore (one run on this machine: a "
            "lesson figure, not a benchmark)",
            ratio >= 1 ? ratio : 1 / ratio, ratio >= 1 ? "faster" : "slower");
    }
    if (::sem_destroy(&state->lock) == -1) ipc::die("sem_destroy");
    if (::munmap(state, sizeof(shared_state)) == -1) ipc::die("munmap");
    return 0;
} catch (...) {
    return ipc::internal_error();
}
