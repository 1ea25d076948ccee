// ipc/output.hpp: how every tool starts, writes to stdout, and ends.
//
//   int main(int argc, char** argv) try {
//       ipc::start();  // fds 0-2 open, SIGPIPE made EPIPE, stdout checked at exit
//       const options opt = parse_command_line(argc, argv);
//       ipc::say("pid {} waiting", ::getpid());  // one line, one write(2), checked
//       return 0;
//   } catch (...) {
//       return ipc::internal_error();        // "tool: internal error: ...", exit 1, never abort
//   }
#pragma once

#include <fmt/format.h>

#include <string_view>
#include <utility>

namespace ipc {

// Call first in main. Afterwards:
// - fds 0, 1 and 2 are open. One that was closed is opened on /dev/null the wrong way round
//   (0 write-only, 1 and 2 read-only): it still fails as a closed descriptor would (EBADF), but
//   no descriptor the tool opens later can land on it and receive its output by accident.
// - a write to a pipe or socket whose reader has gone returns EPIPE instead of killing the tool
//   with SIGPIPE (a handler that does nothing, so a program the tool execs gets the default
//   back; a SIGPIPE already ignored stays ignored).
// - at exit, stdout is flushed and closed and checked (as coreutils' close_stdout does): a
//   failure prints "tool: write(stdout): ..." and the exit status becomes 1.
// - an exception that escapes a thread prints "tool: internal error: ..." and exits 1.
// - ipc::die, fail and usage_error in a process forked from this one end it with _exit.
void start();

// Writes `text` as it is to stdout with one write(2), finishing partial writes and retrying
// EINTR, so that lines from several threads or processes never mix. A failure (a full disk, a
// closed stdout, a reader that has gone) prints "tool: write(stdout): strerror (ENAME)" on
// stderr and exits 1.
void print(std::string_view text);

// One line on stdout: the formatted text and '\n', in one print().
template <typename... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
    fmt::memory_buffer line;
    fmt::format_to(std::back_inserter(line), format, std::forward<Args>(args)...);
    line.push_back('\n');
    print({line.data(), line.size()});
}

// For main's catch (...): prints "tool: internal error: WHAT" for the exception being handled
// ("out of memory" for std::bad_alloc) without allocating, and returns 1 for main to return.
[[nodiscard]] int internal_error() noexcept;

}  // namespace ipc
