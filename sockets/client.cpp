#include "client.hpp"

#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "ipc/error.hpp"
#include "ipc/io.hpp"

namespace echo {

std::optional<std::string> line_source::next() {
    if (!from_stdin_) {
        if (next_arg_ == args_.size()) return std::nullopt;
        return args_[next_arg_++];
    }
    for (;;) {
        if (const std::size_t nl = buf_.find('\n'); nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return line;
        }
        if (eof_) return buf_.empty() ? std::nullopt : std::optional(std::exchange(buf_, {}));
        std::array<char, 4096> chunk{};
        const ssize_t n = ipc::read_some(STDIN_FILENO, chunk.data(), chunk.size());
        if (n == -1) ipc::die("read(stdin)");
        eof_ = n == 0;
        buf_.append(chunk.data(), static_cast<std::size_t>(n));
    }
}

client_socket_path::client_socket_path() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        fmt::format("{}/echoclient.XXXXXX", tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
    if (tmpl.size() + std::strlen("/client.sock") >= sizeof(sockaddr_un::sun_path)) {
        ipc::fail("TMPDIR is too long for a socket path: {}", tmpl);
    }
    if (::mkdtemp(tmpl.data()) == nullptr) ipc::die(fmt::format("mkdtemp({})", tmpl));
    dir_ = tmpl;
    path_ = dir_ + "/client.sock";
}

client_socket_path::~client_socket_path() {
    ::unlink(path_.c_str());  // a socket file outlives its socket: remove it ourselves
    ::rmdir(dir_.c_str());
}

}  // namespace echo
