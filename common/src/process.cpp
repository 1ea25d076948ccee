#include "ipc/process.hpp"

#include <fmt/format.h>
#include <sys/wait.h>

#include <cerrno>

#include "ipc/error.hpp"

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

}  // namespace ipc
