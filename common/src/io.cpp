#include "ipc/io.hpp"

#include <unistd.h>

#include <cerrno>

namespace ipc {

bool write_all(int fd, const void* data, std::size_t size) noexcept {
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, p, size);
        if (n == -1) {
            if (errno == EINTR) continue;
            return false;
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

ssize_t read_some(int fd, void* buf, std::size_t size) noexcept {
    ssize_t n;
    do {
        n = ::read(fd, buf, size);
    } while (n == -1 && errno == EINTR);
    return n;
}

ssize_t read_full(int fd, void* buf, std::size_t size) noexcept {
    auto* p = static_cast<char*>(buf);
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = read_some(fd, p + done, size - done);
        if (n == -1) return -1;
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    return static_cast<ssize_t>(done);
}

}  // namespace ipc
