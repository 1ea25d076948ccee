// What graceful (signals/graceful.cpp) needs that teaches no IPC: see graceful_support.hpp.
#include "graceful_support.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/io.hpp"
#include "ipc/net.hpp"
#include "ipc/units.hpp"

namespace graceful {

// socket(2), bind(2), listen(2) on HOST:PORT ("[::1]:0" too; port 0 lets the kernel choose).
ipc::unique_fd open_listener(const std::string& spec) {
    int last_errno = 0;
    for (const ipc::sock_addr& a :
         ipc::resolve(*ipc::find_network("tcp"), "--listen", spec, ipc::resolve_for::listen)) {
        ipc::unique_fd fd{::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0)};
        if (!fd) ipc::die("socket");
        const int on = 1;  // a restart after a full stop must not wait for TIME_WAIT to pass
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1)
            ipc::die("setsockopt(SO_REUSEADDR)");
        if (::bind(fd.get(), a.get(), a.len) == -1) {
            last_errno = errno;
            continue;
        }
        if (::listen(fd.get(), SOMAXCONN) == -1) ipc::die("listen");
        ipc::explain("socket() = {}; bind({}); listen({}, SOMAXCONN)", fd.get(), spec, fd.get());
        return fd;
    }
    ipc::die_en(last_errno, fmt::format("bind({})", spec));
}

namespace {

// The pid file names whoever serves: written to a temporary name and rename(2)d over the old
// one, so a reader sees the old pid or the new one, never a half-written file. False, after
// saying which call failed, if it could not be put in place (no temporary file is left).
bool put_pidfile(const std::string& path) {
    const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
    ipc::unique_fd fd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (!fd) {
        ipc::warn(fmt::format("open({})", tmp));
        return false;
    }
    const auto failed = [&tmp](const std::string& call) {
        ipc::warn(call);  // keeps errno
        (void)::unlink(tmp.c_str());
        return false;
    };
    const std::string text = fmt::format("{}\n", ::getpid());
    if (!ipc::write_all(fd.get(), text.data(), text.size()))
        return failed(fmt::format("write({})", tmp));
    if (::close(fd.release()) == -1) return failed(fmt::format("close({})", tmp));  // NFS: late
    if (::rename(tmp.c_str(), path.c_str()) == -1)
        return failed(fmt::format("rename({}, {})", tmp, path));
    ipc::explain("rename({}, {}): the pid file names {}", tmp, path, ::getpid());
    return true;
}

}  // namespace

void write_pidfile(const std::string& path) {
    if (!path.empty() && !put_pidfile(path)) std::exit(ipc::exit_failure);
}

void reclaim_pidfile(const std::string& path) {
    if (!path.empty()) (void)put_pidfile(path);  // reported; serving goes on
}

// On the final exit only: a successor has already written its own pid there.
void remove_pidfile_if_ours(const std::string& path) {
    if (path.empty()) return;
    ipc::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (!fd) return;
    char buf[32] = {};
    const ssize_t n = ipc::read_some(fd.get(), buf, sizeof buf - 1);
    if (n <= 0 || std::atol(buf) != ::getpid()) return;
    if (::unlink(path.c_str()) == -1) return ipc::warn(fmt::format("unlink({})", path));
    ipc::explain("unlink({}): it named this process", path);
}

namespace {

// GET /env: the variables of the handover still in our environment ("none": all removed).
http::reply env_page() {
    std::string text;  // nothing changes the environment once the threads run
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view entry{*e};
        if (entry.starts_with("LISTEN_") || entry.starts_with("IPCKIT_GRACEFUL_"))
            text += fmt::format("{}\n", entry);
    }
    return {200, text.empty() ? "none\n" : text};
}

// GET /sleep?ms=N: the answer, held N ms (0..60000) by the server: a request in flight.
http::reply sleep_page(const http::request& req, int pid, int generation) {
    constexpr long max_sleep_ms = 60'000;
    const std::string_view text = http::query_value(req.query, "ms").value_or("");
    const auto ms = ipc::parse_decimal<long>(text);
    if (!ms || *ms < 0 || *ms > max_sleep_ms)
        return {400, fmt::format("ms must be 0..{}\n", max_sleep_ms)};
    return {200, fmt::format("slept {} ms in pid {}, generation {}\n", *ms, pid, generation),
            std::chrono::milliseconds(*ms)};
}

}  // namespace

http::handler pages(int pid, int generation) {
    const char* hook = std::getenv("IPCKIT_GRACEFUL_FAIL");
    const bool throw_hook = generation > 1 && hook != nullptr && std::string_view{hook} == "throw";
    return [=](const http::request& req) -> http::reply {
        if (req.path == "/") {
            if (throw_hook) throw std::runtime_error("IPCKIT_GRACEFUL_FAIL=throw: a test hook");
            return {200, fmt::format("hello from pid {}, generation {}\n", pid, generation)};
        }
        if (req.path == "/health") {
            return {200, fmt::format("ok: pid {}, generation {}, {} requests in flight\n", pid,
                                     generation, req.in_flight)};
        }
        if (req.path == "/env") return env_page();
        if (req.path == "/sleep") return sleep_page(req, pid, generation);
        return {404, "not found\n"};
    };
}

std::optional<long> env_number(const char* name) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < 0) ipc::fail("{}={}: not a number", name, text);
    return value;
}

void fail_if_asked(int generation) {
    const char* env = std::getenv("IPCKIT_GRACEFUL_FAIL");
    const std::string hook = env != nullptr ? env : "";
    if (generation == 1 || hook.empty() || hook == "0" || hook == "throw") return;
    ipc::complain("IPCKIT_GRACEFUL_FAIL={}: failing on purpose (a test hook)", hook);
    if (hook == "hang") {
        for (;;) ::pause();  // never ready: the old process kills us at --restart-timeout
    }
    std::exit(ipc::exit_failure);
}

}  // namespace graceful
