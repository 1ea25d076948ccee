#include "ipc/output.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>

#include "ipc/error.hpp"
#include "ipc/io.hpp"

namespace ipc {
namespace {

// "tool: " + the parts + "\n" on stderr in one writev(2), without allocating: safe when memory
// has run out, and from std::terminate.
void report(const char* a, const char* b = "", const char* c = "") noexcept {
    const std::string_view name = tool_name();
    char colon[] = ": ";
    char newline[] = "\n";
    const char* erase = message_prefix();
    iovec parts[] = {{const_cast<char*>(erase), std::strlen(erase)},
                     {const_cast<char*>(name.data()), name.size()},
                     {colon, 2},
                     {const_cast<char*>(a), std::strlen(a)},
                     {const_cast<char*>(b), std::strlen(b)},
                     {const_cast<char*>(c), std::strlen(c)},
                     {newline, 1}};
    ssize_t n;
    do {
        n = ::writev(STDERR_FILENO, parts, 7);
    } while (n == -1 && errno == EINTR);
}

// Reports the exception being handled (inside a catch block or std::terminate).
void report_current_exception() noexcept {
    try {
        throw;
    } catch (const std::bad_alloc&) {
        report("internal error: out of memory (std::bad_alloc)");
    } catch (const std::exception& e) {
        report("internal error: ", e.what());
    } catch (...) {
        report("internal error: an exception of unknown type");
    }
}

[[noreturn]] void on_terminate() noexcept {
    if (std::current_exception()) {
        report_current_exception();
    } else {
        report("internal error: std::terminate called");
    }
    ::_exit(exit_failure);
}

// " (EPIPE)": the suffix of the project's error form, from a static string (no allocation).
const char* errno_suffix(int err) noexcept {
    static thread_local char buf[32];
    const char* name = ::strerrorname_np(err);
    std::snprintf(buf, sizeof buf, " (%s)", name != nullptr ? name : "E?");
    return buf;
}

void on_sigpipe(int) {}  // nothing: the write that raised it returns EPIPE, and is reported

// fd 0, 1 or 2, if closed, becomes /dev/null opened for the direction it is not used in.
void open_if_closed(int fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) return;
    const int got = ::open("/dev/null", fd == STDIN_FILENO ? O_WRONLY : O_RDONLY);
    if (got == fd) return;  // open(2) returns the lowest free number: the one that was closed
    report("open(/dev/null) for a closed standard descriptor: ", std::strerror(errno),
           errno_suffix(errno));
    ::_exit(exit_failure);
}

// atexit: what coreutils' close_stdout does. stdio is flushed (the tools write with print(),
// but a library might use stdio), then close(2) reports what a file system kept for last (EIO,
// or ENOSPC on NFS).
void close_stdout() {
    int err = 0;
    if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
        err = errno != 0 ? errno : EIO;
    } else if (::close(STDOUT_FILENO) == -1 && errno != EBADF && errno != EINTR) {
        err = errno;
    }
    if (err == 0) return;
    report("write(stdout): ", std::strerror(err), errno_suffix(err));
    ::_exit(exit_failure);
}

}  // namespace

void start() {
    this_is_the_tool();  // its forked children end with _exit when they die or fail
    open_if_closed(STDIN_FILENO);
    open_if_closed(STDOUT_FILENO);
    open_if_closed(STDERR_FILENO);
    std::set_terminate(on_terminate);
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) == -1) die("sigaction(SIGPIPE)");
    if (old.sa_handler != SIG_IGN) {
        struct sigaction sa {};
        sa.sa_handler = on_sigpipe;
        sa.sa_flags = SA_RESTART;
        ::sigemptyset(&sa.sa_mask);
        if (::sigaction(SIGPIPE, &sa, nullptr) == -1) die("sigaction(SIGPIPE)");
    }
    if (std::atexit(close_stdout) != 0) fail("atexit: cannot register the check of stdout");
}

void print(std::string_view text) {
    if (!write_all(STDOUT_FILENO, text.data(), text.size())) die("write(stdout)");
}

int internal_error() noexcept {
    report_current_exception();
    return exit_failure;
}

}  // namespace ipc
