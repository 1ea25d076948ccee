// procinfo states: children in each state the kernel gives a process, read back from /proc.
// Usage: procinfo states [-x]
// Demonstrates "进程的状态" of the notes' "进程" section (multiprocess-ipc.md): R (a busy loop),
// S (read() on an empty pipe), T (SIGSTOP) and S again (SIGCONT), D (the parent of a vfork()),
// Z (exited, not reaped: waitid WNOWAIT), and why X, with SIGCHLD ignored, is never seen.
// Try: procinfo states -x   (each fork, vfork, kill and waitpid narrated, with the caller's pid)
// See also: ps -o pid,stat,wchan -p PID; procinfo PID (one process's state); children.cpp
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <string_view>

#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/proc.hpp"
#include "procinfo.hpp"

namespace procinfo {
namespace {

using namespace std::chrono_literals;

// /proc offers no notification of a state change, so we look, with a growing pause, until the
// process shows `want` or 5 s have passed. Returns the last letter seen ('-' once reaped).
char wait_for_state(pid_t pid, char want) {
    const auto deadline = ipc::deadline_after(5s);
    std::chrono::nanoseconds pause = 100us;
    int looks = 0;
    char seen = '-';
    for (;;) {
        seen = state_of(pid).value_or('-');
        ++looks;
        if (seen == want || ipc::ms_until(deadline) == 0) break;
        ipc::sleep_for(pause);
        pause = std::min<std::chrono::nanoseconds>(pause * 2, 10ms);
    }
    ipc::explain("read(/proc/{}/stat): state {} (looked {} times)", pid, seen, looks);
    return seen;
}

// Where in the kernel a process sleeps, if /proc/PID/wchan says.
std::string wchan_of(pid_t pid) {
    const auto wchan = ipc::read_proc(pid, "wchan");
    return wchan && !wchan->empty() && *wchan != "0" ? " (wchan " + *wchan + ")" : "";
}

// Waits for `want` and prints one line: the letter /proc shows, the pid, and what it means.
bool show_state(pid_t pid, char want, std::string_view why) {
    const char seen = wait_for_state(pid, want);
    const std::string wchan = seen == 'S' || seen == 'D' ? wchan_of(pid) : "";
    if (seen == want) {
        ipc::say("{}  pid {:<7} {:<31} {}{}", seen, pid, ipc::state_meaning(seen), why, wchan);
    } else {
        ipc::say("{}  pid {:<7} expected {} ({}), but /proc/{}/stat shows {} after 5 s: {}", seen,
                 pid, want, ipc::state_meaning(want), pid, seen, why);
    }
    return seen == want;
}

bool show_running() {
    auto ready = ipc::make_pipe();
    const pid_t pid = fork_child("a busy loop", [&]() -> int {
        send_ready(ready.write);
        volatile unsigned spins = 0;  // volatile: the loop must really run
        for (;;) spins = spins + 1;
    });
    await_ready(ready, pid);
    const bool ok = show_state(pid, 'R', "a busy loop: on a CPU, or queued for one");
    send_signal(pid, SIGKILL);
    reap(pid);
    return ok;
}

// S, then T after SIGSTOP, then S again after SIGCONT: the same child, blocked in read().
bool show_sleeping_and_stopped() {
    auto ready = ipc::make_pipe();
    auto release = ipc::make_pipe();
    const pid_t pid = fork_child("read() on an empty pipe", [&] {
        release.write.reset();  // so that if the tool vanishes, read() sees end of file
        send_ready(ready.write);
        char byte = 0;
        return ipc::read_some(release.read.get(), &byte, 1) == 1 ? 0 : 1;
    });
    await_ready(ready, pid);
    bool ok = show_state(pid, 'S', "blocked in read() on an empty pipe");
    send_signal(pid, SIGSTOP);
    if (!WIFSTOPPED(wait_for(pid, WUNTRACED, ", WUNTRACED"))) ipc::fail("the child did not stop");
    ok &= show_state(pid, 'T', "after kill(SIGSTOP); waitpid(WUNTRACED) reported the stop");
    send_signal(pid, SIGCONT);
    if (!WIFCONTINUED(wait_for(pid, WCONTINUED, ", WCONTINUED")))
        ipc::fail("the child did not continue");
    ok &= show_state(pid, 'S', "after kill(SIGCONT): back in the same read()");
    if (!ipc::write_all(release.write.get(), "!", 1)) ipc::die("write(release pipe)");
    reap(pid);
    return ok;
}

// vfork() suspends the caller until its child calls _exit() or execve(). The child runs on the
// caller's memory and stack meanwhile: POSIX allows it only _exit() and exec; Linux also bears
// plain system calls that touch nothing the caller will use, like these read() and write().
// The caller waits in TASK_KILLABLE: uninterruptible, D, though SIGKILL can still end it.
int vfork_and_wait(int ready_fd, int release_fd) {
    char byte = 0;  // the child's buffer, declared here so that it assigns nothing after vfork
    const pid_t child = ::vfork();  // NOLINT(clang-analyzer-security.insecureAPI.vfork): the lesson
    if (child == 0) {
        // Each call retried on EINTR, and no variable assigned: the child runs on its parent's
        // stack. The byte is '!' only if the write and then the read both succeeded.
        // NOLINTBEGIN(clang-analyzer-unix.Vfork): read() and write() are safe here on Linux
        while (::write(ready_fd, "!", 1) == -1 && errno == EINTR) {}
        while (::read(release_fd, &byte, 1) == -1 && errno == EINTR) {}
        ::_exit(byte == '!' ? 0 : 1);
        // NOLINTEND(clang-analyzer-unix.Vfork)
    }
    if (child == -1) child_die("vfork");
    ipc::explain("vfork() = {}: returned once the child exited", child);
    return reap(child);
}

bool show_disk_sleep() {
    auto ready = ipc::make_pipe();
    auto release = ipc::make_pipe();
    const pid_t pid = fork_child("vfork() parent", [&] {
        release.write.reset();  // so that the vfork child sees end of file if the tool vanishes
        return vfork_and_wait(ready.write.get(), release.read.get());
    });
    release.read.reset();     // only the children read: if they die, our write fails (EPIPE)
    await_ready(ready, pid);  // the vfork child runs: its parent is inside vfork()
    const bool ok = show_state(pid, 'D', "a vfork() parent, waiting for its child to _exit()");
    if (!ipc::write_all(release.write.get(), "!", 1)) ipc::die("write(release pipe)");
    reap(pid);
    return ok;
}

// waitid(P_PID, pid, options), retried on EINTR: 0, or -1 with errno.
int wait_id(pid_t pid, int options) {
    siginfo_t info{};
    int got = 0;
    while ((got = ::waitid(P_PID, static_cast<id_t>(pid), &info, options)) == -1 &&
           errno == EINTR) {}
    return got;
}

bool show_zombie() {
    const pid_t pid = fork_child("exits at once", [] { return 7; });
    // WNOWAIT: wait until it has exited, but leave it waitable, that is, a zombie.
    if (wait_id(pid, WEXITED | WNOWAIT) == -1)
        ipc::die(fmt::format("waitid({}, WEXITED|WNOWAIT)", pid));
    ipc::explain("waitid({}, WEXITED|WNOWAIT) = 0: exited, left unreaped", pid);
    const bool ok = show_state(pid, 'Z', "exited with status 7, not reaped yet by its parent");
    const int code = reap(pid);
    ipc::say("-  pid {:<7} {:<31} waitpid() took its status {}; /proc/{} is {}", pid, "reaped",
             code, pid, state_of(pid) ? "still there" : "gone");
    return ok;
}

// X is the instant between the reaping of a process and its removal from the process table.
// A child whose parent ignores SIGCHLD is reaped by the kernel as it exits, never a zombie.
void show_dead() {
    struct sigaction ignore = {};
    struct sigaction old = {};
    ignore.sa_handler = SIG_IGN;
    if (::sigaction(SIGCHLD, &ignore, &old) == -1) ipc::die("sigaction(SIGCHLD, SIG_IGN)");
    ipc::explain("sigaction(SIGCHLD, SIG_IGN): the kernel reaps our children itself");
    const pid_t pid = fork_child("exits at once, SIGCHLD ignored", [] { return 0; });
    const int got = wait_id(pid, WEXITED);
    const int err = errno;
    ipc::explain("waitid({}, WEXITED) = {}", pid, got == 0 ? "0" : ipc::errno_name(err));
    if (got == 0 || err != ECHILD) ipc::fail("waitid() should find nothing to wait for (ECHILD)");
    if (::sigaction(SIGCHLD, &old, nullptr) == -1) ipc::die("sigaction(SIGCHLD)");
    const auto left = state_of(pid);
    ipc::say("X  pid {:<7} {:<31} not seen: /proc/{} {}", pid, ipc::state_meaning('X'), pid,
             left ? fmt::format("shows {}", *left) : "is already gone, and it never was Z");
    ipc::print(
        "   (SIGCHLD ignored: the kernel reaped it as it exited. X lasts from a reaping to the\n"
        "   removal of the process, inside the kernel: too short for /proc to catch.)\n");
}

}  // namespace

int run_states() {
    ipc::say("procinfo {}: children in each state, as /proc/PID/stat shows them", ::getpid());
    bool ok = show_running();
    ok &= show_sleeping_and_stopped();
    ok &= show_disk_sleep();
    ok &= show_zombie();
    show_dead();
    pid_t left = 0;
    while ((left = ::waitpid(-1, nullptr, WNOHANG)) == -1 && errno == EINTR) {}
    if (left != -1 || errno != ECHILD) ipc::fail("a child is left");
    ipc::explain("waitpid(-1, WNOHANG) = ECHILD");
    ipc::say("every child reaped: waitpid(-1, WNOHANG) = ECHILD, no child and no zombie left");
    return ok ? 0 : ipc::exit_failure;
}

}  // namespace procinfo
