// pipes/demo_sandbox.hpp: a demo's private temp dir and child processes, cleaned up however the
// demo ends. fifodemo's housekeeping, kept out of the lesson: it teaches nothing about FIFOs.
//
//   const std::string dir = ipc::sandbox::make_dir("fifo-demo");  // $TMPDIR/fifo-demo.XXXXXX
//   ipc::sandbox::adopt(dir + "/demo.fifo");           // a file in it, removed before the dir
//   const pid_t pid = ipc::sandbox::spawn([] { return 0; });  // fork; the child runs it, _exit
//   const int status = ipc::sandbox::wait(pid);        // waitpid
//   ipc::sandbox::clean_up();                          // also at exit, and on a signal
//
// At exit (a return from main, or ipc::die's exit) and on SIGINT, SIGTERM or SIGHUP, every child
// that has not been waited for is killed (SIGKILL) and reaped, and the file and the dir are
// removed. A signal then prints "tool: demo stopped by SIGINT; removed DIR" and ends the program
// by its default action, so that a shell sees 128 + n. One sandbox per program.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

namespace ipc::sandbox {

// mkdtemp(3) under $TMPDIR (or /tmp): a new directory only we may enter, named PREFIX.XXXXXX.
// Installs the clean-up first (the handlers take SIGINT even if it was ignored, as a shell
// does for `cmd &`: the demo must never be left half done).
[[nodiscard]] std::string make_dir(std::string_view prefix);

// The one file in the dir that the clean-up removes; its path must not be longer than the dir's
// plus 32 bytes.
void adopt(const std::string& path);

// fork(2): the child gets the default action of the ending signals back, runs fn, and
// _exit()s with its result (1 if it throws). At most two children at once.
pid_t spawn(const std::function<int()>& fn);

// waitpid(2), EINTR retried; the raw status. The child is no longer the clean-up's to kill.
[[nodiscard]] int wait(pid_t pid);

// Kills and reaps the children, removes the file and the dir. Async-signal-safe.
void clean_up() noexcept;

// The dir, "" before make_dir.
[[nodiscard]] const char* dir() noexcept;

}  // namespace ipc::sandbox
