#include "ipc/proc.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>

#include "ipc/fd.hpp"
#include "ipc/io.hpp"

namespace ipc {
namespace {

std::optional<std::string> read_all(const unique_fd& fd) {
    if (!fd) return std::nullopt;
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = read_some(fd.get(), buf, sizeof buf);
        if (n == 0) return text;
        if (n == -1) return std::nullopt;  // ESRCH: the process exited after the open
        text.append(buf, static_cast<std::size_t>(n));
    }
}

// Takes the next blank-separated decimal number off the front of `text`.
template <typename Int>
bool take_number(std::string_view& text, Int& out) {
    const auto start = text.find_first_not_of(' ');
    if (start == std::string_view::npos) return false;
    text.remove_prefix(start);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    return ec == std::errc{};
}

// Skips `count` blank-separated fields.
bool skip_fields(std::string_view& text, int count) {
    for (int i = 0; i < count; ++i) {
        const auto start = text.find_first_not_of(' ');
        if (start == std::string_view::npos) return false;
        const auto end = text.find(' ', start);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end);
    }
    return true;
}

// openat(2), retried on EINTR: a /proc file never blocks its opener, but a signal (or strace's
// fault injection) can still interrupt the call.
unique_fd open_at(int dir, const std::string& path) {
    int fd;
    do {
        fd = ::openat(dir, path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    return unique_fd(fd);
}

}  // namespace

std::optional<std::string> read_proc(pid_t pid, std::string_view file) {
    const std::string path = pid == 0 ? "/proc/self/" + std::string(file)
                                      : "/proc/" + std::to_string(pid) + "/" + std::string(file);
    return read_all(open_at(AT_FDCWD, path));
}

std::optional<std::string> read_proc_at(int proc_dir, std::string_view file) {
    return read_all(open_at(proc_dir, std::string(file)));
}

std::optional<proc_stat> parse_stat(std::string_view text) {
    proc_stat st;
    if (!take_number(text, st.pid)) return std::nullopt;
    const auto open = text.find('(');
    const auto close = text.rfind(')');
    if (open != 1 || close == std::string_view::npos || close + 3 > text.size() ||
        text[close + 1] != ' ') {
        return std::nullopt;
    }
    st.comm = text.substr(open + 1, close - open - 1);
    st.state = text[close + 2];
    text.remove_prefix(close + 3);
    // After the state: ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime priority nice num_threads itrealvalue starttime.
    if (!take_number(text, st.ppid) || !take_number(text, st.pgrp) ||
        !take_number(text, st.session) || !skip_fields(text, 7) || !take_number(text, st.utime) ||
        !take_number(text, st.stime) || !skip_fields(text, 6) || !take_number(text, st.starttime)) {
        return std::nullopt;
    }
    return st;
}

std::optional<std::string_view> status_field(std::string_view status, std::string_view name) {
    std::size_t at = 0;
    while (at < status.size()) {
        const auto end = status.find('\n', at);
        std::string_view line = status.substr(at, end == std::string_view::npos ? end : end - at);
        at = end == std::string_view::npos ? status.size() : end + 1;
        if (line.size() <= name.size() || !line.starts_with(name) || line[name.size()] != ':') {
            continue;
        }
        line.remove_prefix(name.size() + 1);
        const auto value = line.find_first_not_of(" \t");
        return value == std::string_view::npos ? std::string_view{} : line.substr(value);
    }
    return std::nullopt;
}

std::string_view state_meaning(char state) noexcept {
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

}  // namespace ipc
