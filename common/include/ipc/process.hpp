// ipc/process.hpp: waiting for a child, and its status as a shell reports it.
#pragma once

#include <sys/types.h>

#include <string>

namespace ipc {

// waitpid(pid, &status, 0), retried on EINTR. Returns the raw status (for WIFEXITED and
// friends); dies with "waitpid(PID): ..." if the call fails (ECHILD: not our child).
[[nodiscard]] int wait_child(pid_t pid);

// A raw wait status as a shell shows it in $?: the exit code, or 128 + the signal's number.
[[nodiscard]] int shell_status(int raw_status) noexcept;

// The one wording of a wait status every tool uses: "exited 1", "killed by SIGPIPE (141)",
// "killed by SIGSEGV (139, core dumped)", "stopped by SIGTSTP", "continued".
[[nodiscard]] std::string describe_status(int raw_status);

}  // namespace ipc
