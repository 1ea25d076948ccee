#include "ipc/net.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>

#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/units.hpp"

namespace ipc {

const network* find_network(std::string_view name) noexcept {
    const auto it = std::find_if(networks.begin(), networks.end(),
                                 [&](const network& n) { return n.name == name; });
    return it == networks.end() ? nullptr : &*it;
}

std::string network_names(int type) {
    std::string out;
    for (const network& n : networks) {
        if (type != 0 && n.type != type) continue;
        if (!out.empty()) out += '|';
        out += n.name;
    }
    return out;
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

sock_addr parse_unix_addr(std::string_view path) {
    sock_addr a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
    un->sun_family = AF_UNIX;
    if (path.empty()) throw std::invalid_argument("empty socket path");
    if (path.size() >= sizeof(un->sun_path)) {
        throw std::invalid_argument(fmt::format("socket path of {} bytes; at most {} fit",
                                                path.size(), sizeof(un->sun_path) - 1));
    }
    path.copy(un->sun_path, path.size());
    const bool abstract = path[0] == '@';
    if (abstract) un->sun_path[0] = '\0';  // no file: the name lives in the kernel only
    a.len =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
    return a;
}

sock_addr unix_addr(std::string_view option, std::string_view path) {
    try {
        return parse_unix_addr(path);
    } catch (const std::invalid_argument& e) {
        usage_error(fmt::format("{}: {}", option, e.what()));
    }
}

host_port parse_host_port(std::string_view text, port_zero zero) {
    host_port out;
    if (text.starts_with('[')) {
        const std::size_t close = text.find("]:");
        if (close == std::string_view::npos) {
            throw std::invalid_argument(fmt::format("{}: expected [IPv6]:port", text));
        }
        out.host = text.substr(1, close - 1);
        out.port = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            throw std::invalid_argument(
                fmt::format("{}: missing port (host:port, e.g. 127.0.0.1:8000)", text));
        }
        out.host = text.substr(0, colon);
        out.port = text.substr(colon + 1);
        if (out.host.find(':') != std::string::npos) {
            throw std::invalid_argument(fmt::format("{}: an IPv6 address needs brackets: [{}]:{}",
                                                    text, out.host, out.port));
        }
    }
    const unsigned low = zero == port_zero::allowed ? 0 : 1;
    const auto number = parse_decimal<unsigned>(out.port);
    if (!number || *number < low || *number > 65535) {
        throw std::invalid_argument(
            fmt::format("{}: port '{}' is not a number from {} to 65535", text, out.port, low));
    }
    out.number = static_cast<std::uint16_t>(*number);
    return out;
}

host_port split_host_port(std::string_view option, std::string_view text, port_zero zero) {
    try {
        return parse_host_port(text, zero);
    } catch (const std::invalid_argument& e) {
        usage_error(fmt::format("{} {}", option, e.what()));
    }
}

std::optional<sock_addr> parse_numeric_addr(const network& net, std::string_view text,
                                            resolve_for purpose) {
    if (net.family == AF_UNIX) return parse_unix_addr(text);
    const host_port hp = parse_host_port(
        text, purpose == resolve_for::listen ? port_zero::allowed : port_zero::refused);
    sock_addr a;
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    const auto v4 = [&] {
        in->sin_family = AF_INET;
        in->sin_port = htons(hp.number);
        a.len = sizeof(sockaddr_in);
        return a;
    };
    const auto v6 = [&] {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(hp.number);
        a.len = sizeof(sockaddr_in6);
        return a;
    };
    const auto wrong_family = [&](std::string_view family) {
        return std::invalid_argument(fmt::format("{}: {} is not an {} address, as network {} needs",
                                                 text, hp.host, family, net.name));
    };
    if (hp.host.empty() && purpose == resolve_for::dial) return std::nullopt;  // getaddrinfo
    if (hp.host.empty()) {  // every address: "::" takes IPv4 too unless the network is *6
        if (net.family == AF_INET) {
            in->sin_addr.s_addr = htonl(INADDR_ANY);
            return v4();
        }
        in6->sin6_addr = in6addr_any;
        return v6();
    }
    if (::inet_pton(AF_INET, hp.host.c_str(), &in->sin_addr) == 1) {
        if (net.family == AF_INET6) throw wrong_family("IPv6");
        return v4();
    }
    if (::inet_pton(AF_INET6, hp.host.c_str(), &in6->sin6_addr) == 1) {
        if (net.family == AF_INET) throw wrong_family("IPv4");
        return v6();
    }
    return std::nullopt;
}

std::vector<sock_addr> resolve(const network& net, std::string_view option, std::string_view text,
                               resolve_for purpose) {
    if (net.family == AF_UNIX) return {unix_addr(option, text)};
    host_port hp;
    try {
        if (auto a = parse_numeric_addr(net, text, purpose)) return {*a};
        hp = parse_host_port(
            text, purpose == resolve_for::listen ? port_zero::allowed : port_zero::refused);
    } catch (const std::invalid_argument& e) {
        usage_error(fmt::format("{} {}", option, e.what()));
    }

    addrinfo hints{};
    hints.ai_family = net.family;
    hints.ai_socktype = net.type;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    // An empty host when dialing is this machine: getaddrinfo(NULL) without AI_PASSIVE.
    const int rc =
        ::getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), hp.port.c_str(), &hints, &found);
    if (rc == EAI_SYSTEM) die(fmt::format("getaddrinfo({})", hp.host));
    if (rc != 0) fail(fmt::format("lookup {}: {}", hp.host, ::gai_strerror(rc)));
    const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list{found, ::freeaddrinfo};
    std::vector<sock_addr> out;
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        sock_addr a;
        std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
        a.len = ai->ai_addrlen;
        out.push_back(a);
    }
    return out;
}

void socket_file::adopt(std::string path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == -1) die(fmt::format("lstat({})", path));
    path_ = std::move(path);
    dev_ = st.st_dev;
    ino_ = st.st_ino;
}

void socket_file::remove() noexcept {
    if (path_.empty()) return;
    const int saved = errno;
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
        if (::unlink(path_.c_str()) == 0) {
            explain("unlink({})", path_);
        } else {
            warn(fmt::format("unlink({})", path_));
        }
    }
    path_.clear();
    errno = saved;
}

void clear_stale_socket(const std::string& path, const sock_addr& addr, int type) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == -1) {
        if (errno == ENOENT) return;
        die(fmt::format("lstat({})", path));
    }
    if (!S_ISSOCK(st.st_mode)) fail("{} exists and is not a socket: not replacing it", path);
    // Non-blocking, so that a live server with a full backlog cannot make us wait.
    const unique_fd probe(::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!probe) die("socket(AF_UNIX)");
    if (::connect(probe.get(), addr.get(), addr.len) == 0 || errno == EAGAIN) {
        die_en(EADDRINUSE, fmt::format("bind({}): a server is listening there", path));
    }
    if (errno != ECONNREFUSED) die(fmt::format("connect({}) to probe an existing socket", path));
    explain("connect({}) = -1 ECONNREFUSED: a stale socket file", path);
    if (::unlink(path.c_str()) == -1) die(fmt::format("unlink({})", path));
    warn_en(ECONNREFUSED, fmt::format("replacing the stale socket {}: connect({})", path, path));
}

}  // namespace ipc
