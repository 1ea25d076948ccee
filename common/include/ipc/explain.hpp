// ipc/explain.hpp: the -x/--explain narration every tool shares.
//
//   ipc::explain("fork() = {}", pid);   prints "[1234] fork() = 1235" on stderr
//
// Each line is one write(2) to stderr, prefixed with the calling process's pid, so the lines
// of a parent and its children interleave whole and say who made the call. It formats into
// a std::string, so it allocates: do not call it in a signal handler, nor in a child forked
// from a threaded process before exec (format the line before fork() instead).
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <string_view>

namespace ipc {

namespace detail {
// Set once from the command line before any thread starts; read everywhere.
inline std::atomic<bool> explain_on{false};
void explain_line(std::string_view text) noexcept;
}  // namespace detail

inline void set_explain(bool on) noexcept {
    detail::explain_on.store(on, std::memory_order_relaxed);
}
[[nodiscard]] inline bool explaining() noexcept {
    return detail::explain_on.load(std::memory_order_relaxed);
}

template <typename... Args>
void explain(fmt::format_string<Args...> format, Args&&... args) {
    if (!explaining()) return;
    detail::explain_line(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ipc
