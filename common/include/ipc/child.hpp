// ipc/child.hpp: what a child may call between fork() and execve() when its parent has threads.
//
// After fork() in a threaded process the child has one thread, and any lock another thread held
// (malloc's, stdio's, fmt's) stays locked forever: until exec, only async-signal-safe calls
// (signal-safety(7)) may run. These write with write(2) alone and never allocate; the rest of
// common/ (explain, die, fmt) must not be called there. A single-threaded parent's child may use
// anything, as TLPI's programs do.
#pragma once

namespace ipc::child {

// Writes n in decimal and a NUL at `out`; returns a pointer to the NUL. `out` needs 21 bytes.
char* format_decimal(char* out, unsigned long n) noexcept;

// "[pid] text" on stderr when --explain is on.
void explain(const char* text) noexcept;

// "tool: call: strerror (ENAME)" for errno on stderr, then _exit(code): 127 by default, what a
// shell returns when it cannot run a command.
[[noreturn]] void die(const char* call, int code = 127) noexcept;

}  // namespace ipc::child
