#include "ipc/net.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>

#include "ipc/error.hpp"

namespace ipc {

const network* find_network(std::string_view name) noexcept {
    const auto it = std::find_if(networks.begin(), networks.end(),
                                 [&](const network& n) { return n.name == name; });
    return it == networks.end() ? nullptr : &*it;
}

std::string addr_string(const sock_addr& a) {
    char host[INET6_ADDRSTRLEN] = "";
    if (a.len == 0) return "unnamed";  // recvfrom(2) from an unbound unixgram socket
    if (a.family() == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&a.storage);
        ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return fmt::format("{}:{}", host, ntohs(in->sin_port));
    }
    if (a.family() == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return fmt::format("[{}]:{}", host, ntohs(in6->sin6_port));
    }
    if (a.family() == AF_UNIX) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(&a.storage);
        const std::size_t header = offsetof(sockaddr_un, sun_path);
        if (a.len <= header) return "unnamed";
        const std::size_t n = a.len - header;
        if (un->sun_path[0] == '\0') {  // abstract: a NUL, then the name (not NUL-terminated)
            std::string name = "@";
            name.append(un->sun_path + 1, n - 1);
            return name;
        }
        return {un->sun_path, ::strnlen(un->sun_path, n)};
    }
    return fmt::format("(family {})", a.family());
}

sock_addr local_addr(int fd) {
    sock_addr a;
    if (::getsockname(fd, a.get(), &a.len) == -1) die(fmt::format("getsockname({})", fd));
    return a;
}

sock_addr unix_addr(std::string_view option, std::string_view path) {
    sock_addr a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
    un->sun_family = AF_UNIX;
    if (path.empty()) usage_error(fmt::format("{}: empty socket path", option));
    if (path.size() >= sizeof(un->sun_path)) {
        usage_error(fmt::format("{}: socket path of {} bytes; at most {} fit", option, path.size(),
                                sizeof(un->sun_path) - 1));
    }
    path.copy(un->sun_path, path.size());
    const bool abstract = path[0] == '@';
    if (abstract) un->sun_path[0] = '\0';  // no file: the name lives in the kernel only
    a.len =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
    return a;
}

host_port split_host_port(std::string_view option, std::string_view text, port_zero zero) {
    host_port out;
    if (text.starts_with('[')) {
        const std::size_t close = text.find("]:");
        if (close == std::string_view::npos) {
            usage_error(fmt::format("{} {}: expected [IPv6]:port", option, text));
        }
        out.host = text.substr(1, close - 1);
        out.port = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            usage_error(
                fmt::format("{} {}: missing port (host:port, e.g. 127.0.0.1:8000)", option, text));
        }
        out.host = text.substr(0, colon);
        out.port = text.substr(colon + 1);
        if (out.host.find(':') != std::string::npos) {
            usage_error(fmt::format("{} {}: an IPv6 address needs brackets: [{}]:{}", option, text,
                                    out.host, out.port));
        }
    }
    const unsigned low = zero == port_zero::allowed ? 0 : 1;
    unsigned number = 0;
    const char* first = out.port.data();
    const char* last = first + out.port.size();
    const auto [end, ec] = std::from_chars(first, last, number);
    if (out.port.empty() || ec != std::errc{} || end != last || number < low || number > 65535) {
        usage_error(fmt::format("{} {}: port '{}' is not a number from {} to 65535", option, text,
                                out.port, low));
    }
    out.number = static_cast<std::uint16_t>(number);
    return out;
}

}  // namespace ipc
