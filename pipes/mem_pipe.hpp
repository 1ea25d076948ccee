// pipes/mem_pipe.hpp: ipc::mem_pipe, a synchronous in-memory pipe between threads: the C++
// counterpart of Go's io.Pipe (the "管道" part of multiprocess-ipc.md). docs/pipecmp.md compares
// it with pipe(2); pipes/pipecmp.cpp runs both side by side.
//
//   auto [r, w] = ipc::mem_pipe();
//   std::jthread t{[&] { (void)w.write(std::as_bytes(std::span{"hello", 5})); w.close(); }};
//   std::array<std::byte, 64> buf;
//   for (;;) { auto [n, err] = r.read(buf); if (n == 0) break; ... }  // EOF, or err says why
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

namespace ipc {

// The one error of the pipe's own: a read or write on an end that is closed (Go's ErrClosedPipe).
enum class mem_pipe_errc { closed_pipe = 1 };

[[nodiscard]] const std::error_category& mem_pipe_category() noexcept;
[[nodiscard]] std::error_code make_error_code(mem_pipe_errc e) noexcept;

}  // namespace ipc

template <>
struct std::is_error_code_enum<ipc::mem_pipe_errc> : std::true_type {};

namespace ipc {

// How a read or write that must wait for the other end waits.
//   block:    park on a futex at once; every hand-off then costs a wakeup of the other thread.
//   spin:     first spin (with the CPU's pause instruction) for up to 50 µs, then park.
//   adaptive: spin like `spin`, but only while the other end last ran on another CPU: on ours
//             it cannot run until we stop, so spinning there only delays it.
// Every mode parks in the end: no wait is a busy-wait without bound.
enum class wait_mode { block, spin, adaptive };

// What a read or write did: n bytes moved, and the error that stopped it, if any.
// A read with n == 0 and no error is end of file: the writer called close().
struct pipe_result {
    std::size_t n = 0;
    std::error_code error;
};

namespace detail {
struct mem_pipe_state;
}
struct mem_pipe_ends;
[[nodiscard]] mem_pipe_ends mem_pipe(wait_mode mode = wait_mode::adaptive);  // below

// The read half of a mem_pipe. Move-only; destroying it, or assigning another end over it,
// closes it (as close()). A moved-from end may only be destroyed or assigned to.
class mem_pipe_reader {
  public:
    mem_pipe_reader(mem_pipe_reader&&) noexcept = default;
    mem_pipe_reader& operator=(mem_pipe_reader&& other) noexcept;
    ~mem_pipe_reader();

    // Read reads data from the pipe, blocking until a writer arrives or the write end is
    // closed. It returns the bytes of one write, or of the part of it still unread, as many as
    // fit in buf. If the write end is closed with an error, that error is returned; otherwise
    // n == 0 with no error: end of file. After this end's own close(), the error is closed_pipe.
    // A read into an empty buf returns 0 at once (as read(2) does), with the error if closed.
    [[nodiscard]] pipe_result read(std::span<std::byte> buf);

    // Close closes the reader; subsequent and blocked writes on the write half return
    // closed_pipe.
    void close() noexcept;

    // CloseWithError closes the reader; subsequent and blocked writes on the write half return
    // err (closed_pipe if err is empty). It never overwrites an error already set.
    void close_with_error(std::error_code err) noexcept;

  private:
    friend mem_pipe_ends mem_pipe(wait_mode);
    explicit mem_pipe_reader(std::shared_ptr<detail::mem_pipe_state> p) noexcept;
    std::shared_ptr<detail::mem_pipe_state> p_;  // shared with the writer; null once moved from
};

// The write half of a mem_pipe. Move-only; destroying it, or assigning another end over it,
// closes it (as close()). A moved-from end may only be destroyed or assigned to.
class mem_pipe_writer {
  public:
    mem_pipe_writer(mem_pipe_writer&&) noexcept = default;
    mem_pipe_writer& operator=(mem_pipe_writer&& other) noexcept;
    ~mem_pipe_writer();

    // Write writes data to the pipe, blocking until one or more readers have consumed all of
    // it or the read end is closed. If the read end is closed with an error, that error is
    // returned with the count taken so far; otherwise the error is closed_pipe.
    // Concurrent writes are serialised: the bytes of one write are never mixed with another's.
    // An empty write returns 0 at once (with the error if closed): unlike Go's, it does not
    // wait for a reader, since a 0-byte read would look like end of file.
    [[nodiscard]] pipe_result write(std::span<const std::byte> data);

    // Close closes the writer; subsequent reads from the read half return 0 bytes: end of file.
    void close() noexcept;

    // CloseWithError closes the writer; subsequent reads from the read half return 0 bytes and
    // err (end of file if err is empty). It never overwrites an error already set.
    void close_with_error(std::error_code err) noexcept;

  private:
    friend mem_pipe_ends mem_pipe(wait_mode);
    explicit mem_pipe_writer(std::shared_ptr<detail::mem_pipe_state> p) noexcept;
    std::shared_ptr<detail::mem_pipe_state> p_;  // shared with the reader; null once moved from
};

struct mem_pipe_ends {
    mem_pipe_reader reader;
    mem_pipe_writer writer;
};

// mem_pipe creates a synchronous in-memory pipe, to connect threads.
//
// Reads and writes are matched one to one, except when several reads are needed to consume
// a single write: each write blocks until it has satisfied one or more reads that fully
// consume its bytes. The bytes are copied once, from the writer's buffer straight into the
// reader's; there is no internal buffer.
//
// It is safe to call read and write in parallel with each other or with close. Parallel
// reads and parallel writes are also safe: each is gated in turn.
[[nodiscard]] mem_pipe_ends mem_pipe(wait_mode mode);

}  // namespace ipc
