// ipc/error.hpp: the one way every tool reports a failure.
//
//   die("pipe")            prints "tool: pipe: Too many open files (EMFILE)" and exits 1
//   die_en(err, "pthread_create")  the same for APIs that return the error number
//   usage_error("...")     prints "tool: ..." and "Run with --help for more.", exits 2
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <string>
#include <string_view>
#include <utility>

namespace ipc {

inline constexpr int exit_failure = 1;  // a system call or the work failed
inline constexpr int exit_usage = 2;    // the command line was wrong

// The program's short name, as it prefixes every message ("procinfo").
[[nodiscard]] std::string_view tool_name() noexcept;

// "EPIPE" for EPIPE; "E?" + number for a value glibc has no name for.
[[nodiscard]] std::string errno_name(int err);

// "call: strerror (ENAME)", e.g. "kill(99999, SIGTERM): No such process (ESRCH)".
[[nodiscard]] std::string error_text(int err, std::string_view call);

// Prints "tool: call: strerror (ENAME)" on stderr for errno / err and exits 1.
[[noreturn]] void die(std::string_view call);
[[noreturn]] void die_en(int err, std::string_view call);

// Prints "tool: message" on stderr and exits 1: a failure that is not a system call's.
[[noreturn]] void fail(std::string_view message);

// Prints "tool: message" on stderr and returns, for a tool that goes on. Keeps errno.
void complain(std::string_view message);

// Prints "tool: call: strerror (ENAME)" and returns, for a tool that goes on. Keeps errno.
void warn(std::string_view call);
void warn_en(int err, std::string_view call);

// The same two with the message formatted: ipc::complain("{} connections refused", n).
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
    fail(std::string_view(fmt::format(format, std::forward<Args>(args)...)));
}
template <typename... Args>
void complain(fmt::format_string<Args...> format, Args&&... args) {
    complain(std::string_view(fmt::format(format, std::forward<Args>(args)...)));
}

// Prints "tool: message" and "Run with --help for more." on stderr and exits 2.
[[noreturn]] void usage_error(std::string_view message);

// ipc::start() calls it. Afterwards die, fail and usage_error end a process forked from this one
// with _exit, so that a child never runs the tool's exit handlers and static destructors.
void this_is_the_tool() noexcept;

// A line redrawn in place on a terminal (ipcbench's progress line) is half a line: a message
// written after it would continue it. While `on`, every message above (and child::die's, and
// the last-resort ones of output.hpp) starts with "\r\x1b[K", back to the start of the line and
// erase it. The line's owner turns it on when it draws the line, off when it erases it.
namespace detail {
inline std::atomic<bool> erase_line_on{false};  // lock-free: child::die reads it after fork
}  // namespace detail
inline void erase_line_before_messages(bool on) noexcept {
    detail::erase_line_on.store(on, std::memory_order_relaxed);
}
// "\r\x1b[K" while a line is to be erased, else "": what a message starts with.
[[nodiscard]] inline const char* message_prefix() noexcept {
    return detail::erase_line_on.load(std::memory_order_relaxed) ? "\r\x1b[K" : "";
}

}  // namespace ipc
