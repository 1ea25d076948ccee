// echodgram: receive datagrams and send each one back to its sender.
// Usage: echodgram [--network udp|udp4|udp6|unixgram] [--listen ADDR] [--max-line 64K] [-x]
// Demonstrates the datagram side of the notes' "Socket" part (multiprocess-ipc.md): what Go's
// net.ListenPacket, ReadFrom and WriteTo do: socket and bind, no listen, no accept, no
// connection; each datagram is a whole message that carries its sender's address.
// Try: echodgram --listen 127.0.0.1:0   then   nc -u 127.0.0.1 PORT
// See also: echoserver (the stream networks), echoclient --network udp, nc -u, socat.
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/net.hpp"
#include "ipc/output.hpp"
#include "ipc/signals.hpp"
#include "ipc/units.hpp"
#include "server.hpp"

namespace {

using ipc::unique_fd;

// --network, --listen, --max-line (server.hpp). There are no connections: nothing to accept, to
// limit, to time out or to drain.
struct options : echo::server_options {};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Datagram echo server, as Go's net.ListenPacket: receive each datagram (recvfrom, "
        "ReadFrom) and send it back to the address it came from (sendto, WriteTo). A datagram is a "
        "whole message: no "
        "framing, no connection. Logs each one on stdout. SIGINT/SIGTERM: exit 0.",
        "echodgram"};
    ipc::setup(app, "echodgram --listen 127.0.0.1:0    (then: nc -u 127.0.0.1 PORT)");
    options opt;
    opt.network = "udp";
    echo::add_server_options(app, opt, SOCK_DGRAM);
    ipc::parse(app, argc, argv);
    echo::check_server_options(app, opt, SOCK_DGRAM);
    return opt;
}

// net.ListenPacket(network, address): socket(2) and bind(2). No listen(2): a datagram socket
// has no connections to queue; every client's datagrams arrive on this one socket.
unique_fd listen_packet(const options& opt) {
    const ipc::sock_addr addr =
        ipc::resolve(*opt.net, "--listen", opt.listen, ipc::resolve_for::listen).front();
    unique_fd fd(::socket(addr.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) ipc::die(fmt::format("socket({})", opt.network));
    ipc::explain("socket({}) = {}", opt.network, fd.get());
    echo::listener_options(fd.get(), *opt.net, addr);
    echo::prepare_socket_file(opt.listen, addr, SOCK_DGRAM);
    if (::bind(fd.get(), addr.get(), addr.len) == -1) ipc::die(fmt::format("bind({})", opt.listen));
    ipc::explain("bind({}, {})", fd.get(), opt.listen);
    echo::adopt_socket_file(opt.listen, addr);
    return fd;
}

// Waits in poll(2) for a datagram or a stop signal. Returns the signal, or 0 for a datagram.
int wait_for_datagram(int fd, int sigfd) {
    for (;;) {
        std::array<pollfd, 2> fds{{{fd, POLLIN, 0}, {sigfd, POLLIN, 0}}};
        if (::poll(fds.data(), fds.size(), -1) == -1) {
            if (errno == EINTR) continue;
            ipc::die("poll");
        }
        if (fds[1].revents != 0) {
            if (const int sig = echo::read_signal(sigfd); sig != 0) return sig;
        }
        if (fds[0].revents != 0) return 0;
    }
}

// ReadFrom and WriteTo, for one datagram. A unixgram client that bound no path has no address:
// it can send, but no reply can reach it. Returns the log line, or "" when nothing was read.
std::string echo_one(int fd, std::vector<char>& buf, const options& opt, std::string_view local) {
    ipc::sock_addr from;
    ssize_t n = 0;
    do {  // MSG_TRUNC: the datagram's real length, even when it was longer than the buffer
        n = ::recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC, from.get(), &from.len);
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        if (errno != EAGAIN) ipc::warn("recvfrom");
        return {};
    }
    const std::string remote = ipc::addr_string(from);
    ipc::explain("recvfrom({}) = {} from {}", fd, n, remote);
    const auto size = static_cast<std::size_t>(n);
    const auto line = [&](std::string_view what) {
        return fmt::format("datagram: remote {}, local {}; {} bytes {}", remote, local, size, what);
    };
    if (remote == "unnamed") return line("not echoed: the client bound no address to reply to");
    const bool fits = size <= opt.max_line;
    const std::string refusal =
        fmt::format("error: datagram longer than {}\n", ipc::format_size(opt.max_line));
    const std::string_view reply = fits ? std::string_view(buf.data(), size) : refusal;
    ssize_t sent = 0;
    int again = 1;  // EAGAIN: one more try at once, never a wait (MSG_DONTWAIT): a unixgram
    do {            // client that reads nothing fills its queue, and its echo is dropped
        sent = ::sendto(fd, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL, from.get(),
                        from.len);
    } while (sent == -1 && (errno == EINTR || (errno == EAGAIN && again-- > 0)));
    if (sent == -1) return line("not echoed: " + ipc::error_text(errno, "sendto"));
    ipc::explain("sendto({}, {}) = {}", fd, remote, sent);
    return line(
        fits ? "echoed"
             : fmt::format("refused: longer than --max-line {}", ipc::format_size(opt.max_line)));
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    const unique_fd sigfd = echo::stop_signals();
    const unique_fd sock = listen_packet(opt);
    echo::say_listening(opt, sock.get());
    const std::string local = ipc::addr_string(ipc::local_addr(sock.get()));
    std::vector<char> buf(opt.max_line + 1);  // one byte more: a longer datagram is seen as such
    std::uint64_t served = 0;
    for (;;) {
        if (const int sig = wait_for_datagram(sock.get(), sigfd.get()); sig != 0) {
            ipc::say("echodgram: {}: stopped after {} datagrams", ipc::signal_name(sig), served);
            return 0;
        }
        const std::string line = echo_one(sock.get(), buf, opt, local);
        if (line.empty()) continue;
        ++served;
        ipc::say("{}", line);
    }
} catch (...) {
    return ipc::internal_error();
}
