#include "ipc/error.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ipc/io.hpp"

namespace ipc {

std::string_view tool_name() noexcept { return program_invocation_short_name; }

std::string errno_name(int err) {
    if (const char* name = ::strerrorname_np(err)) return name;
    return fmt::format("E?{}", err);
}

std::string error_text(int err, std::string_view call) {
    return fmt::format("{}: {} ({})", call, ::strerror(err), errno_name(err));
}

namespace {
// The process that called ipc::start() (0: none did). A process forked from it that dies or
// fails must not run its exit handlers and static destructors: they would remove what the
// parent still uses (a socket file, a temp dir) and flush stdio buffers the child copied. So it
// ends with _exit, as every child does (CONVENTIONS); the tool's own process ends with exit().
pid_t tool_pid = 0;

[[noreturn]] void end(int status) {
    if (tool_pid != 0 && ::getpid() != tool_pid) ::_exit(status);
    std::exit(status);
}

// One write(2) per message, so that lines from several processes never mix.
void print_line(std::string_view text) {
    const std::string line = fmt::format("{}{}: {}\n", message_prefix(), tool_name(), text);
    (void)write_all(STDERR_FILENO, line.data(), line.size());
}
}  // namespace

void this_is_the_tool() noexcept { tool_pid = ::getpid(); }

void die(std::string_view call) { die_en(errno, call); }

void die_en(int err, std::string_view call) {
    print_line(error_text(err, call));
    end(exit_failure);
}

void fail(std::string_view message) {
    print_line(message);
    end(exit_failure);
}

void complain(std::string_view message) {
    const int saved = errno;
    print_line(message);
    errno = saved;
}

void warn(std::string_view call) { warn_en(errno, call); }

void warn_en(int err, std::string_view call) {
    const int saved = errno;
    print_line(error_text(err, call));
    errno = saved;
}

void usage_error(std::string_view message) {
    print_line(fmt::format("{}\nRun with --help for more.", message));
    end(exit_usage);
}

}  // namespace ipc
