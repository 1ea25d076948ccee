// semaphore: a POSIX named semaphore, a counter that unrelated processes share by its name:
// sem_wait takes one (and blocks while it is 0), sem_post gives one back and wakes a waiter.
// Usage: semaphore post NAME [--initial N] | semaphore wait NAME [--timeout DURATION]
//        [--initial N] | semaphore value NAME | semaphore unlink NAME
// Demonstrates the notes' opening map of IPC (基于同步: 信号灯) and "关于同步" in
// multiprocess-ipc.md: sem_open(3) by name (the file /dev/shm/sem.NAME), sem_post, sem_wait,
// sem_timedwait (ETIMEDOUT).
// Try: semaphore wait job --timeout 30s   (then, from another terminal: semaphore post job)
// See also: race (an unnamed semaphore in shared memory), robust (when the holder dies), shm
#include <fcntl.h>
#include <semaphore.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/output.hpp"
#include "ipc/posix_name.hpp"
#include "ipc/units.hpp"

namespace {

struct options {
    std::string command;                  // post, wait, value or unlink
    std::string name;                     // "/NAME", as sem_open(3) wants it
    unsigned initial = 0;                 // the value of a semaphore that post or wait creates
    std::chrono::nanoseconds timeout{0};  // wait: 0 waits for ever (sem_wait)
};

// "/dev/shm/sem.NAME": where glibc keeps a named semaphore, a small file that it maps.
std::string file_of(const std::string& name) { return "/dev/shm/sem." + name.substr(1); }

// sem_open: the semaphore NAME, created with value `initial` if it does not exist yet (O_CREAT
// without O_EXCL: whoever comes first creates it, so either terminal may start first).
sem_t* open_semaphore(const options& opt, bool create) {
    sem_t* sem = create ? ::sem_open(opt.name.c_str(), O_CREAT, 0600, opt.initial)
                        : ::sem_open(opt.name.c_str(), 0);
    if (sem == SEM_FAILED) ipc::die(fmt::format("sem_open({})", opt.name));
    if (create)
        ipc::explain("sem_open({}, O_CREAT, 0600, {}) = {}", opt.name, opt.initial, fmt::ptr(sem));
    else
        ipc::explain("sem_open({}, 0) = {}", opt.name, fmt::ptr(sem));
    return sem;
}

// sem_getvalue: a glance, already stale when it returns (another process may post or take).
int value_of(sem_t* sem) {
    int value = 0;
    if (::sem_getvalue(sem, &value) == -1) ipc::die("sem_getvalue");
    ipc::explain("sem_getvalue() = {}", value);
    return value;
}

// sem_close: this process's handle is gone; the semaphore itself stays until sem_unlink.
void close_semaphore(sem_t* sem) {
    if (::sem_close(sem) == -1) ipc::die("sem_close");
    ipc::explain("sem_close() = 0");
}

// sem_wait, or sem_timedwait until `deadline` (an absolute time on CLOCK_REALTIME), retried
// with the same deadline when a signal handler interrupts it (EINTR). Returns false when the
// deadline passed first (ETIMEDOUT).
bool take(sem_t* sem, const std::optional<timespec>& deadline) {
    for (;;) {
        const int rc = deadline ? ::sem_timedwait(sem, &*deadline) : ::sem_wait(sem);
        if (rc == 0) return true;
        if (errno == EINTR) {
            ipc::explain("{} = -1 EINTR: retried", deadline ? "sem_timedwait" : "sem_wait");
            continue;
        }
        if (deadline && errno == ETIMEDOUT) return false;
        ipc::die(deadline ? "sem_timedwait" : "sem_wait");
    }
}

int run_post(const options& opt) {
    sem_t* sem = open_semaphore(opt, true);
    if (::sem_post(sem) == -1) ipc::die(fmt::format("sem_post({})", opt.name));  // EOVERFLOW
    ipc::explain("sem_post({}) = 0", opt.name);
    ipc::say("{}: posted, value now {} (a waiter may already have taken it)", opt.name,
             value_of(sem));
    close_semaphore(sem);
    return 0;
}

int run_wait(const options& opt) {
    sem_t* sem = open_semaphore(opt, true);
    const std::string limit =
        opt.timeout.count() == 0 ? "" : " at most " + ipc::format_duration(opt.timeout);
    ipc::say("{}: value {}: waiting{} (from another terminal: semaphore post {})", opt.name,
             value_of(sem), limit, opt.name.substr(1));
    const auto start = ipc::steady::now();
    std::optional<timespec> deadline;
    if (opt.timeout.count() != 0) deadline = ipc::realtime_after(opt.timeout);
    if (!take(sem, deadline)) {
        ipc::explain("sem_timedwait({}) = -1 ETIMEDOUT", opt.name);
        ipc::die_en(ETIMEDOUT, fmt::format("sem_timedwait({}, {}): nobody posted in time", opt.name,
                                           ipc::format_duration(opt.timeout)));
    }
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(ipc::steady::now() - start);
    ipc::explain("{}({}) = 0", deadline ? "sem_timedwait" : "sem_wait", opt.name);
    const std::string when =
        waited.count() == 0 ? "at once" : "after " + ipc::format_duration(waited);
    ipc::say("{}: took one {}, value now {}", opt.name, when, value_of(sem));
    close_semaphore(sem);
    return 0;
}

int run_value(const options& opt) {
    sem_t* sem = open_semaphore(opt, false);
    ipc::say("{}: value {} ({})", opt.name, value_of(sem), file_of(opt.name));
    close_semaphore(sem);
    return 0;
}

int run_unlink(const options& opt) {
    if (::sem_unlink(opt.name.c_str()) == -1) ipc::die(fmt::format("sem_unlink({})", opt.name));
    ipc::explain("sem_unlink({}) = 0", opt.name);
    ipc::say("{} removed: {} is gone; a process that has it open keeps using it", opt.name,
             file_of(opt.name));
    return 0;
}

// NAME (and --initial on the commands that may create the semaphore) for one subcommand.
CLI::App* add_command(CLI::App& app, const char* command, const char* what, std::string& name,
                      unsigned& initial) {
    auto* sub = app.add_subcommand(command, what);
    sub->add_option("NAME", name, "The semaphore: /dev/shm/sem.NAME")->required();
    if (std::string_view(command) == "post" || std::string_view(command) == "wait") {
        sub->add_option("--initial", initial, "Its value if this creates it (default 0)")
            ->check(CLI::Range(0U, static_cast<unsigned>(SEM_VALUE_MAX)))
            ->type_name("N");
    }
    return sub;
}

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "A POSIX named semaphore: a counter kept for unrelated processes under a name. "
        "sem_wait takes one, blocking while the value is 0; sem_post adds one and wakes a "
        "waiter. post and wait create it (value 0, or --initial) if it does not exist; it stays "
        "(as /dev/shm/sem.NAME) until `semaphore unlink`.",
        "semaphore"};
    ipc::setup(app, "semaphore wait job --timeout 30s   (then: semaphore post job)");
    app.require_subcommand(1, 1);
    app.fallthrough();  // -x after the subcommand works too
    options opt;
    std::string name;
    add_command(app, "post", "sem_post: add one to NAME, waking a waiter", name, opt.initial);
    auto* wait = add_command(app, "wait", "sem_wait: take one from NAME, waiting while it is 0",
                             name, opt.initial);
    ipc::add_duration_option(*wait, "--timeout", opt.timeout,
                             "Wait at most this long (sem_timedwait), then fail with ETIMEDOUT");
    add_command(app, "value", "sem_getvalue: print NAME's value", name, opt.initial);
    add_command(app, "unlink", "sem_unlink: remove the name NAME", name, opt.initial);
    ipc::parse(app, argc, argv);
    opt.command = app.get_subcommands().front()->get_name();
    try {
        opt.name = ipc::posix_ipc_name(name, 251);  // glibc's file is "sem.NAME": 4 bytes more
    } catch (const std::invalid_argument& e) {
        ipc::usage_error(fmt::format("NAME: {}", e.what()));
    }
    return opt;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    if (opt.command == "post") return run_post(opt);
    if (opt.command == "wait") return run_wait(opt);
    if (opt.command == "value") return run_value(opt);
    return run_unlink(opt);
} catch (...) {
    return ipc::internal_error();
}
