// ipc/io.hpp: read(2) and write(2) with EINTR retried and partial writes finished.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace ipc {

// Writes all `size` bytes, looping over partial writes and retrying EINTR.
// Returns true, or false with errno set (EPIPE, EAGAIN on a non-blocking fd, ...).
[[nodiscard]] bool write_all(int fd, const void* data, std::size_t size) noexcept;

// One read(2), retried on EINTR: returns what read returns (0 at end of file, -1 with errno).
// Partial reads are the caller's business: a pipe or socket returns what it has.
[[nodiscard]] ssize_t read_some(int fd, void* buf, std::size_t size) noexcept;

// Reads until `size` bytes or end of file. Returns the count read, or -1 with errno.
[[nodiscard]] ssize_t read_full(int fd, void* buf, std::size_t size) noexcept;

}  // namespace ipc
