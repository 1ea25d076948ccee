// signals/channel.hpp: a queue between threads, shaped like a Go channel: send, receive in
// order, close. sigrecv's watchers each read one, as Go code reads the channel it gave to
// signal.Notify. It teaches threads, not IPC, so it lives beside the tool.
// Unlike a Go channel it has no capacity: send never blocks and never drops a value.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace signals {

template <typename T>
class channel {
  public:
    void send(const T& value) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(value);
        }
        ready_.notify_one();
    }

    // After close, receive() returns what is left, then nullopt: like close(ch) in Go.
    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        ready_.notify_one();
    }

    // The next value, in the order sent; waits for one; nullopt once closed and empty.
    std::optional<T> receive() {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty() || closed_; });
        if (queue_.empty()) return std::nullopt;
        T value = queue_.front();
        queue_.pop_front();
        return value;
    }

  private:
    std::mutex mutex_;  // guards queue_ and closed_
    std::condition_variable ready_;
    std::deque<T> queue_;
    bool closed_ = false;
};

}  // namespace signals
