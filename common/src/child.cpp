#include "ipc/child.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ipc/error.hpp"
#include "ipc/explain.hpp"

namespace ipc::child {
namespace {

iovec part(const char* text) noexcept { return {const_cast<char*>(text), std::strlen(text)}; }

// One writev(2): the parts of a line arrive together, never split by another process's line.
template <int N>
void write_line(const iovec (&parts)[N]) noexcept {
    ssize_t n;
    do {
        n = ::writev(STDERR_FILENO, parts, N);
    } while (n == -1 && errno == EINTR);
}

}  // namespace

char* format_decimal(char* out, unsigned long n) noexcept {
    char digits[24];
    int count = 0;
    do {
        digits[count++] = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    while (count > 0) *out++ = digits[--count];
    *out = '\0';
    return out;
}

void explain(const char* text) noexcept {
    if (!explaining()) return;
    char pid[24] = "[";
    char* end = format_decimal(pid + 1, static_cast<unsigned long>(::getpid()));
    end[0] = ']';
    end[1] = ' ';
    end[2] = '\0';
    write_line({part(pid), part(text), part("\n")});
}

void die(const char* call, int code) noexcept {
    const int err = errno;
    // strerrordesc_np and strerrorname_np return static strings: no locale, no allocation.
    const char* desc = ::strerrordesc_np(err);
    const char* name = ::strerrorname_np(err);
    const char* tool = program_invocation_short_name;
    write_line({part(message_prefix()), part(tool), part(": "), part(call), part(": "),
                part(desc != nullptr ? desc : "Unknown error"), part(" ("),
                part(name != nullptr ? name : "E?"), part(")\n")});
    ::_exit(code);
}

}  // namespace ipc::child
