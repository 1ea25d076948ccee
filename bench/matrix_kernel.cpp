// bench/matrix_kernel.cpp: the mechanisms of `ipcbench matrix` where the kernel carries the
// payload: write(2)/send(2) copies it into the kernel, read(2)/recv(2) copies it out. A pipe,
// a FIFO, unix sockets (stream, seqpacket, datagram), TCP and UDP over loopback, and a POSIX
// message queue. Each is set up whole before fork (see matrix.hpp).
#include <arpa/inet.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>

#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "matrix.hpp"

namespace ipcbench::matrix {
namespace {

// ---- Descriptors: a pipe, a FIFO, a socket ----

// Each side's descriptor to read from and to write to; a socket is both (write stays empty).
struct side_fds {
    ipc::unique_fd read;
    ipc::unique_fd write;
};

class fd_link final : public link {
  public:
    fd_link(side_fds client, side_fds server, bool stream)
        : client_(std::move(client)), server_(std::move(server)), stream_(stream) {}

    void send(std::span<const std::byte> msg) override {
        if (stream_) {
            if (!ipc::write_all(out_, msg.data(), msg.size())) fail("write");
            return;
        }
        while (::send(out_, msg.data(), msg.size(), 0) == -1) {
            if (errno != EINTR || !retry_eintr()) fail("send");
        }
    }

    void receive(std::span<std::byte> msg) override {
        if (stream_) {
            const ssize_t n = ipc::read_full(in_, msg.data(), msg.size());
            if (n == -1) fail("read");
            if (static_cast<std::size_t>(n) != msg.size()) end_of_file("read");
            return;
        }
        ssize_t n = 0;  // MSG_TRUNC: the datagram's real length, even when it is longer
        while ((n = ::recv(in_, msg.data(), msg.size(), MSG_TRUNC)) == -1) {
            if (errno != EINTR || !retry_eintr()) fail("recv");
        }
        if (n == 0) end_of_file("recv");
        if (static_cast<std::size_t>(n) != msg.size()) {
            errno = EMSGSIZE;  // a message of another size: never the echo of ours
            fail("recv");
        }
    }

  private:
    void keep(side s) override {
        (s == side::client ? server_ : client_) = {};  // the other side's ends: closed here
        side_fds& mine = s == side::client ? client_ : server_;
        in_ = mine.read.get();
        out_ = mine.write ? mine.write.get() : in_;
    }
    [[noreturn]] void end_of_file(const char* call) const {
        errno = EPIPE;  // the other side closed its end: it failed, or it was stopped
        fail(call);
    }

    side_fds client_;
    side_fds server_;
    bool stream_;
    int in_ = -1;
    int out_ = -1;
};

// Two one-way channels (pipes or FIFOs): client -> server and server -> client.
std::unique_ptr<link> two_ways(ipc::pipe_fds up, ipc::pipe_fds down) {
    return std::make_unique<fd_link>(side_fds{std::move(down.read), std::move(up.write)},
                                     side_fds{std::move(up.read), std::move(down.write)}, true);
}

std::unique_ptr<link> make_pipe(std::uint64_t /*size*/) {
    return two_ways(ipc::make_pipe(), ipc::make_pipe());
}

// A FIFO opened without waiting for the other side: the read end with O_NONBLOCK first (it
// never blocks), then the write end (which has its reader), then the read end made blocking.
// Returns the call that failed (errno tells why), or nothing.
// nullptr, or the call that failed: a constant, so that nothing between the call and the
// caller's look at errno could change it (formatting a string may allocate).
const char* open_fifo(const std::string& path, ipc::pipe_fds& ends) {
    if (::mkfifo(path.c_str(), 0600) == -1) return "mkfifo";
    ends.read = ipc::unique_fd{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
    if (!ends.read) return "open(FIFO, O_RDONLY | O_NONBLOCK)";
    ends.write = ipc::unique_fd{::open(path.c_str(), O_WRONLY | O_CLOEXEC)};
    if (!ends.write) return "open(FIFO, O_WRONLY)";
    if (::fcntl(ends.read.get(), F_SETFL, 0) == -1) return "fcntl(F_SETFL)";
    return nullptr;
}

// Two FIFOs in a private directory, opened by this process and removed at once, also when an
// open failed: the names live for a few system calls; only descriptors cross the fork.
std::unique_ptr<link> make_fifo(std::uint64_t /*size*/) {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = fmt::format("{}/ipcbench-fifo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (::mkdtemp(dir.data()) == nullptr) ipc::die(fmt::format("mkdtemp({})", dir));
    const std::string up_path = dir + "/up";
    const std::string down_path = dir + "/down";
    ipc::pipe_fds up;
    ipc::pipe_fds down;
    const char* failed = open_fifo(up_path, up);
    if (failed == nullptr) failed = open_fifo(down_path, down);
    const int err = errno;
    (void)::unlink(up_path.c_str());  // ENOENT when mkfifo failed: nothing to remove
    (void)::unlink(down_path.c_str());
    if (::rmdir(dir.c_str()) == -1) ipc::die(fmt::format("rmdir({})", dir));
    if (failed != nullptr) ipc::die_en(err, fmt::format("{} in {}", failed, dir));
    return two_ways(std::move(up), std::move(down));
}

// ---- Sockets ----

std::unique_ptr<link> socket_link(ipc::socket_pair p, bool stream) {
    return std::make_unique<fd_link>(side_fds{std::move(p.first), {}},
                                     side_fds{std::move(p.second), {}}, stream);
}

std::unique_ptr<link> make_socketpair(std::uint64_t /*size*/) {
    return socket_link(ipc::make_socketpair(SOCK_STREAM), true);
}
std::unique_ptr<link> make_seqpacket(std::uint64_t /*size*/) {
    return socket_link(ipc::make_socketpair(SOCK_SEQPACKET), false);
}
std::unique_ptr<link> make_unix_dgram(std::uint64_t /*size*/) {
    return socket_link(ipc::make_socketpair(SOCK_DGRAM), false);
}

// A unix datagram or seqpacket record must fit in the sender's buffer: the kernel refuses one
// longer than SO_SNDBUF - 32 with EMSGSIZE (net/unix/af_unix.c, unix_dgram_sendmsg).
template <int type>
std::optional<limit> unix_message_fits(std::uint64_t size) {
    const auto p = ipc::make_socketpair(type);
    int sndbuf = 0;
    socklen_t len = sizeof sndbuf;
    if (::getsockopt(p.first.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == -1) {
        ipc::die("getsockopt(SO_SNDBUF)");
    }
    const auto max = static_cast<std::uint64_t>(sndbuf - 32);
    if (size <= max) return std::nullopt;
    return limit{max,
                 fmt::format("a {} must fit in SO_SNDBUF ({} B) less 32",
                             type == SOCK_DGRAM ? "unix datagram" : "seqpacket record", sndbuf)};
}

ipc::unique_fd inet_socket(int type) {
    ipc::unique_fd s{::socket(AF_INET, type | SOCK_CLOEXEC, 0)};
    if (!s) ipc::die("socket");
    return s;
}

sockaddr_in bound_loopback(int fd) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // port 0: the kernel picks one
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == -1) ipc::die("bind");
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == -1) ipc::die("getsockname");
    return a;
}

// To a socket of this process on loopback: a UDP connect only records the peer, and a TCP one
// completes as soon as the handshake is done (the listener's backlog takes it).
void connect_to(int fd, const sockaddr_in& a) {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == -1) ipc::die("connect");
}

void no_delay(int fd) {  // send each message at once: no waiting to fill a segment (Nagle)
    const int on = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == -1) {
        ipc::die("setsockopt(TCP_NODELAY)");
    }
}

// A TCP connection over 127.0.0.1, listened, connected and accepted here before fork.
std::unique_ptr<link> make_tcp(std::uint64_t /*size*/) {
    const ipc::unique_fd listener = inet_socket(SOCK_STREAM);
    const sockaddr_in addr = bound_loopback(listener.get());
    if (::listen(listener.get(), 1) == -1) ipc::die("listen");
    ipc::unique_fd client = inet_socket(SOCK_STREAM);
    connect_to(client.get(), addr);
    ipc::unique_fd server;
    while (!(server = ipc::unique_fd{::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)})) {
        if (errno != EINTR) ipc::die("accept4");
    }
    no_delay(client.get());
    no_delay(server.get());
    return socket_link({std::move(client), std::move(server)}, true);
}

// Two UDP sockets on 127.0.0.1, each connected to the other. A datagram lost on the way would
// leave a side waiting for good: SO_RCVTIMEO turns that into an error (EAGAIN) after 5 s.
std::unique_ptr<link> make_udp(std::uint64_t /*size*/) {
    ipc::unique_fd a = inet_socket(SOCK_DGRAM);
    ipc::unique_fd b = inet_socket(SOCK_DGRAM);
    const sockaddr_in addr_a = bound_loopback(a.get());
    const sockaddr_in addr_b = bound_loopback(b.get());
    connect_to(a.get(), addr_b);
    connect_to(b.get(), addr_a);
    const timeval patience{5, 0};
    for (const int fd : {a.get(), b.get()}) {
        if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience) == -1) {
            ipc::die("setsockopt(SO_RCVTIMEO)");
        }
    }
    return socket_link({std::move(a), std::move(b)}, false);
}

std::optional<limit> udp_fits(std::uint64_t size) {
    constexpr std::uint64_t max = 65535 - 20 - 8;  // an IPv4 datagram, less its IP and UDP headers
    if (size <= max) return std::nullopt;
    return limit{max, "a UDP datagram over IPv4 holds at most 65535 B less 28 B of headers"};
}

// ---- POSIX message queues ----

// Two queues (one each way), one message deep, with room for exactly --size bytes. Their names
// are removed with mq_unlink as soon as both are open: the descriptors cross the fork.
class mq_link final : public link {
  public:
    explicit mq_link(std::uint64_t size) {
        mq_attr attr{};
        attr.mq_maxmsg = 1;
        attr.mq_msgsize = static_cast<long>(size);
        for (mqd_t& q : queues_) {
            const std::string name = unique_name("mq");
            q = ::mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
            if (q == mqd_t(-1)) ipc::die(fmt::format("mq_open({})", name));
            if (::mq_unlink(name.c_str()) == -1) ipc::die(fmt::format("mq_unlink({})", name));
        }
    }
    ~mq_link() override {
        for (const mqd_t q : queues_) {
            if (q != mqd_t(-1)) (void)::mq_close(q);  // only a descriptor: the name is gone
        }
    }
    mq_link(const mq_link&) = delete;
    mq_link& operator=(const mq_link&) = delete;

    void send(std::span<const std::byte> msg) override {
        const auto* p = reinterpret_cast<const char*>(msg.data());
        while (::mq_send(out_, p, msg.size(), 0) == -1) {
            if (errno != EINTR || !retry_eintr()) fail("mq_send");
        }
    }
    // A second at a time: a queue has no end of file, and a sanitizer may hold SIGCHLD's
    // handler back (ThreadSanitizer does, in a call it does not intercept), so the client
    // also looks for itself (peer_gone) whenever a second passes with no answer.
    void receive(std::span<std::byte> msg) override {
        auto* p = reinterpret_cast<char*>(msg.data());
        ssize_t n = 0;
        timespec limit = ipc::realtime_after(std::chrono::seconds(1));
        while ((n = ::mq_timedreceive(in_, p, msg.size(), nullptr, &limit)) == -1) {
            if (errno == ETIMEDOUT && !peer_gone()) {
                limit = ipc::realtime_after(std::chrono::seconds(1));
                continue;
            }
            if (errno != EINTR || !retry_eintr()) fail("mq_receive");
        }
        if (static_cast<std::size_t>(n) != msg.size()) {
            errno = EMSGSIZE;
            fail("mq_receive");
        }
    }

  private:
    void keep(side s) override {  // queue 0 carries client -> server, queue 1 the answer
        out_ = queues_[s == side::client ? 0 : 1];
        in_ = queues_[s == side::client ? 1 : 0];
    }

    std::array<mqd_t, 2> queues_{mqd_t(-1), mqd_t(-1)};
    mqd_t in_ = -1;
    mqd_t out_ = -1;
};

std::unique_ptr<link> make_mq(std::uint64_t size) { return std::make_unique<mq_link>(size); }

std::optional<limit> mq_fits(std::uint64_t size) {
    const char* file = "/proc/sys/fs/mqueue/msgsize_max";
    ipc::unique_fd fd{::open(file, O_RDONLY | O_CLOEXEC)};
    if (!fd) ipc::die(fmt::format("open({})", file));
    std::array<char, 32> text{};
    if (ipc::read_some(fd.get(), text.data(), text.size() - 1) == -1) {
        ipc::die(fmt::format("read({})", file));
    }
    const auto max = std::strtoull(text.data(), nullptr, 10);
    if (size <= max) return std::nullopt;
    return limit{max, fmt::format("a message may hold at most {} ({} B)", file, max)};
}

}  // namespace

std::vector<mechanism> kernel_mechanisms() {
    return {
        {"pipe", "write -> pipe buffer -> read", true, family::kernel_copy, nullptr, make_pipe},
        {"socketpair", "send -> unix stream socket -> recv", true, family::kernel_copy, nullptr,
         make_socketpair},
        {"unix-seqpacket", "send -> unix seqpacket record -> recv", false, family::kernel_copy,
         unix_message_fits<SOCK_SEQPACKET>, make_seqpacket},
        {"unix-dgram", "send -> unix datagram -> recv", false, family::kernel_copy,
         unix_message_fits<SOCK_DGRAM>, make_unix_dgram},
        {"tcp", "send -> TCP over 127.0.0.1 -> recv", true, family::kernel_copy, nullptr, make_tcp},
        {"udp", "send -> UDP datagram over 127.0.0.1 -> recv", false, family::kernel_copy, udp_fits,
         make_udp},
        {"fifo", "write -> named pipe (FIFO) -> read", true, family::kernel_copy, nullptr,
         make_fifo},
        {"mq", "mq_send -> POSIX message queue -> mq_receive", false, family::kernel_copy, mq_fits,
         make_mq},
    };
}

}  // namespace ipcbench::matrix
