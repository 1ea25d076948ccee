// pipes/demo_sandbox.cpp: the clean-up of a demo (demo_sandbox.hpp).
#include "demo_sandbox.hpp"

#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/process.hpp"

namespace ipc::sandbox {
namespace {

constexpr std::array<int, 3> ending_signals{SIGINT, SIGTERM, SIGHUP};

// What the clean-up undoes, where its signal handler can reach it: the paths are written before
// the files exist (mkdtemp fills in the dir's name in place), the pids with the signals held.
struct leftovers {
    std::array<char, PATH_MAX> dir{};
    std::array<char, PATH_MAX + 32> file{};
    std::array<volatile sig_atomic_t, 2> children{};  // pids; 0: a free slot
};
leftovers left;

// SIGINT, SIGTERM, SIGHUP: clean up, say so, and end by the signal's default action.
void on_ending_signal(int sig) {
    clean_up();
    const char* name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP";
    for (const char* part :
         {static_cast<const char*>(program_invocation_short_name), ": demo stopped by ", name,
          "; removed ", static_cast<const char*>(left.dir.data()), "\n"}) {
        (void)write_all(STDERR_FILENO, part, std::strlen(part));
    }
    (void)::signal(sig, SIG_DFL);
    (void)::raise(sig);  // pending until this handler returns; then it ends the process
}

void install() {
    struct sigaction sa {};
    sa.sa_handler = on_ending_signal;
    ::sigemptyset(&sa.sa_mask);
    for (const int sig : ending_signals) ::sigaddset(&sa.sa_mask, sig);  // one clean-up at a time
    for (const int sig : ending_signals) {
        if (::sigaction(sig, &sa, nullptr) == -1) die("sigaction");
    }
    if (std::atexit([] { clean_up(); }) != 0) fail("atexit: cannot register the clean-up");
}

// Holds the ending signals back while it lives: the handler never sees a child forked but not
// yet recorded, or reaped but still recorded.
class signals_held {
  public:
    signals_held() {
        sigset_t set;
        ::sigemptyset(&set);
        for (const int sig : ending_signals) ::sigaddset(&set, sig);
        if (::sigprocmask(SIG_BLOCK, &set, &old_) == -1) die("sigprocmask(SIG_BLOCK)");
    }
    signals_held(const signals_held&) = delete;
    signals_held& operator=(const signals_held&) = delete;
    ~signals_held() { release(); }
    void release() const noexcept { (void)::sigprocmask(SIG_SETMASK, &old_, nullptr); }

  private:
    sigset_t old_{};
};

}  // namespace

std::string make_dir(std::string_view prefix) {
    install();
    const char* tmp = std::getenv("TMPDIR");
    const std::string dir =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + std::string(prefix);
    if (dir.size() + 8 > left.dir.size()) fail("{}: too long for a path", dir);
    (dir + ".XXXXXX").copy(left.dir.data(), dir.size() + 7);
    if (::mkdtemp(left.dir.data()) == nullptr) {
        const int err = errno;
        left.dir[0] = '\0';
        die_en(err, "mkdtemp(" + dir + ".XXXXXX)");
    }
    return left.dir.data();
}

void adopt(const std::string& path) {
    if (path.size() >= left.file.size()) fail("{}: too long for a path", path);
    path.copy(left.file.data(), path.size());
}

pid_t spawn(const std::function<int()>& fn) {
    const signals_held held;
    const pid_t pid = ::fork();
    if (pid == -1) die("fork");
    if (pid == 0) {
        for (const int sig : ending_signals) (void)::signal(sig, SIG_DFL);
        held.release();
        int rc = 1;
        try {
            rc = fn();
        } catch (...) {}
        ::_exit(rc);
    }
    for (std::size_t i = 0;; ++i) {
        if (i == left.children.size()) fail("spawn: more than {} children", i);
        if (left.children[i] != 0) continue;
        left.children[i] = pid;
        break;
    }
    explain("fork() = {}", pid);
    return pid;
}

int wait(pid_t pid) {
    const signals_held held;
    const int status = wait_child(pid);
    for (auto& slot : left.children) {
        if (slot == pid) slot = 0;
    }
    explain("waitpid({}) = status {:#x}", pid, status);
    return status;
}

void clean_up() noexcept {
    const int saved = errno;
    for (auto& slot : left.children) {
        const pid_t pid = slot;
        if (pid <= 0) continue;
        (void)::kill(pid, SIGKILL);
        while (::waitpid(pid, nullptr, 0) == -1 && errno == EINTR) {}
        slot = 0;
    }
    if (left.file[0] != '\0') (void)::unlink(left.file.data());
    if (left.dir[0] != '\0') (void)::rmdir(left.dir.data());
    errno = saved;
}

const char* dir() noexcept { return left.dir.data(); }

}  // namespace ipc::sandbox
