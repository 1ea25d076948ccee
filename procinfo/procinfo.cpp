// procinfo: a process as the kernel keeps it: its ids, its parent, its state.
// Usage: procinfo [--json] [--ancestors] [-x] [PID]    procinfo states [-x]
//        procinfo orphan [--subreaper] [-x]            procinfo fork [-x]
// Demonstrates "进程的标识" of the notes' "进程" section (multiprocess-ipc.md): pid, ppid, group,
// session, uid and state, read from /proc/PID/stat and /proc/PID/status through one descriptor of
// /proc/PID. The demos of a process's life are one file each: states.cpp, orphan.cpp, fork.cpp.
// Try: procinfo --ancestors $$; procinfo states -x
// See also: ps -o pid,ppid,pgid,sid,stat,comm -p PID; sigsend -0 PID (does a process exist?)
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/output.hpp"
#include "ipc/proc.hpp"
#include "ipc/units.hpp"
#include "procinfo.hpp"

namespace procinfo {
namespace {

// ---- Reading /proc --------------------------------------------------------------------------

// What /proc/PID/stat and /proc/PID/status say about a process.
struct proc_info {
    ipc::proc_stat stat;  // pid, comm, state, ppid, pgrp, session
    uid_t uid = 0;
    uid_t euid = 0;
};

// Opens the directory /proc/PID, or returns an empty fd if there is no such process. The
// descriptor names this process, not its number: once it is reaped, files opened through it
// fail, even if the number has been given to a new process meanwhile.
ipc::unique_fd open_proc(pid_t pid) {
    const std::string path = fmt::format("/proc/{}", pid);
    ipc::unique_fd dir{::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!dir && errno != ENOENT && errno != ESRCH) ipc::die(fmt::format("open({})", path));
    ipc::explain("open(\"{}\", O_DIRECTORY) = {}", path, dir.get());
    return dir;
}

// /proc/PID/NAME, opened with openat() on that directory; nullopt once the process is reaped
// (ENOENT, or ESRCH while it is being removed).
std::optional<std::string> read_file(const ipc::unique_fd& dir, pid_t pid, std::string_view name) {
    auto text = ipc::read_proc_at(dir.get(), name);
    const int err = errno;
    if (!text && err != ENOENT && err != ESRCH) ipc::die(fmt::format("/proc/{}/{}", pid, name));
    ipc::explain("openat({}, \"{}\") + read() = {}", dir.get(), name,
                 text ? fmt::format("{} bytes", text->size()) : ipc::errno_name(err));
    return text;
}

// The real and effective uid: "Uid:\treal\teffective\tsaved\tfilesystem" in /proc/PID/status.
std::optional<std::pair<uid_t, uid_t>> uids_of(std::string_view status) {
    auto text = ipc::status_field(status, "Uid").value_or("");
    uid_t ids[2] = {};
    for (uid_t& id : ids) {
        text.remove_prefix(std::min(text.find_first_not_of(" \t"), text.size()));
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
        if (ec != std::errc{}) return std::nullopt;
        text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    }
    return std::pair{ids[0], ids[1]};
}

// Everything about one process, or nullopt if there is no such process. A process that is
// reaped between our first and last read is a clear failure, never a half-filled answer.
std::optional<proc_info> read_process(pid_t pid) {
    const ipc::unique_fd dir = open_proc(pid);
    if (!dir) return std::nullopt;
    const auto stat = read_file(dir, pid, "stat");
    const auto status = stat ? read_file(dir, pid, "status") : std::nullopt;
    if (!stat || !status) ipc::fail("process {} exited while being read", pid);
    const auto parsed = ipc::parse_stat(*stat);
    const auto uids = uids_of(*status);
    if (!parsed || !uids) ipc::fail("cannot parse /proc/{}/stat or /proc/{}/status", pid, pid);
    return proc_info{*parsed, uids->first, uids->second};
}

std::string printable(std::string_view text) {
    std::string out;
    for (const char c : text) out += (c >= 0 && c < ' ') || c == 0x7f ? '?' : c;
    return out;
}

}  // namespace

std::optional<char> state_of(pid_t pid) {
    const auto text = ipc::read_proc(pid, "stat");
    const auto parsed = text ? ipc::parse_stat(*text) : std::nullopt;
    return parsed ? std::optional<char>(parsed->state) : std::nullopt;
}

std::string name_of(pid_t pid) {
    const auto text = ipc::read_proc(pid, "stat");
    const auto parsed = text ? ipc::parse_stat(*text) : std::nullopt;
    return parsed ? printable(parsed->comm) : "?";
}

namespace {

// ---- The views --------------------------------------------------------------------------------

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += fmt::format("\\{}", c);
        } else if (c >= 0 && c < ' ') {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
            out += c;
        }
    }
    return out + '"';
}

std::string to_json(const proc_info& p) {
    const ipc::proc_stat& s = p.stat;
    return fmt::format(
        R"({{"pid": {}, "ppid": {}, "pgrp": {}, "session": {}, "uid": {}, "euid": {}, )"
        R"("state": "{}", "state_meaning": "{}", "comm": {}}})",
        s.pid, s.ppid, s.pgrp, s.session, p.uid, p.euid, s.state, ipc::state_meaning(s.state),
        json_string(s.comm));
}

[[noreturn]] void no_such_process(pid_t pid) { ipc::fail("no such process: {}", pid); }

void show_process(pid_t pid, bool json) {
    const auto p = read_process(pid);
    if (!p) no_such_process(pid);
    if (json) return ipc::say("{}", to_json(*p));
    const ipc::proc_stat& s = p->stat;
    ipc::print(fmt::format(
        "pid      {}\nppid     {} ({})\npgrp     {}\nsession  {}\nuid      {} (euid {})\n"
        "state    {} ({})\ncommand  {}\n",
        s.pid, s.ppid, s.ppid == 0 ? "no parent in this pid namespace" : name_of(s.ppid), s.pgrp,
        s.session, p->uid, p->euid, s.state, ipc::state_meaning(s.state), printable(s.comm)));
}

// The chain of parents from pid up to the process whose parent is 0: pid 1, the init of this
// pid namespace (or kthreadd, pid 2, for a kernel thread).
void show_ancestors(pid_t pid, bool json) {
    std::vector<proc_info> chain;
    for (;;) {
        const auto p = read_process(pid);
        if (!p && chain.empty()) no_such_process(pid);
        if (!p) ipc::fail("process {} exited while being read", pid);
        chain.push_back(*p);
        if (p->stat.ppid == 0 || chain.size() > 4096)
            break;  // the bound: parents read at two moments
        pid = p->stat.ppid;
    }
    std::string out;
    if (json) {
        for (const auto& p : chain) out += (out.empty() ? "[" : ", ") + to_json(p);
        return ipc::say("{}]", out);
    }
    out = fmt::format("{:>7} {:>7}  S  COMMAND\n", "PID", "PPID");
    for (const auto& p : chain) {
        out += fmt::format("{:>7} {:>7}  {}  {}\n", p.stat.pid, p.stat.ppid, p.stat.state,
                           printable(p.stat.comm));
    }
    ipc::print(out);
}

// ---- The command line -------------------------------------------------------------------------

enum class view { process, ancestors, states, orphan, fork };

struct options {
    view what = view::process;
    pid_t pid = 0;  // 0: procinfo itself
    bool json = false;
    bool subreaper = false;  // orphan: make the tool a subreaper first
};

// A pid is a positive decimal number that fits pid_t; anything else is a usage error.
pid_t parse_pid(const std::string& text) {
    const auto pid = ipc::parse_decimal<pid_t>(text);
    if (!pid || *pid <= 0)
        ipc::usage_error(fmt::format("PID must be a positive number, not '{}'", text));
    return *pid;
}

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Show a process as the kernel keeps it (the notes' 进程 section): pid, parent, process "
        "group, session, uid, state and command name, read from /proc/PID/stat and "
        "/proc/PID/status. The subcommands show a process's life: its states, an orphan's "
        "adoption, fork's copy-on-write.",
        "procinfo"};
    ipc::setup(app, "procinfo --ancestors $$\n  procinfo states -x\n  procinfo orphan --subreaper");
    options opt;
    std::string pid_text;
    bool ancestors = false;
    auto* pid_option =
        app.add_option("PID", pid_text, "The process to show (default: this procinfo itself)")
            ->type_name("NUMBER");
    app.add_flag("--ancestors", ancestors, "Show the chain of parents, up to pid 1");
    app.add_flag("--json", opt.json,
                 "Print JSON for scripts: an object (an array with --ancestors)");
    app.fallthrough();  // options of procinfo itself after a subcommand: procinfo states -x
    auto* states = app.add_subcommand(
        "states", "Children in the states R, S, D, T and Z, read back from /proc; why X is not");
    auto* orphan = app.add_subcommand("orphan", "A grandchild outlives its parent: who adopts it?");
    orphan->add_flag("--subreaper", opt.subreaper,
                     "Make this tool a subreaper first (prctl PR_SET_CHILD_SUBREAPER): it adopts");
    auto* fork = app.add_subcommand(
        "fork", "Copy-on-write: the child writes a variable; the parent's value stays its own");
    app.require_subcommand(0, 1);
    ipc::parse(app, argc, argv);

    const bool has_pid = pid_option->count() > 0;
    opt.what = states->parsed()   ? view::states
               : orphan->parsed() ? view::orphan
               : fork->parsed()   ? view::fork
               : ancestors        ? view::ancestors
                                  : view::process;
    const bool demo =
        opt.what == view::states || opt.what == view::orphan || opt.what == view::fork;
    if (demo && (has_pid || ancestors || opt.json))
        ipc::usage_error("PID, --ancestors and --json go with the process views, not a subcommand");
    if (has_pid) opt.pid = parse_pid(pid_text);
    return opt;
}

// A child whose parent ignores SIGCHLD never becomes a zombie. The disposition is inherited
// through exec, so a demo that shows zombies first puts back the default.
void default_sigchld() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    if (::sigaction(SIGCHLD, &dfl, nullptr) == -1) ipc::die("sigaction(SIGCHLD, SIG_DFL)");
}

}  // namespace
}  // namespace procinfo

int main(int argc, char** argv) try {
    using namespace procinfo;
    ipc::start();
    options opt = parse_command_line(argc, argv);
    if (opt.what == view::process || opt.what == view::ancestors) {
        if (opt.pid == 0) {
            opt.pid = ::getpid();
            ipc::explain("getpid() = {}", opt.pid);
        }
        if (opt.what == view::ancestors) {
            show_ancestors(opt.pid, opt.json);
        } else {
            show_process(opt.pid, opt.json);
        }
        return 0;
    }
    default_sigchld();
    if (opt.what == view::states) return run_states();
    if (opt.what == view::orphan) return run_orphan(opt.subreaper);
    return run_fork();
} catch (...) {
    return ipc::internal_error();
}
