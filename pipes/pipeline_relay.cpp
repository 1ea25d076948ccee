// pipeline --relay: the same as pipeline, except that the parent sits between the stages and
// copies each link's bytes itself, as the notes' Go code does with bufio's WriteTo.
// Usage: pipeline --relay [--splice] [--buffer SIZE] [-x] -- CMD ... '|' CMD ...
// Demonstrates the end of the notes' "管道" section (multiprocess-ipc.md): one poll() over every
// link, read/write through a bounded buffer (or splice(2), pipe to pipe, --splice); the stages
// still see EOF when the stage before is done, and SIGPIPE when the one after has gone.
// Try: pipeline --relay -x -v -- yes '|' head -n 1
// See also: pipes/pipeline.cpp (the stages, and the pipes joining them directly)
#include "pipeline_relay.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <fmt/format.h>

#include "ipc/error.hpp"
#include "ipc/explain.hpp"

namespace relay {
namespace {

void set_nonblocking(const ipc::unique_fd& fd) {
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags == -1) ipc::die(fmt::format("fcntl({}, F_GETFL)", fd.get()));
    if (::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) == -1) {
        ipc::die(fmt::format("fcntl({}, F_SETFL, O_NONBLOCK)", fd.get()));
    }
}

// Stage i+1 has gone: drop what we hold and close both ends, so that stage i gets SIGPIPE at
// its next write, exactly as if the pipe joined them directly.
void cut(link& link, std::size_t i) {
    const int to = link.to.get(), from = link.from.get();
    link.to.reset();
    link.from.reset();
    // Told after the closes, so that a reader of the narration knows they have happened.
    ipc::explain("stage {} has closed its stdin (POLLERR or EPIPE on {}): close({})", i + 2, to,
                 to);
    if (from != -1) ipc::explain("close({}): stage {} gets SIGPIPE at its next write", from, i + 1);
    link.dropped += link.end - link.begin;
    link.begin = link.end = 0;
}

// Reads into the link's empty buffer; returns whether bytes came. At EOF, closes `from`.
// EAGAIN or EINTR: nothing this time, the next poll() says when to try again.
bool read_in(link& link, std::size_t i) {
    const ssize_t n = ::read(link.from.get(), link.buf.data(), link.chunk);
    if (n == -1 && errno != EAGAIN && errno != EINTR) {
        ipc::die(fmt::format("read({})", link.from.get()));
    }
    if (n == 0) {
        ipc::explain("read({}) = 0: end of stage {}'s output", link.from.get(), i + 1);
        ipc::explain("close({})", link.from.get());
        link.from.reset();
    }
    if (n <= 0) return false;
    if (link.relayed == 0) ipc::explain("read({}) = {}", link.from.get(), n);
    link.end = static_cast<std::size_t>(n);
    return true;
}

// Writes what the buffer holds (`to` is non-blocking: a full pipe says EAGAIN, and the next
// poll() waits for room). Returns false if stage i+1 has gone.
bool write_out(link& link, std::size_t i) {
    const ssize_t n = ::write(link.to.get(), link.buf.data() + link.begin, link.end - link.begin);
    if (n == -1 && errno == EPIPE) {
        cut(link, i);
        return false;
    }
    if (n == -1 && errno != EAGAIN && errno != EINTR) {
        ipc::die(fmt::format("write({})", link.to.get()));
    }
    if (n <= 0) return true;
    if (link.relayed == 0) ipc::explain("write({}) = {}", link.to.get(), n);
    link.begin += static_cast<std::size_t>(n);
    link.relayed += static_cast<std::uint64_t>(n);
    if (link.begin == link.end) link.begin = link.end = 0;
    return true;
}

// One step of a link after poll(): read when the buffer is empty, write what it holds. Right
// after a read it tries the write at once: one poll() per chunk instead of two.
void step_copy(link& link, std::size_t i, short from_events, short to_events) {
    if (to_events & POLLERR) return cut(link, i);  // a pipe with no reader left polls POLLERR
    bool fresh = false;
    if (link.begin == link.end && (from_events & (POLLIN | POLLHUP | POLLERR))) {
        fresh = read_in(link, i);
    }
    if (link.begin < link.end && (fresh || (to_events & POLLOUT)) && !write_out(link, i)) {
        return;
    }
    if (!link.from && link.begin == link.end && link.to) {
        ipc::explain("close({}): all of stage {}'s output is passed on, stage {} sees EOF",
                     link.to.get(), i + 1, i + 2);
        link.to.reset();
    }
}

// --splice: splice(2) moves the bytes from pipe to pipe inside the kernel (page references,
// not copies); they never enter our memory. A non-blocking splice that says EAGAIN does not
// say which side was not ready, so it is called only once poll() has said both are.
void step_splice(link& link, std::size_t i, short from_events, short to_events) {
    if (to_events & POLLERR) return cut(link, i);
    if (from_events & (POLLIN | POLLHUP)) link.readable = true;
    if (to_events & POLLOUT) link.writable = true;
    if (!link.readable || !link.writable) return;
    link.readable = link.writable = false;  // poll() again before the next splice
    const ssize_t n = ::splice(link.from.get(), nullptr, link.to.get(), nullptr, link.chunk,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n == -1 && errno == EPIPE) return cut(link, i);
    if (n == -1 && errno != EAGAIN && errno != EINTR) {
        ipc::die(fmt::format("splice({}, {})", link.from.get(), link.to.get()));
    }
    if (n > 0 && link.relayed == 0) {
        ipc::explain("splice({}, {}) = {}", link.from.get(), link.to.get(), n);
    }
    if (n > 0) link.relayed += static_cast<std::uint64_t>(n);
    if (n == 0) {
        ipc::explain(
            "splice({}, {}) = 0: end of stage {}'s output; close({}) and close({}), "
            "stage {} sees EOF",
            link.from.get(), link.to.get(), i + 1, link.from.get(), link.to.get(), i + 2);
        link.from.reset();
        link.to.reset();
    }
}

// What poll() watches for each link: `from` for input while its buffer is empty, `to` for room
// while it is not; `to` always, since poll() reports POLLERR on it once stage i+1 is gone.
// Returns false once every link is done.
bool watch(const std::vector<link>& links, std::vector<pollfd>& fds, bool splice) {
    bool any = false;
    for (std::size_t i = 0; i < links.size(); ++i) {
        const link& link = links[i];
        const bool want_input = splice ? !link.readable : link.begin == link.end;
        const bool want_room = splice ? !link.writable : link.begin != link.end;
        fds[2 * i] = {link.from && want_input ? link.from.get() : -1, POLLIN, 0};
        fds[2 * i + 1] = {link.to.get(), static_cast<short>(want_room ? POLLOUT : 0), 0};
        any = any || link.to;
    }
    return any;
}

}  // namespace

// The parent between the stages: one poll() over every link until all are done.
void run(std::vector<link>& links, bool splice) {
    std::vector<pollfd> fds(2 * links.size());
    ipc::explain("relaying {} link(s) with poll(); only the first read and write of each is shown",
                 links.size());
    while (watch(links, fds, splice)) {
        if (::poll(fds.data(), fds.size(), -1) == -1) {
            if (errno == EINTR) continue;
            ipc::die("poll");
        }
        for (std::size_t i = 0; i < links.size(); ++i) {
            if (!links[i].to) continue;
            auto* step = splice ? step_splice : step_copy;
            step(links[i], i, fds[2 * i].revents, fds[2 * i + 1].revents);
        }
    }
}

link make_link(ipc::unique_fd from, ipc::unique_fd to, std::size_t chunk, bool splice) {
    link l;
    l.from = std::move(from);
    l.to = std::move(to);
    l.chunk = chunk;
    if (!splice) l.buf.resize(chunk);
    set_nonblocking(l.from);
    set_nonblocking(l.to);
    return l;
}

}  // namespace relay
