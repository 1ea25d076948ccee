// procinfo: who is this process? pid, parent, group, session, state, read from /proc.
// Usage: procinfo [PID]
// Demonstrates the notes' "进程" section (multiprocess-ipc.md): PID and PPID.
// Try: procinfo $$
// See also: sigsend -0 PID (does a process exist?)
// (Skeleton: the procinfo issue grows it.)
#include <unistd.h>

#include <fmt/format.h>

#include "ipc/cli.hpp"

int main(int argc, char** argv) {
    CLI::App app{"Show a process's ids and state, as the kernel keeps them", "procinfo"};
    ipc::setup(app, "procinfo $$");
    ipc::parse(app, argc, argv);
    fmt::print("pid {}\nppid {}\n", ::getpid(), ::getppid());
    return 0;
}
