// procinfo: a process as the kernel keeps it: ids, parent, state; and the life around it.
// Usage: procinfo [--json] [--ancestors] [PID] | procinfo states | orphan [--subreaper] | fork
// Demonstrates the notes' "进程" section (multiprocess-ipc.md): PID and PPID (进程的标识), the
// states R S D T Z X (进程的状态), fork and copy-on-write, orphans adopted by init (进程的衍生).
// Everything shown is read back from /proc/PID/stat and /proc/PID/status, or from a system call.
// Try: procinfo --ancestors $$; procinfo states -x
// See also: ps -o pid,ppid,pgid,sid,stat,comm -p PID; sigsend -0 PID (does a process exist?)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/process.hpp"
#include "ipc/signals.hpp"

namespace {

using namespace std::chrono_literals;

// One line on stdout in one write(2): no stdio buffer, so the lines of the tool and of its
// children come out in the order they were written, even into a pipe.
template <typename... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
    const std::string line = fmt::format(format, std::forward<Args>(args)...) + '\n';
    if (!ipc::write_all(STDOUT_FILENO, line.data(), line.size())) ipc::die("write(stdout)");
}

// ---- Reading /proc --------------------------------------------------------------------------

// What /proc/PID/stat and /proc/PID/status say about a process.
struct proc_info {
    pid_t pid = 0, ppid = 0, pgrp = 0, session = 0;
    uid_t uid = 0, euid = 0;
    char state = '?';
    std::string comm;  // the command name, up to 15 bytes: any bytes, ' ' and ')' included
};

// The state letters of proc(5) (fs/proc/array.c), in our words.
std::string_view state_meaning(char state) {
    switch (state) {
        case 'R': return "running or runnable";
        case 'S': return "sleeping, interruptible";
        case 'D': return "disk sleep, uninterruptible";
        case 'T': return "stopped by a signal";
        case 't': return "stopped by a tracer";
        case 'Z': return "zombie: exited, not yet reaped";
        case 'X': return "dead: being removed";
        case 'I': return "idle kernel thread";
        case 'P': return "parked kernel thread";
        default: return "unknown";
    }
}

// Opens the directory /proc/PID, or returns an empty fd if there is no such process. The
// descriptor names this process, not its number: once it is reaped, files opened through it
// fail, even if the number has been given to a new process meanwhile.
ipc::unique_fd open_proc(pid_t pid, bool quiet = false) {
    const std::string path = fmt::format("/proc/{}", pid);
    ipc::unique_fd dir{::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!dir && errno != ENOENT && errno != ESRCH) ipc::die(fmt::format("open({})", path));
    if (!quiet) ipc::explain("open(\"{}\", O_DIRECTORY) = {}", path, dir.get());
    return dir;
}

// Reads /proc/PID/NAME through open_proc()'s descriptor; nullopt once the process is reaped
// (openat() then fails with ENOENT, or ESRCH while the process is being removed; read() with
// ESRCH).
std::optional<std::string> read_proc_file(const ipc::unique_fd& dir, pid_t pid, const char* name,
                                          bool quiet = false) {
    ipc::unique_fd fd{::openat(dir.get(), name, O_RDONLY | O_CLOEXEC)};
    if (!quiet) ipc::explain("openat({}, \"{}\") = {}", dir.get(), name, fd.get());
    if (!fd && (errno == ENOENT || errno == ESRCH)) return std::nullopt;
    if (!fd) ipc::die(fmt::format("open(/proc/{}/{})", pid, name));
    std::string text;
    char buf[1024];
    for (;;) {
        const ssize_t n = ipc::read_some(fd.get(), buf, sizeof buf);
        if (n == 0) return text;
        if (n == -1 && errno == ESRCH) return std::nullopt;
        if (n == -1) ipc::die(fmt::format("read(/proc/{}/{})", pid, name));
        text.append(buf, static_cast<std::size_t>(n));
    }
}

// Takes the next blank-separated decimal number off the front of `text`.
template <typename Int>
bool take_number(std::string_view& text, Int& out) {
    const auto start = text.find_first_not_of(" \t");
    if (start == std::string_view::npos) return false;
    text.remove_prefix(start);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    return ec == std::errc{};
}

// /proc/PID/stat is "pid (comm) state ppid pgrp session ...". comm may hold ' ' and ')',
// so it ends at the LAST ')', and the numbers are counted from there.
bool parse_stat(std::string_view text, proc_info& info) {
    const auto open = text.find('('), close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open ||
        close + 2 >= text.size())
        return false;
    info.comm = std::string(text.substr(open + 1, close - open - 1));
    info.state = text[close + 2];
    text.remove_prefix(close + 3);
    return take_number(text, info.ppid) && take_number(text, info.pgrp) &&
           take_number(text, info.session);
}

// /proc/PID/status has a line "Uid:\treal\teffective\tsaved\tfilesystem".
bool parse_status(std::string_view text, proc_info& info) {
    const auto at = text.find("\nUid:");
    if (at == std::string_view::npos) return false;
    text.remove_prefix(at + 5);
    return take_number(text, info.uid) && take_number(text, info.euid);
}

// Everything about one process, or nullopt if there is no such process. A process that is
// reaped between our first and last read is a clear failure, never a half-filled answer.
std::optional<proc_info> read_process(pid_t pid) {
    const ipc::unique_fd dir = open_proc(pid);
    if (!dir) return std::nullopt;
    const auto stat = read_proc_file(dir, pid, "stat");
    const auto status = stat ? read_proc_file(dir, pid, "status") : std::nullopt;
    if (!stat || !status) ipc::fail(fmt::format("process {} exited while being read", pid));
    proc_info info;
    info.pid = pid;
    if (!parse_stat(*stat, info) || !parse_status(*status, info))
        ipc::fail(fmt::format("cannot parse /proc/{}/stat or /proc/{}/status", pid, pid));
    return info;
}

// /proc/PID/stat alone, or nullopt once the process is reaped; `quiet` when it is polled.
std::optional<proc_info> stat_of(pid_t pid, bool quiet) {
    const ipc::unique_fd dir = open_proc(pid, quiet);
    const auto stat = dir ? read_proc_file(dir, pid, "stat", quiet) : std::nullopt;
    proc_info info;
    if (!stat || !parse_stat(*stat, info)) return std::nullopt;
    return info;
}

std::optional<char> state_of(pid_t pid) {
    const auto info = stat_of(pid, true);
    return info ? std::optional<char>(info->state) : std::nullopt;
}

// ---- The single-process views ---------------------------------------------------------------

// The command name with control bytes made visible, so that a name cannot break our lines.
std::string printable(std::string_view text) {
    std::string out;
    for (const char c : text) out += (c >= 0 && c < ' ') || c == 0x7f ? '?' : c;
    return out;
}

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\')
            out += fmt::format("\\{}", c);
        else if (c >= 0 && c < ' ')
            out += fmt::format("\\u{:04x}", c);
        else
            out += c;
    }
    return out + '"';
}

std::string to_json(const proc_info& p) {
    return fmt::format(
        R"({{"pid": {}, "ppid": {}, "pgrp": {}, "session": {}, "uid": {}, "euid": {}, )"
        R"("state": "{}", "state_meaning": "{}", "comm": {}}})",
        p.pid, p.ppid, p.pgrp, p.session, p.uid, p.euid, p.state, state_meaning(p.state),
        json_string(p.comm));
}

std::string name_of(pid_t pid) {
    const auto info = stat_of(pid, false);
    return info ? printable(info->comm) : "?";
}

[[noreturn]] void no_such_process(pid_t pid) { ipc::fail(fmt::format("no such process: {}", pid)); }

void show_process(pid_t pid, bool json) {
    const auto p = read_process(pid);
    if (!p) no_such_process(pid);
    if (json) return say("{}", to_json(*p));
    say("pid      {}", p->pid);
    say("ppid     {} ({})", p->ppid,
        p->ppid == 0 ? "no parent in this pid namespace" : name_of(p->ppid));
    say("pgrp     {}", p->pgrp);
    say("session  {}", p->session);
    say("uid      {} (euid {})", p->uid, p->euid);
    say("state    {} ({})", p->state, state_meaning(p->state));
    say("command  {}", printable(p->comm));
}

// The chain of parents from pid up to the process whose parent is 0: pid 1, the init of this
// pid namespace (or kthreadd, pid 2, for a kernel thread).
void show_ancestors(pid_t pid, bool json) {
    std::vector<proc_info> chain;
    for (;;) {
        const auto p = read_process(pid);
        if (!p && chain.empty()) no_such_process(pid);
        if (!p) ipc::fail(fmt::format("process {} exited while being read", pid));
        chain.push_back(*p);
        if (p->ppid == 0 || chain.size() > 4096) break;  // the bound: parents read at two moments
        pid = p->ppid;
    }
    if (json) {
        std::string all;
        for (const auto& p : chain) all += (all.empty() ? "[" : ", ") + to_json(p);
        return say("{}]", all);
    }
    say("{:>7} {:>7}  S  COMMAND", "PID", "PPID");
    for (const auto& p : chain)
        say("{:>7} {:>7}  {}  {}", p.pid, p.ppid, p.state, printable(p.comm));
}

// ---- Children ---------------------------------------------------------------------------------

// A failed call in a forked child: report it and _exit(), so nothing unwinds or flushes twice.
[[noreturn]] void child_die(std::string_view call) {
    ipc::warn(call);
    ::_exit(ipc::exit_failure);
}

// fork(): the child runs body() and _exit()s with what it returns. PR_SET_PDEATHSIG kills the
// child if the tool dies first, so that no busy or blocked child outlives an interrupted demo.
template <typename Body>
pid_t spawn(std::string_view what, Body body) {
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == -1) ipc::die("fork");
    if (pid == 0) {
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) child_die("prctl(PR_SET_PDEATHSIG)");
        if (::getppid() != parent) ::_exit(ipc::exit_failure);  // the parent died before prctl
        ipc::explain("prctl(PR_SET_PDEATHSIG, SIGKILL)");
        int code = ipc::exit_failure;  // also if body() throws: nothing unwinds out of a child
        try {
            code = body();
        } catch (...) {}
        ::_exit(code);
    }
    ipc::explain("fork() = {} ({})", pid, what);
    return pid;
}

// The child's half of a readiness pipe: one byte says "I have got this far".
void send_ready(const ipc::unique_fd& fd) {
    if (!ipc::write_all(fd.get(), "!", 1)) child_die("write(ready pipe)");
}

// The parent's half. It closes its own write end first, so that a child that dies early gives
// end of file instead of a wait forever.
void await_ready(ipc::pipe_fds& ready, pid_t pid) {
    ready.write.reset();
    char byte = 0;
    const ssize_t n = ipc::read_some(ready.read.get(), &byte, 1);
    if (n == -1) ipc::die("read(ready pipe)");
    if (n == 0) ipc::fail(fmt::format("child {} ended before it was ready", pid));
    ipc::explain("read(ready pipe) = 1: child {} is ready", pid);
}

void send_signal(pid_t pid, int sig) {
    if (::kill(pid, sig) == -1) ipc::die(fmt::format("kill({}, {})", pid, ipc::signal_name(sig)));
    ipc::explain("kill({}, {})", pid, ipc::signal_name(sig));
}

// waitpid() with `flags`; returns the raw status.
int wait_child(pid_t pid, int flags, std::string_view flag_names) {
    int status = 0;
    pid_t got = 0;
    while ((got = ::waitpid(pid, &status, flags)) == -1 && errno == EINTR) {}
    if (got == -1) ipc::die(fmt::format("waitpid({}{})", pid, flag_names));
    ipc::explain("waitpid({}{}) = {}, status {:#x}", pid, flag_names, got, status);
    return status;
}

// Reaps a child; returns its status as a shell shows it: the exit code, or 128+signal.
int reap(pid_t pid) {
    const int status = wait_child(pid, 0, "");
    return ipc::shell_status(status);
}

// ---- procinfo states --------------------------------------------------------------------------

// /proc offers no notification of a state change, so we look, with a growing pause, until the
// process shows `want` or 5 s have passed. Returns the last letter seen ('-' once reaped).
char wait_for_state(pid_t pid, char want) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    auto pause = 100us;
    int looks = 0;
    char seen = '-';
    for (;;) {
        seen = state_of(pid).value_or('-');
        ++looks;
        if (seen == want || std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::microseconds{10ms});
    }
    ipc::explain("read(/proc/{}/stat): state {} (looked {} times)", pid, seen, looks);
    return seen;
}

// Where in the kernel a process sleeps, if /proc/PID/wchan says.
std::string wchan_of(pid_t pid) {
    const ipc::unique_fd dir = open_proc(pid);
    const auto wchan = dir ? read_proc_file(dir, pid, "wchan") : std::nullopt;
    return wchan && !wchan->empty() && *wchan != "0" ? " (wchan " + *wchan + ")" : "";
}

// Waits for `want` and prints one line: the letter /proc shows, the pid, and what it means.
bool show_state(pid_t pid, char want, std::string_view why) {
    const char seen = wait_for_state(pid, want);
    const std::string wchan = seen == 'S' || seen == 'D' ? wchan_of(pid) : "";
    if (seen == want) {
        say("{}  pid {:<7} {:<31} {}{}", seen, pid, state_meaning(seen), why, wchan);
    } else {
        say("{}  pid {:<7} expected {} ({}), but /proc/{}/stat shows {} after 5 s: {}", seen, pid,
            want, state_meaning(want), pid, seen, why);
    }
    return seen == want;
}

bool show_running() {
    auto ready = ipc::make_pipe();
    const pid_t pid = spawn("a busy loop", [&]() -> int {
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
    const pid_t pid = spawn("read() on an empty pipe", [&] {
        release.write.reset();  // so that if the tool vanishes, read() sees end of file
        send_ready(ready.write);
        char byte = 0;
        return ipc::read_some(release.read.get(), &byte, 1) == 1 ? 0 : 1;
    });
    await_ready(ready, pid);
    bool ok = show_state(pid, 'S', "blocked in read() on an empty pipe");
    send_signal(pid, SIGSTOP);
    if (!WIFSTOPPED(wait_child(pid, WUNTRACED, ", WUNTRACED"))) ipc::fail("the child did not stop");
    ok &= show_state(pid, 'T', "after kill(SIGSTOP); waitpid(WUNTRACED) reported the stop");
    send_signal(pid, SIGCONT);
    if (!WIFCONTINUED(wait_child(pid, WCONTINUED, ", WCONTINUED")))
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
        // NOLINTNEXTLINE(clang-analyzer-unix.Vfork): read() and write() are safe here on Linux
        ::_exit(::write(ready_fd, "!", 1) == 1 && ::read(release_fd, &byte, 1) == 1 ? 0 : 1);
    }
    if (child == -1) child_die("vfork");
    ipc::explain("vfork() = {}: returned once the child exited", child);
    return reap(child);
}

bool show_disk_sleep() {
    auto ready = ipc::make_pipe();
    auto release = ipc::make_pipe();
    const pid_t pid = spawn("vfork() parent", [&] {
        release.write.reset();  // so that the vfork child sees end of file if the tool vanishes
        return vfork_and_wait(ready.write.get(), release.read.get());
    });
    release.read.reset();
    await_ready(ready, pid);  // the vfork child runs: its parent is inside vfork()
    const bool ok = show_state(pid, 'D', "a vfork() parent, waiting for its child to _exit()");
    if (!ipc::write_all(release.write.get(), "!", 1)) ipc::die("write(release pipe)");
    reap(pid);
    return ok;
}

bool show_zombie() {
    const pid_t pid = spawn("exits at once", [] { return 7; });
    siginfo_t info{};
    // WNOWAIT: wait until it has exited, but leave it waitable, that is, a zombie.
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == -1)
        ipc::die(fmt::format("waitid({}, WEXITED|WNOWAIT)", pid));
    ipc::explain("waitid({}, WEXITED|WNOWAIT) = 0: exited, left unreaped", pid);
    const bool ok = show_state(pid, 'Z', "exited with status 7, not reaped yet by its parent");
    const int code = reap(pid);
    say("-  pid {:<7} {:<31} waitpid() took its status {}; /proc/{} is {}", pid, "reaped", code,
        pid, state_of(pid) ? "still there" : "gone");
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
    const pid_t pid = spawn("exits at once, SIGCHLD ignored", [] { return 0; });
    siginfo_t info{};
    const int got = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED);
    const int err = errno;
    ipc::explain("waitid({}, WEXITED) = {}", pid, got == 0 ? "0" : ipc::errno_name(err));
    if (got == 0 || err != ECHILD) ipc::fail("waitid() should find nothing to wait for (ECHILD)");
    if (::sigaction(SIGCHLD, &old, nullptr) == -1) ipc::die("sigaction(SIGCHLD)");
    const auto left = state_of(pid);
    say("X  pid {:<7} {:<31} not seen: /proc/{} {}", pid, state_meaning('X'), pid,
        left ? fmt::format("shows {}", *left) : "is already gone, and it never was Z");
    say("   (SIGCHLD ignored: the kernel reaped it as it exited. X lasts from a reaping to the");
    say("   removal of the process, inside the kernel: too short for /proc to catch.)");
}

int run_states() {
    say("procinfo {}: children in each state, as /proc/PID/stat shows them", ::getpid());
    bool ok = show_running();
    ok &= show_sleeping_and_stopped();
    ok &= show_disk_sleep();
    ok &= show_zombie();
    show_dead();
    if (::waitpid(-1, nullptr, WNOHANG) != -1 || errno != ECHILD) ipc::fail("a child is left");
    ipc::explain("waitpid(-1, WNOHANG) = ECHILD");
    say("every child reaped: waitpid(-1, WNOHANG) = ECHILD, no child and no zombie left");
    return ok ? 0 : ipc::exit_failure;
}

// ---- procinfo orphan --------------------------------------------------------------------------

// Forked by the parent; outlives it. Prints its ppid before and after, and reports the second.
int grandchild(ipc::pipe_fds& said, ipc::pipe_fds& gone, ipc::pipe_fds& report) {
    gone.write.reset();  // so that read() below sees end of file if the tool vanishes
    say("grandchild {}: my ppid is {} (my parent is alive)", ::getpid(), ::getppid());
    send_ready(said.write);
    char byte = 0;
    if (ipc::read_some(gone.read.get(), &byte, 1) != 1) return 1;
    const pid_t ids[2] = {::getpid(), ::getppid()};
    say("grandchild {}: my ppid is {} (my parent has exited)", ids[0], ids[1]);
    if (!ipc::write_all(report.write.get(), ids, sizeof ids)) child_die("write(report pipe)");
    return 0;
}

// The orphan's new parent must reap it, as any parent must: a prompt init does so at once.
void wait_for_adopter_to_reap(pid_t orphan, pid_t adopter) {
    const auto start = std::chrono::steady_clock::now();
    const auto waited = [&] { return std::chrono::steady_clock::now() - start; };
    std::optional<char> state;
    for (auto pause = 1ms; (state = state_of(orphan)) && waited() < 5s;
         pause = std::min(2 * pause, 50ms))
        std::this_thread::sleep_for(pause);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(waited()).count();
    ipc::explain("read(/proc/{}/stat) for {} ms: {}", orphan, ms, state ? "still there" : "gone");
    if (!state) return say("pid {} reaped it within {} ms: /proc/{} is gone", adopter, ms, orphan);
    say("pid {} has not reaped pid {} in 5 s: it stays a zombie ({}) until its parent waits",
        adopter, orphan, *state);
    if (adopter == 1)
        say("Not every pid 1 reaps orphans (in a container, run a small init: tini).");
}

int run_orphan(bool subreaper) {
    if (subreaper) {
        if (::prctl(PR_SET_CHILD_SUBREAPER, 1) == -1) ipc::die("prctl(PR_SET_CHILD_SUBREAPER, 1)");
        ipc::explain("prctl(PR_SET_CHILD_SUBREAPER, 1)");
    }
    say("tool {}: {}", ::getpid(),
        subreaper ? "a subreaper (prctl PR_SET_CHILD_SUBREAPER): it adopts orphans below it"
                  : "not a subreaper: orphans go to the nearest subreaper above, or to init");
    auto said = ipc::make_pipe();    // grandchild -> parent: "I have printed my ppid"
    auto gone = ipc::make_pipe();    // tool -> grandchild: "your parent has exited"
    auto report = ipc::make_pipe();  // grandchild -> tool: its pid and its new ppid
    const pid_t parent = spawn("the parent", [&] {
        gone.write.reset();
        const pid_t child = ::fork();
        if (child == -1) child_die("fork");
        if (child == 0) ::_exit(grandchild(said, gone, report));
        ipc::explain("fork() = {} (the grandchild)", child);
        report.write.reset();
        await_ready(said, child);
        say("parent {}: exiting without waiting for my child {}", ::getpid(), child);
        return 0;
    });
    said = {};             // the parent and the grandchild talk alone: EOF if one dies
    report.write.reset();  // only the grandchild writes: end of file once it has exited
    reap(parent);          // exit() hands its children on before the parent becomes reapable
    say("tool {}: its parent {} has exited (reaped with waitpid)", ::getpid(), parent);
    if (!ipc::write_all(gone.write.get(), "!", 1)) ipc::die("write(gone pipe)");
    pid_t ids[2] = {0, 0};  // the orphan, its adopter
    if (ipc::read_full(report.read.get(), ids, sizeof ids) != sizeof ids)
        ipc::fail("the grandchild did not report its new ppid");
    const auto [orphan, adopter] = ids;
    if (adopter == ::getpid()) {
        say("adopted by pid {} ({}): this tool, the nearest subreaper", adopter, name_of(adopter));
        say("tool {}: reaped its adopted grandchild, status {}", adopter, reap(orphan));
        return 0;
    }
    say("adopted by pid {} ({}): {}", adopter, name_of(adopter),
        adopter == 1 ? "the init of this pid namespace"
                     : "a subreaper among our ancestors, nearer than pid 1");
    char byte = 0;  // wait for the orphan to exit: its end of the report pipe closes
    if (ipc::read_some(report.read.get(), &byte, 1) != 0) ipc::fail("unexpected report");
    wait_for_adopter_to_reap(orphan, adopter);
    return 0;
}

// ---- procinfo fork ----------------------------------------------------------------------------

// The physical frame behind a virtual address: bits 0-54 of its page's 64-bit entry in
// /proc/self/pagemap (bit 63: present). Without CAP_SYS_ADMIN the kernel shows frame 0.
std::optional<std::uint64_t> frame_of(const void* address) {
    const ipc::unique_fd fd{::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)};
    if (!fd) ipc::die("open(/proc/self/pagemap)");
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto offset = reinterpret_cast<std::uintptr_t>(address) / page * 8;
    std::uint64_t entry = 0;
    if (::pread(fd.get(), &entry, sizeof entry, static_cast<off_t>(offset)) != sizeof entry)
        ipc::die("pread(/proc/self/pagemap)");
    ipc::explain("pread(/proc/self/pagemap, 8, offset {:#x}) = entry {:#x}", offset, entry);
    const std::uint64_t frame = entry & ((std::uint64_t{1} << 55) - 1);
    if ((entry >> 63) == 0 || frame == 0) return std::nullopt;
    return frame;
}

std::string where(const int* value) {
    const auto frame = frame_of(value);
    return fmt::format("at {}{}", fmt::ptr(value),
                       frame ? fmt::format(", physical frame {:#x}", *frame) : "");
}

int run_fork() {
    // One private page. Writing it gives it a frame of its own (untouched, it maps the shared
    // zero page); fork() then lets parent and child share that frame, read-only, until one of
    // them writes to it and the kernel copies the page for the writer: copy on write.
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    void* memory =
        ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) ipc::die("mmap");
    ipc::explain("mmap({}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) = {}", page, memory);
    auto* value = static_cast<int*>(memory);
    *value = 42;
    say("parent {}: value = {} {}", ::getpid(), *value, where(value));
    const pid_t pid = spawn("the child writes the value", [&] {
        say("child  {}: value = {} {} (the same address)", ::getpid(), *value, where(value));
        *value = 99;
        say("child  {}: value = {} {} (after its write)", ::getpid(), *value, where(value));
        return 0;
    });
    reap(pid);
    say("parent {}: value = {} {}: the child's write went to its own copy", ::getpid(), *value,
        where(value));
    if (frame_of(value))
        say("Same address; the child's frame was the parent's until its write, then a copy's.");
    else
        say("(Physical frames are hidden: /proc/self/pagemap shows them only to CAP_SYS_ADMIN.)");
    if (::munmap(memory, page) == -1) ipc::die("munmap");
    return 0;
}

// A pid is a positive decimal number that fits pid_t; anything else is a usage error.
pid_t parse_pid(const std::string& text) {
    pid_t pid = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
    if (ec != std::errc{} || end != text.data() + text.size() || pid <= 0)
        ipc::usage_error(fmt::format("PID must be a positive number, not '{}'", text));
    return pid;
}

// A child whose parent ignores SIGCHLD never becomes a zombie. The disposition is inherited
// through exec, so a demo that shows zombies first puts back the default.
void default_sigchld() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    if (::sigaction(SIGCHLD, &dfl, nullptr) == -1) ipc::die("sigaction(SIGCHLD, SIG_DFL)");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Show a process as the kernel keeps it (the notes' 进程 section): pid, parent, process "
        "group, session, uid, state and command name, read from /proc/PID/stat and "
        "/proc/PID/status. The subcommands show a process's life: its states, an orphan's "
        "adoption, fork's copy-on-write.",
        "procinfo"};
    ipc::setup(app, "procinfo --ancestors $$\n  procinfo states -x\n  procinfo orphan --subreaper");
    std::string pid_text;
    bool ancestors = false, json = false, subreaper = false;
    auto* pid_option =
        app.add_option("PID", pid_text, "The process to show (default: this procinfo itself)")
            ->type_name("NUMBER");
    app.add_flag("--ancestors", ancestors, "Show the chain of parents, up to pid 1");
    app.add_flag("--json", json, "Print JSON for scripts: an object (an array with --ancestors)");
    app.fallthrough();  // options of procinfo itself after a subcommand: procinfo states -x
    auto* states = app.add_subcommand(
        "states", "Children in the states R, S, D, T and Z, read back from /proc; why X is not");
    auto* orphan = app.add_subcommand("orphan", "A grandchild outlives its parent: who adopts it?");
    orphan->add_flag("--subreaper", subreaper,
                     "Make this tool a subreaper first (prctl PR_SET_CHILD_SUBREAPER): it adopts");
    auto* fork = app.add_subcommand(
        "fork", "Copy-on-write: the child writes a variable; the parent's value stays its own");
    app.require_subcommand(0, 1);
    ipc::parse(app, argc, argv);

    const bool demo = states->parsed() || orphan->parsed() || fork->parsed();
    const bool has_pid = pid_option->count() > 0;
    if (demo && (has_pid || ancestors || json))
        ipc::usage_error("PID, --ancestors and --json go with the process views, not a subcommand");
    if (demo) default_sigchld();
    if (states->parsed()) return run_states();
    if (orphan->parsed()) return run_orphan(subreaper);
    if (fork->parsed()) return run_fork();

    const pid_t pid = has_pid ? parse_pid(pid_text) : ::getpid();
    if (!has_pid) ipc::explain("getpid() = {}", pid);
    if (ancestors)
        show_ancestors(pid, json);
    else
        show_process(pid, json);
    return 0;
}
