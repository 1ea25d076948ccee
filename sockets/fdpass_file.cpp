// fdpass send / receive: an open file passed to an unrelated process over a unix socket.
// Usage: fdpass send --socket PATH --file FILE [--offset N] | fdpass receive --socket PATH
// Demonstrates what a descriptor passed with SCM_RIGHTS is ("Socket", multiprocess-ipc.md):
// the same open file (fstat: one inode), one offset both processes move, and the sender named
// by SCM_CREDENTIALS. Part of fdpass (fdpass.cpp: sendmsg and recvmsg).
// Try: fdpass send -s /tmp/fd.sock -f /etc/hostname &  fdpass receive -s /tmp/fd.sock
// See also: fdpass serve-listener (a listener instead of a file), procinfo fork (inheriting)
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "fdpass.hpp"
#include "ipc/error.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"

namespace fdpass {

namespace {

std::string describe_file(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) == -1) ipc::die(fmt::format("fstat({})", fd));
    const char* type = S_ISREG(st.st_mode)    ? "regular file"
                       : S_ISFIFO(st.st_mode) ? "FIFO"
                       : S_ISSOCK(st.st_mode) ? "socket"
                       : S_ISCHR(st.st_mode)  ? "character device"
                                              : "other";
    return fmt::format("{}, device {}:{}, inode {}, {} bytes", type, major(st.st_dev),
                       minor(st.st_dev), st.st_ino, st.st_size);
}

// Where /proc/self/fd/N points: the file's name as the kernel knows it.
std::string fd_path(int fd) {
    std::array<char, 4096> buf{};
    const std::string link = fmt::format("/proc/self/fd/{}", fd);
    const ssize_t n = ::readlink(link.c_str(), buf.data(), buf.size() - 1);
    return n == -1 ? "?" : std::string(buf.data(), static_cast<std::size_t>(n));
}

// The file offset: it lives in the open file description, which both descriptors share.
std::string offset_of(int fd) {
    const off_t at = ::lseek(fd, 0, SEEK_CUR);
    return at == -1 ? fmt::format("none ({})", ipc::errno_name(errno)) : std::to_string(at);
}

// Copies fd to stdout until end of file, as cat does; returns the byte count.
std::uint64_t copy_to_stdout(int fd) {
    std::array<char, 65536> buf{};
    std::uint64_t total = 0;
    char last = '\n';
    for (;;) {
        const ssize_t n = ipc::read_some(fd, buf.data(), buf.size());
        if (n == -1) ipc::die(fmt::format("read({})", fd));
        if (n == 0) break;
        ipc::print({buf.data(), static_cast<std::size_t>(n)});
        total += static_cast<std::uint64_t>(n);
        last = buf[static_cast<std::size_t>(n) - 1];
    }
    if (last != '\n') ipc::print("\n");  // so that the next line starts on a line of its own
    return total;
}

std::string who(const std::optional<ucred>& c) {
    return c ? fmt::format("pid {} (uid {}, gid {})", c->pid, c->uid, c->gid) : "(no credentials)";
}

}  // namespace

// The holder's side: one process asks on `listener`, gets `file`, reads, and answers.
int pass_file(int listener, int stop, int file, const options& opt) {
    if (wait_readable(listener, stop, ipc::never) == woke::stopped)
        return 128 + read_stop_signal(stop);
    ucred peer{};
    const ipc::unique_fd conn = accept_peer(listener, peer);
    if (!conn) return 1;
    const std::string before = offset_of(file);
    ipc::say("{} connected (SO_PEERCRED): passing it fd {} (SCM_RIGHTS)", who(peer), file);
    if (const int err = send_descriptor(conn.get(), file, fmt::format("file {}\n", opt.file));
        err != 0) {
        ipc::warn_en(err, "sendmsg(SCM_RIGHTS)");
        return 1;
    }
    woke why{};
    const auto answer = receive_message(conn.get(), stop, ipc::never, &why);
    if (why == woke::stopped) return 128 + read_stop_signal(stop);
    if (!answer) {
        ipc::complain("pid {} closed the connection without answering", peer.pid);
        return 1;
    }
    ipc::say(
        "pid {} answered {:?}; our offset was {} and is now {}: its read moved ours, as "
        "both descriptors are one open file description",
        peer.pid, answer->line, before, offset_of(file));
    return 0;
}

// The receiver's side: connect, take the descriptor, show what it is, read it, answer.
int receive_file(const options& opt) {
    const ipc::unique_fd sock = connect_unix(opt.socket_path);
    const auto m = receive_message(sock.get(), -1, ipc::never);
    if (!m)
        ipc::fail("{}: the sender closed the connection before passing a file", opt.socket_path);
    if (m->fds.size() != 1 || !m->line.starts_with("file ")) {
        ipc::fail("{}: expected one file and \"file PATH\", got {} descriptor(s) and {:?}{}",
                  opt.socket_path, m->fds.size(), m->line,
                  m->line.starts_with("listener ") ? " (take-listener takes a listener)" : "");
    }
    const int fd = m->fds.front().get();
    ipc::say("received fd {} from {} (SCM_CREDENTIALS), with {:?}", fd, who(m->sender), m->line);
    ipc::say("fd {} is {}: {}", fd, fd_path(fd), describe_file(fd));
    const std::string start = offset_of(fd);
    const std::uint64_t copied = copy_to_stdout(fd);
    ipc::say("read {} bytes from offset {} (where the sender left it); the offset is now {}",
             copied, start, offset_of(fd));
    if (const int err = send_line(sock.get(), fmt::format("read {} bytes\n", copied)); err != 0)
        ipc::warn_en(err, "write(answer)");  // the sender has gone: nothing is lost for us
    return 0;
}

int send_file(const options& opt) {
    int fd;
    do {  // a FIFO's open waits for a writer; Ctrl-C still ends it: there is no socket file yet
        fd = ::open(opt.file.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    if (fd == -1) ipc::die(fmt::format("open({})", opt.file));
    const ipc::unique_fd file{fd};
    if (opt.offset != 0 && ::lseek(fd, static_cast<off_t>(opt.offset), SEEK_SET) == -1)
        ipc::die(fmt::format("lseek({}, {})", opt.file, opt.offset));
    ipc::say("opened {} as fd {}: {}; offset {}", opt.file, fd, describe_file(fd), offset_of(fd));
    const ipc::unique_fd stop = stop_signals();  // before the socket file: SIGTERM is read now
    // A static, not a local: std::exit (ipc::die, a failed write) runs the destructors of
    // statics, not of locals, and this one removes the socket file.
    static ipc::socket_file socket_file;
    const ipc::unique_fd listener = listen_unix(opt.socket_path, socket_file);
    ipc::say("waiting on {} for a process to pass it to (try: fdpass receive --socket {})",
             opt.socket_path, opt.socket_path);
    return pass_file(listener.get(), stop.get(), fd, opt);
}

}  // namespace fdpass
