// ipc/net.hpp: socket addresses as the notes' Go net package names and prints them.
//
//   const ipc::network* net = ipc::find_network("tcp6");     // the net.Listen/net.Dial table
//   auto hp = ipc::split_host_port("--listen", "[::1]:0", ipc::port_zero::allowed);
//   ipc::addr_string(ipc::local_addr(fd))   // "127.0.0.1:43117", like Go's Addr.String()
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <sys/types.h>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// The names of the rows whose type is `type` (0: every row), as "tcp|tcp4|tcp6": for --help and
// for the usage error that names what a tool accepts.
[[nodiscard]] std::string network_names(int type = 0);

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
// The same without the reporting (for tests and fuzzing): throws std::invalid_argument with
// the message that unix_addr prints after "OPTION: ".
[[nodiscard]] sock_addr parse_unix_addr(std::string_view path);

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
// The same without the reporting: throws std::invalid_argument with the message that
// split_host_port prints after "OPTION ".
[[nodiscard]] host_port parse_host_port(std::string_view text, port_zero zero);

// How net.Listen and net.Dial turn an address into the socket addresses to try, in order.
// The IP networks take "host:port" (split_host_port): a numeric host, a name (getaddrinfo, as
// Go's resolver), or an empty host: every address for listen ("[::]", which takes IPv4 too
// unless the network is tcp6/udp6; "0.0.0.0" for tcp4/udp4), this machine for dial. The unix
// networks take a path, or "@name" for the abstract namespace (unix_addr). Bad syntax, or an
// address of the wrong family for the network, is a usage error naming `option`; a name that
// does not resolve fails (exit 1), as a failed lookup does in Go.
enum class resolve_for { listen, dial };
[[nodiscard]] std::vector<sock_addr> resolve(const network& net, std::string_view option,
                                             std::string_view text, resolve_for purpose);
// What resolve does without a lookup and without the reporting: the address of a unix path or
// of a numeric (or empty) host; nullopt when the host is a name, or an empty host to dial
// (getaddrinfo's part). Throws std::invalid_argument with the message that resolve prints
// after "OPTION ".
[[nodiscard]] std::optional<sock_addr> parse_numeric_addr(const network& net, std::string_view text,
                                                          resolve_for purpose);

// The file bind(2) makes for a unix socket path. It outlives the socket, so the server removes
// it when it ends, but only while it is still the file we made (same device and inode): one
// that someone replaced meanwhile is left alone.
class socket_file {
  public:
    socket_file() = default;
    socket_file(const socket_file&) = delete;
    socket_file& operator=(const socket_file&) = delete;
    ~socket_file() { remove(); }

    // Records the file at `path`, just made by bind(2). Dies if it cannot be stat'ed.
    void adopt(std::string path);
    // Unlinks it now if it is still ours (also from the destructor). Keeps errno.
    void remove() noexcept;

  private:
    std::string path_;  // empty: nothing to remove
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

// bind(2) fails with EADDRINUSE while a socket file exists, even one left behind by a server
// that was killed. Call before bind: a path that does not exist is fine; one that is not a
// socket is never touched (exit 1); a socket someone still accepts on is in use (exit 1); a
// socket whose connect(2) is refused (nobody is bound to it any more) is stale and is removed,
// with a warning. The check and the unlink are not atomic: two servers started at the same
// instant could both replace it.
void clear_stale_socket(const std::string& path, const sock_addr& addr, int type);

}  // namespace ipc
