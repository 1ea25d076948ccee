// ipcbench: every measurement in ipckit, in one tool, so that the lessons stay lessons.
// Usage: ipcbench echo --connect ADDR [--network tcp|tcp4|tcp6|unix] [--conns 50]
//                      [--requests 200000] [--size 32] [--threads 1] [--duration D] [--json]
//        ipcbench echo --connect ADDR --bulk 1G [--size 4K] [--json]
//        ipcbench pipe [--size 1G] [--chunk 64K] [--wait adaptive|block|spin|all]
//                      [--cpu any|same|split] [--json]
//        ipcbench matrix [--size 64] [--count 100000] [--cpu same|split|none]
//                        [--only LIST] [--json]
// Measures what the notes claim about costs ("Socket": a server under load; "管道": a copy
// through the kernel against a hand-off in memory; 进程的切换和调度: one CPU or two; the opening
// map of IPC: every mechanism side by side, and "shared memory is the fastest").
// Try: ipcbench pipe --size 256M --wait all; ipcbench matrix --size 8 --count 20000
// See also: echoserver and echoloop (the servers echo loads), pipecmp (the pipes pipe compares),
// msgqueue and shm (mechanisms the matrix measures)
#include <CLI/CLI.hpp>

#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/output.hpp"
#include "measure.hpp"

namespace {

// One subcommand per mode; each mode file declares its own options (bench/echo.cpp,
// bench/pipe.cpp, bench/matrix.cpp). A new mode is one more line here.
std::vector<ipcbench::mode> parse_command_line(CLI::App& app, int argc, char** argv) {
    ipc::setup(app, "ipcbench echo --connect 127.0.0.1:8000 --threads 2");
    app.require_subcommand(0, 1);  // none is refused below, with the list of modes
    std::vector<ipcbench::mode> modes{
        ipcbench::add_echo_mode(app),
        ipcbench::add_pipe_mode(app),
        ipcbench::add_matrix_mode(app),
    };
    ipc::parse(app, argc, argv);
    return modes;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    CLI::App app{
        "Measure IPC on this machine: a load on an echo server (requests/s, latency p50/p99/max, "
        "or a verified stream), a pipe against an in-memory pipe and memcpy, and the matrix: "
        "the same ping-pong over every mechanism (pipes, sockets, message queues, shared "
        "memory, eventfd, signals), with a verdict on \"shared memory is the fastest\". Every "
        "figure comes with the CPU time each side spent; the bytes that arrive are always checked. "
        "A table for people, --json for scripts, progress on stderr when it is a terminal.",
        "ipcbench"};
    for (const ipcbench::mode& m : parse_command_line(app, argc, argv)) {
        if (*m.command) return m.run();
    }
    ipc::usage_error("a subcommand is required: echo, pipe or matrix");
} catch (...) {
    return ipc::internal_error();
}
