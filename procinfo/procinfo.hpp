// procinfo/procinfo.hpp: what procinfo's files share. procinfo.cpp shows one process (ids,
// parent, state) and runs the command line; each demo of a process's life is a file of its own:
// states.cpp (`procinfo states`), orphan.cpp (`procinfo orphan`), fork.cpp (`procinfo fork`).
// children.cpp holds the few steps every demo repeats: fork a child that dies with the tool,
// wait until it is ready, reap it.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <fmt/format.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "ipc/fd.hpp"
#include "ipc/io.hpp"

namespace procinfo {

// The demos. Each returns the exit status for main.
[[nodiscard]] int run_states();
[[nodiscard]] int run_orphan(bool subreaper);
[[nodiscard]] int run_fork();

// ---- procinfo.cpp: looking at a process in /proc --------------------------------------------

// The state letter of /proc/PID/stat (R, S, D, T, Z...); nullopt once the process is reaped.
[[nodiscard]] std::optional<char> state_of(pid_t pid);

// The command name with control bytes shown as '?', so that a name cannot break our lines;
// "?" once the process is gone.
[[nodiscard]] std::string name_of(pid_t pid);

// ---- children.cpp: the children of the demos ------------------------------------------------

// fork(): the child runs body() and _exit()s with what it returns (1 if it throws: nothing
// unwinds out of a child). The child asks for SIGKILL when the tool dies
// (PR_SET_PDEATHSIG), so that no busy or blocked child outlives an interrupted demo.
[[nodiscard]] pid_t fork_child(std::string_view what, const std::function<int()>& body);

// A failed call in a forked child: report it and _exit(1), so nothing unwinds or flushes twice.
[[noreturn]] void child_die(std::string_view call);

// ipc::say for a forked child: one line, one write(2); a failed write ends the child with
// _exit(1), where ipc::say would call exit() and run the parent's atexit handlers a second time.
template <typename... Args>
void child_say(fmt::format_string<Args...> format, Args&&... args) {
    const std::string line = fmt::format(format, std::forward<Args>(args)...) + '\n';
    if (!ipc::write_all(STDOUT_FILENO, line.data(), line.size())) child_die("write(stdout)");
}

// The child's half of a readiness pipe: one byte says "I have got this far".
void send_ready(const ipc::unique_fd& fd);

// The parent's half. It closes its own write end first, so that a child that dies early gives
// end of file instead of a wait forever.
void await_ready(ipc::pipe_fds& ready, pid_t pid);

// kill(pid, sig), checked and narrated.
void send_signal(pid_t pid, int sig);

// waitpid(pid, &status, flags), retried on EINTR and narrated; returns the raw status.
// `flag_names` is how -x spells the flags: ", WUNTRACED".
int wait_for(pid_t pid, int flags = 0, std::string_view flag_names = "");

// Reaps a child; returns its status as a shell shows it: the exit code, or 128+signal.
int reap(pid_t pid);

}  // namespace procinfo
