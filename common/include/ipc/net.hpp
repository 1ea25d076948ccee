// ipc/net.hpp: socket addresses as the notes' Go net package names and prints them.
//
//   const ipc::network* net = ipc::find_network("tcp6");     // the net.Listen/net.Dial table
//   auto hp = ipc::split_host_port("--listen", "[::1]:0", ipc::port_zero::allowed);
//   ipc::addr_string(ipc::local_addr(fd))                      // "127.0.0.1:43117", like
//   Addr.String()
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ipc {

// One row of the notes' table of network names: what socket(2) makes of "tcp", "unixgram", ...
struct network {
    std::string_view name;
    int family;  // AF_UNSPEC: IPv4 or IPv6, whichever the address is
    int type;    // SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET
    [[nodiscard]] bool stream() const { return type == SOCK_STREAM; }  // bytes, no boundaries
};

inline constexpr std::array<network, 9> networks{{
    {"tcp", AF_UNSPEC, SOCK_STREAM},
    {"tcp4", AF_INET, SOCK_STREAM},
    {"tcp6", AF_INET6, SOCK_STREAM},
    {"unix", AF_UNIX, SOCK_STREAM},
    {"unixpacket", AF_UNIX, SOCK_SEQPACKET},
    {"udp", AF_UNSPEC, SOCK_DGRAM},
    {"udp4", AF_INET, SOCK_DGRAM},
    {"udp6", AF_INET6, SOCK_DGRAM},
    {"unixgram", AF_UNIX, SOCK_DGRAM},
}};

// The row named `name`, or nullptr.
[[nodiscard]] const network* find_network(std::string_view name) noexcept;

// A socket address of any family, as bind(2), connect(2), accept(2) and getsockname(2) use it.
struct sock_addr {
    sockaddr_storage storage{};
    socklen_t len = sizeof(storage);
    sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
    [[nodiscard]] const sockaddr* get() const {
        return reinterpret_cast<const sockaddr*>(&storage);
    }
    [[nodiscard]] int family() const { return storage.ss_family; }
};

// As Go's Addr.String() writes it: "127.0.0.1:8000", "[::1]:8000", "/tmp/echo.sock", "@name"
// (Linux's abstract namespace), "unnamed" (a unix socket that never bound a path).
[[nodiscard]] std::string addr_string(const sock_addr& a);

// getsockname(2): what the socket is bound to, Go's LocalAddr(). Dies if the call fails.
[[nodiscard]] sock_addr local_addr(int fd);

// A unix socket address: a path, or "@name" for the abstract namespace (no file). A path that
// is empty or too long for sun_path is a usage error naming `option`.
[[nodiscard]] sock_addr unix_addr(std::string_view option, std::string_view path);

// "host:port" split as Go's net.SplitHostPort does: IPv6 in brackets ("[::1]:80"), an empty
// host allowed (":8000"). A missing port, an IPv6 host without brackets, or a port that is not
// a number up to 65535 (or is 0, where the caller does not allow it) is a usage error naming
// `option` and the text.
enum class port_zero { allowed, refused };
struct host_port {
    std::string host;  // without brackets; "" for every address (listen) or this host (dial)
    std::string port;  // the digits as given
    std::uint16_t number = 0;
};
[[nodiscard]] host_port split_host_port(std::string_view option, std::string_view text,
                                        port_zero zero);

}  // namespace ipc
