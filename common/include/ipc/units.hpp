// ipc/units.hpp: sizes ("64K", "1M", "1G") and durations ("250ms", "2s") on the command line.
//
// Sizes are binary: K = 1024. Durations need a unit, as Go's time.ParseDuration does
// ("0" alone is allowed): ns, us, ms, s, m, h, with a decimal fraction ("1.5s").
// Both throw std::invalid_argument with a message that names the bad text.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace ipc {

[[nodiscard]] std::uint64_t parse_size(std::string_view text);
[[nodiscard]] std::chrono::nanoseconds parse_duration(std::string_view text);

// 65536 -> "64 KiB", 1536 -> "1.5 KiB", 100 -> "100 B".
[[nodiscard]] std::string format_size(std::uint64_t bytes);
// 1500us -> "1.5ms", 2s -> "2s", 90s -> "1m30s".
[[nodiscard]] std::string format_duration(std::chrono::nanoseconds d);

}  // namespace ipc
