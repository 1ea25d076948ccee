// procinfo/children.cpp: the steps every demo of procinfo (states.cpp, orphan.cpp, fork.cpp)
// repeats, from "进程的衍生" (multiprocess-ipc.md): fork() a child that dies with the tool (prctl
// PR_SET_PDEATHSIG), a one-byte pipe that says the child got where it should, kill(), and
// waitpid() to reap it, EINTR retried. Not a tool of its own: see procinfo.hpp for the map.
// Try: procinfo states -x   (each fork, pipe, kill and waitpid narrated)
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <csignal>

#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/process.hpp"
#include "ipc/signals.hpp"
#include "procinfo.hpp"

namespace procinfo {

pid_t fork_child(std::string_view what, const std::function<int()>& body) {
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == -1) ipc::die("fork");
    if (pid == 0) {
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) child_die("prctl(PR_SET_PDEATHSIG)");
        if (::getppid() != parent) ::_exit(ipc::exit_failure);  // the parent died before prctl
        ipc::explain("prctl(PR_SET_PDEATHSIG, SIGKILL)");
        int code = ipc::exit_failure;  // also if body() throws: nothing unwinds out of a child
        try {
            code = body();
        } catch (...) {}
        ::_exit(code);
    }
    ipc::explain("fork() = {} ({})", pid, what);
    return pid;
}

void child_die(std::string_view call) {
    ipc::warn(call);
    ::_exit(ipc::exit_failure);
}

void send_ready(const ipc::unique_fd& fd) {
    if (!ipc::write_all(fd.get(), "!", 1)) child_die("write(ready pipe)");
}

void await_ready(ipc::pipe_fds& ready, pid_t pid) {
    ready.write.reset();  // ours: only the child's copy may keep the pipe open
    char byte = 0;
    const ssize_t n = ipc::read_some(ready.read.get(), &byte, 1);
    if (n == -1) ipc::die("read(ready pipe)");
    if (n == 0) ipc::fail("child {} ended before it was ready", pid);
    ipc::explain("read(ready pipe) = 1: child {} is ready", pid);
}

void send_signal(pid_t pid, int sig) {
    if (::kill(pid, sig) == -1) ipc::die(fmt::format("kill({}, {})", pid, ipc::signal_name(sig)));
    ipc::explain("kill({}, {})", pid, ipc::signal_name(sig));
}

int wait_for(pid_t pid, int flags, std::string_view flag_names) {
    int status = 0;
    pid_t got = 0;
    while ((got = ::waitpid(pid, &status, flags)) == -1 && errno == EINTR) {}
    if (got == -1) ipc::die(fmt::format("waitpid({}{})", pid, flag_names));
    ipc::explain("waitpid({}{}) = {}, status {:#x} ({})", pid, flag_names, got, status,
                 ipc::describe_status(status));
    return status;
}

int reap(pid_t pid) { return ipc::shell_status(wait_for(pid)); }

}  // namespace procinfo
