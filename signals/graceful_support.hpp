// graceful_support.hpp: what graceful (signals/graceful.cpp) needs that teaches no IPC, or
// another tool's lesson: its pages, a fresh listening socket, the pid file, the test hook.
#pragma once

#include <optional>
#include <string>

#include "graceful_http.hpp"
#include "ipc/fd.hpp"

namespace graceful {

// GET / (who answered: "hello from pid N, generation G"), /sleep?ms=N (answered N ms later: a
// request in flight meanwhile), /health (how many are in flight), /env (the LISTEN_* and
// IPCKIT_GRACEFUL_* variables left in our environment). With IPCKIT_GRACEFUL_FAIL=throw, GET /
// throws in a copy started by a restart: a test of the last-resort handler (exit 1).
[[nodiscard]] http::handler pages(int pid, int generation);

// socket(2), bind(2), listen(2) on HOST:PORT ("[::1]:0" too; port 0 lets the kernel choose), as
// echoserver teaches: graceful's lesson is what happens to the socket afterwards.
[[nodiscard]] ipc::unique_fd open_listener(const std::string& spec);

// The pid file names whoever serves: written to a temporary name and rename(2)d over the old
// one, so a reader sees the old pid or the new one, never a half-written file. On the final
// exit it is removed, but only if it still names this process (a successor wrote its own).
void write_pidfile(const std::string& path);
// After a failed restart: the new copy may have written its own pid there before it failed, so
// the file names this process again. A failure is reported, and the service goes on.
void reclaim_pidfile(const std::string& path);
void remove_pidfile_if_ours(const std::string& path);

// The number in environment variable `name`: nullopt if unset or empty, exit 1 if not a number.
[[nodiscard]] std::optional<long> env_number(const char* name);

// The test hook IPCKIT_GRACEFUL_FAIL, in copies started by a restart (generation > 1): "exit"
// (or "1") exits 1 before serving, "hang" never says ready ("throw": see pages()).
void fail_if_asked(int generation);

}  // namespace graceful
