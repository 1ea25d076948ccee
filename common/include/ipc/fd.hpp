// ipc/fd.hpp: an owned file descriptor, and the pairs pipe(2) and socketpair(2) make.
#pragma once

#include <utility>

namespace ipc {

// unique_fd owns one file descriptor and closes it when it goes out of scope.
// It is move-only; get() lends the number, release() gives up ownership.
// close(2) is never retried on EINTR: on Linux the descriptor is gone either way,
// and retrying could close a descriptor another thread has just been given.
class unique_fd {
  public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        reset(other.release());
        return *this;
    }
    ~unique_fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    // Gives up ownership: the caller must close the returned descriptor.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    // Closes the owned descriptor (if any) and takes fd. Keeps errno as it was.
    void reset(int fd = -1) noexcept;

  private:
    int fd_ = -1;  // -1 when empty
};

// Both ends of a pipe(2): bytes written to `write` come out of `read`.
struct pipe_fds {
    unique_fd read;
    unique_fd write;
};

// Both ends of a socketpair(2): each end reads what the other writes.
struct socket_pair {
    unique_fd first;
    unique_fd second;
};

// pipe2(2) with flags (O_CLOEXEC by default). Dies with "pipe2: ..." on failure.
[[nodiscard]] pipe_fds make_pipe(int flags = 02000000 /* O_CLOEXEC */);

// socketpair(AF_UNIX, type | SOCK_CLOEXEC). Dies with "socketpair: ..." on failure.
[[nodiscard]] socket_pair make_socketpair(int type = 1 /* SOCK_STREAM */);

}  // namespace ipc
