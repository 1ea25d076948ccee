// msgqueue.hpp: what msgqueue.cpp (the commands) and msgqueue_demo.cpp (the demo) share.
#pragma once

#include <mqueue.h>
#include <sys/types.h>

#include <chrono>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace msgqueue {

// An open message queue descriptor, closed with mq_close(3) when it goes out of scope.
// On Linux an mqd_t is a file descriptor, made close-on-exec by the kernel.
class queue_fd {
  public:
    explicit queue_fd(mqd_t q) noexcept : q_(q) {}
    queue_fd(const queue_fd&) = delete;
    queue_fd& operator=(const queue_fd&) = delete;
    queue_fd(queue_fd&& other) noexcept : q_(std::exchange(other.q_, mqd_t(-1))) {}
    queue_fd& operator=(queue_fd&&) = delete;
    ~queue_fd();

    [[nodiscard]] mqd_t get() const noexcept { return q_; }
    explicit operator bool() const noexcept { return q_ != mqd_t(-1); }

  private:
    mqd_t q_;
};

// mq_send(3), or mq_timedsend(3) when `deadline` (absolute, CLOCK_REALTIME) is not null; EINTR
// is retried (the deadline is absolute, so a retry never extends it). Returns 0, or the errno
// value (EAGAIN, ETIMEDOUT, EMSGSIZE...) for the caller to judge.
[[nodiscard]] int send_message(mqd_t q, std::string_view text, unsigned priority,
                               const timespec* deadline);

// mq_receive(3), or mq_timedreceive(3) until `deadline`, into `buf`, which must hold
// mq_msgsize bytes (EMSGSIZE otherwise), EINTR retried. Returns the message's length, or -1
// with errno set (EAGAIN, ETIMEDOUT).
[[nodiscard]] ssize_t receive_message(mqd_t q, std::vector<char>& buf, unsigned& priority,
                                      const timespec* deadline);

// The line /dev/mqueue/NAME shows ("QSIZE:14 NOTIFY:0 SIGNO:0 NOTIFY_PID:0"), read(2) from the
// queue's own descriptor, so it works after mq_unlink too. Dies if the read fails.
[[nodiscard]] std::string status_line(mqd_t q);

// A value from /proc/sys/fs/mqueue ("msg_max", "msgsize_max", ...); -1 if it cannot be read.
[[nodiscard]] long proc_limit(const char* name);

// `msgqueue demo`: msgqueue_demo.cpp. `block` bounds the wait on a full queue.
int demo(std::chrono::nanoseconds block);

}  // namespace msgqueue
