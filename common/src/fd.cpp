#include "ipc/fd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "ipc/error.hpp"
#include "ipc/explain.hpp"

static_assert(O_CLOEXEC == 02000000, "the default of make_pipe() spells O_CLOEXEC");
static_assert(SOCK_STREAM == 1, "the default of make_socketpair() spells SOCK_STREAM");

namespace ipc {

void unique_fd::reset(int fd) noexcept {
    if (fd_ >= 0) {
        const int saved = errno;
        ::close(fd_);  // not retried on EINTR: the descriptor is released either way
        errno = saved;
    }
    fd_ = fd;
}

pipe_fds make_pipe(int flags) {
    int fds[2];
    if (::pipe2(fds, flags) == -1) die("pipe2");
    explain("pipe() = [{}, {}]", fds[0], fds[1]);
    return {unique_fd(fds[0]), unique_fd(fds[1])};
}

socket_pair make_socketpair(int type) {
    int fds[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == -1) die("socketpair");
    explain("socketpair(AF_UNIX) = [{}, {}]", fds[0], fds[1]);
    return {unique_fd(fds[0]), unique_fd(fds[1])};
}

}  // namespace ipc
