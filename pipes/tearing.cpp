// pipes/tearing.cpp: the count of torn records (tearing.hpp).
#include "tearing.hpp"

#include <algorithm>

#include "ipc/error.hpp"

namespace ipc {

void tear_counter::feed(std::span<const char> bytes) {
    const char* p = bytes.data();
    const char* const end = p + bytes.size();
    while (p < end) {
        const char tag = *p;
        const char* run_end = std::find_if(p, end, [tag](char c) { return c != tag; });
        const int writer = tag - 'A';
        if (writer < 0 || writer >= static_cast<int>(writers_)) {
            stray_ += static_cast<std::uint64_t>(run_end - p);
        } else {
            if (last_ != -1 && writer != last_) run_ended(static_cast<unsigned>(last_));
            offset_.at(static_cast<unsigned>(writer)) += static_cast<std::uint64_t>(run_end - p);
            last_ = writer;
        }
        p = run_end;
    }
}

// Another writer's bytes come next: if this writer was inside a record, that record is torn.
void tear_counter::run_ended(unsigned writer) {
    const std::uint64_t off = offset_.at(writer);
    if (off % size_ == 0) return;
    const std::uint64_t record = off / size_ + 1;
    if (torn_at_.at(writer) != record) ++torn_;  // a record cut twice is one torn record
    torn_at_.at(writer) = record;
}

std::uint64_t tear_counter::records() const {
    std::uint64_t n = 0;
    for (unsigned k = 0; k < writers_; ++k) n += (offset_.at(k) + size_ - 1) / size_;
    return n;
}

void check_every_byte(const tear_counter& counter, const race_options& race,
                      std::string_view what) {
    const std::uint64_t each = race.size * race.records;
    for (unsigned k = 0; k < race.writers; ++k) {
        if (const std::uint64_t n = counter.bytes_from(k); n != each) {
            fail("{}: writer '{}' delivered {} bytes, not {}", what, static_cast<char>('A' + k), n,
                 each);
        }
    }
    if (counter.stray() != 0) fail("{}: {} bytes that no writer wrote", what, counter.stray());
}

}  // namespace ipc
