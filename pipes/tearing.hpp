// pipes/tearing.hpp: counting torn records, the one count of the two lessons on atomic writes:
// fifodemo's rules 7 and 8 (a FIFO) and pipecmp atomic (pipe(2), and mem_pipe between threads).
//
// Writer k writes records of `size` bytes, every byte of them its letter 'A' + k, one write per
// record. A pipe keeps each writer's bytes in order, so a record arrives whole exactly when no
// byte of another writer lands inside it; tear_counter counts the records that did not.
//
//   ipc::tear_counter c(race.writers, race.size);
//   while ((n = read(fd, buf, race.read_size)) > 0) c.feed({buf, n});   // the writers race
//   ipc::check_every_byte(c, race, "pipe(2)");   // exits 1 if a byte was lost
//   ipc::say("{} of {} torn", c.torn(), c.records());
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace ipc {

struct race_options {
    unsigned writers = 2;            // 1 to 26: writer k writes the letter 'A' + k
    std::uint64_t size = 4096;       // bytes per record, one write each
    std::uint64_t records = 100;     // records per writer
    std::uint64_t read_size = 4096;  // bytes per read: a reader that takes less than the pipe
                                     // holds leaves a long write waiting for room midway
};

inline constexpr unsigned max_writers = 26;

// Counts the torn records in the stream of the writers' bytes, fed in the order they were read.
class tear_counter {
  public:
    tear_counter(unsigned writers, std::uint64_t size) : writers_(writers), size_(size) {}

    void feed(std::span<const char> bytes);

    [[nodiscard]] std::uint64_t records() const;  // begun, whole or torn
    [[nodiscard]] std::uint64_t torn() const { return torn_; }
    [[nodiscard]] std::uint64_t bytes_from(unsigned writer) const { return offset_.at(writer); }
    [[nodiscard]] std::uint64_t stray() const { return stray_; }  // bytes no writer writes

  private:
    void run_ended(unsigned writer);

    unsigned writers_;
    std::uint64_t size_;
    std::array<std::uint64_t, max_writers> offset_{};   // bytes seen from each writer
    std::array<std::uint64_t, max_writers> torn_at_{};  // 1 + the last torn record of each
    std::uint64_t torn_ = 0;
    std::uint64_t stray_ = 0;
    int last_ = -1;  // the writer of the byte before, -1 at the start
};

// Exits 1 with "what: ..." unless every writer's bytes all arrived and nothing else did.
void check_every_byte(const tear_counter& counter, const race_options& race, std::string_view what);

}  // namespace ipc
