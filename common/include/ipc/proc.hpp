// ipc/proc.hpp: reading /proc/PID, where the process may exit between any two reads.
//
//   auto text = ipc::read_proc(pid, "stat");           // nullopt once the process is gone
//   auto st = text ? ipc::parse_stat(*text) : std::nullopt;
//   auto sigq = ipc::status_field(status_text, "SigQ");  // "5/96365"
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ipc {

// The whole of /proc/PID/FILE (PID 0: /proc/self/FILE), read with open(2) and read(2).
// nullopt, with errno set, when it cannot be opened or read: ENOENT or ESRCH once the process
// has exited (even between the open and the read), EACCES for another user's private file.
[[nodiscard]] std::optional<std::string> read_proc(pid_t pid, std::string_view file);

// The same, relative to an open /proc/PID directory (O_DIRECTORY). Such a descriptor names the
// process, not its number: once the process is reaped, reads through it fail with ENOENT or
// ESRCH, even if the number has meanwhile been given to a new process.
[[nodiscard]] std::optional<std::string> read_proc_at(int proc_dir, std::string_view file);

// The fields of /proc/PID/stat (proc(5)) the tools use. The command name may hold any byte,
// spaces and ')' included, so it runs to the LAST ')' of the line.
struct proc_stat {
    pid_t pid = 0;
    std::string comm;  // up to 15 bytes, as prctl(PR_SET_NAME) or the exec'd file name set it
    char state = '?';  // R S D T t Z X I ...
    pid_t ppid = 0;
    pid_t pgrp = 0;
    pid_t session = 0;
    std::uint64_t utime = 0;      // CPU time in user mode, in clock ticks (field 14)
    std::uint64_t stime = 0;      // in kernel mode (field 15)
    std::uint64_t starttime = 0;  // clock ticks after boot (field 22): with the pid, one process
};

// nullopt when `text` is not a stat line.
[[nodiscard]] std::optional<proc_stat> parse_stat(std::string_view text);

// The value of "Name:\tvalue" in /proc/PID/status, without the blanks before it; nullopt if
// there is no such line.
[[nodiscard]] std::optional<std::string_view> status_field(std::string_view status,
                                                           std::string_view name);

// What a state letter of proc(5) means: 'Z' -> "zombie: exited, not yet reaped".
[[nodiscard]] std::string_view state_meaning(char state) noexcept;

}  // namespace ipc
