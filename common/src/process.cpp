#include "ipc/process.hpp"

#include <fmt/format.h>
#include <sys/wait.h>

#include <cerrno>

#include "ipc/error.hpp"
#include "ipc/signals.hpp"

namespace ipc {

int wait_child(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) == -1) {
        if (errno != EINTR) die(fmt::format("waitpid({})", pid));
    }
    return status;
}

int shell_status(int raw_status) noexcept {
    if (WIFSIGNALED(raw_status)) return 128 + WTERMSIG(raw_status);
    return WEXITSTATUS(raw_status);
}

std::string describe_status(int raw_status) {
    if (WIFEXITED(raw_status)) return fmt::format("exited {}", WEXITSTATUS(raw_status));
    if (WIFSTOPPED(raw_status)) return "stopped by " + signal_name(WSTOPSIG(raw_status));
    if (WIFCONTINUED(raw_status)) return "continued";
    const int sig = WTERMSIG(raw_status);
    return fmt::format("killed by {} ({}{})", signal_name(sig), 128 + sig,
                       WCOREDUMP(raw_status) ? ", core dumped" : "");
}

}  // namespace ipc
