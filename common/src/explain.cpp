#include "ipc/explain.hpp"

#include <unistd.h>

#include <cerrno>
#include <string>

#include "ipc/io.hpp"

namespace ipc::detail {

void explain_line(std::string_view text) noexcept {
    const int saved = errno;  // narration must not change what the caller is about to check
    try {
        const std::string line = fmt::format("[{}] {}\n", ::getpid(), text);
        (void)write_all(STDERR_FILENO, line.data(), line.size());
    } catch (...) {
        // Out of memory while narrating: the narration is lost, the work goes on.
    }
    errno = saved;
}

}  // namespace ipc::detail
