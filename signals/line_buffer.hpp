// signals/line_buffer.hpp: the bytes batchlog has read and not yet written, cut into lines.
// It teaches no IPC (it is how lines are found in a stream of bytes), so it lives beside the
// tool. Invariant: every byte read is either here or already written, exactly once, in order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace signals {

// The bytes held are buf[begin, end). Those in [begin, scanned) have been searched for
// newlines: `lines` complete lines, the last one ending just before `line_start`.
class line_buffer {
  public:
    // Everything held: read, and not yet written.
    [[nodiscard]] std::string_view held() const { return {buf_.data() + begin_, end_ - begin_}; }

    // Room for at least `size` more bytes at the end; fill it, then commit() what was put there.
    char* space(std::size_t size) {
        if (begin_ == end_) clear();
        if (buf_.size() - end_ < size && begin_ > 0) {  // slide what is held to the front
            std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            scanned_ -= begin_;
            line_start_ -= begin_;
            begin_ = 0;
        }
        if (buf_.size() - end_ < size) buf_.resize(std::max(buf_.size() * 2, end_ + size));
        return buf_.data() + end_;
    }
    void commit(std::size_t n) { end_ += n; }

    // The size in bytes of the first `batch` complete lines held, once there are that many;
    // 0 while there are fewer, or when a line longer than max_line comes first (too_long()).
    std::size_t next_batch(std::uint64_t batch, std::uint64_t max_line) {
        while (scanned_ < end_) {
            const auto* nl = static_cast<const char*>(
                std::memchr(buf_.data() + scanned_, '\n', end_ - scanned_));
            if (nl == nullptr) {
                scanned_ = end_;
                return 0;
            }
            const auto next = static_cast<std::size_t>(nl - buf_.data()) + 1;
            if (next - 1 - line_start_ > max_line) return 0;  // too_long() says so
            scanned_ = line_start_ = next;
            if (++lines_ == batch) return scanned_ - begin_;
        }
        return 0;
    }

    // The line after the complete ones, finished or not, is longer than max_line.
    [[nodiscard]] bool too_long(std::uint64_t max_line) const {
        return end_ - line_start_ > max_line;
    }
    // The complete lines found and not yet dropped: how many, and their size in bytes.
    [[nodiscard]] std::uint64_t complete_lines() const { return lines_; }
    [[nodiscard]] std::size_t complete_bytes() const { return line_start_ - begin_; }

    // The first `size` bytes held have been written: the complete lines found so far, or all.
    void drop(std::size_t size) {
        begin_ += size;
        lines_ = 0;
        if (begin_ == end_) clear();
    }

  private:
    void clear() { begin_ = end_ = scanned_ = line_start_ = lines_ = 0; }

    std::vector<char> buf_;
    std::size_t begin_ = 0;       // first byte not yet written
    std::size_t end_ = 0;         // one past the last byte read
    std::size_t scanned_ = 0;     // bytes before this were searched for newlines
    std::size_t line_start_ = 0;  // where the line after the last newline found starts
    std::uint64_t lines_ = 0;     // complete lines in [begin, scanned)
};

}  // namespace signals
