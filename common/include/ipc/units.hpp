// ipc/units.hpp: numbers, sizes ("64K", "1M", "1G") and durations ("250ms", "2s") as a user
// or a peer writes them.
//
// Sizes are binary: K = 1024. Durations need a unit, as Go's time.ParseDuration does
// ("0" alone is allowed): ns, us, ms, s, m, h, with a decimal fraction ("1.5s").
// Both throw std::invalid_argument with a message that names the bad text.
#pragma once

#include <charconv>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace ipc {

// The whole of `text` as a decimal Int: nullopt for an empty text, a blank, a '+', any byte
// after the digits, or a value Int cannot hold. A '-' only for a signed Int ("-5").
template <std::integral Int>
[[nodiscard]] std::optional<Int> parse_decimal(std::string_view text) noexcept {
    if (text.empty()) return std::nullopt;
    Int value{};
    const char* last = text.data() + text.size();
    const auto [end, ec] = std::from_chars(text.data(), last, value);
    if (ec != std::errc{} || end != last) return std::nullopt;
    return value;
}

[[nodiscard]] std::uint64_t parse_size(std::string_view text);
[[nodiscard]] std::chrono::nanoseconds parse_duration(std::string_view text);

// 65536 -> "64 KiB", 1536 -> "1.5 KiB", 100 -> "100 B".
[[nodiscard]] std::string format_size(std::uint64_t bytes);
// 1500us -> "1.5ms", 2s -> "2s", 90s -> "1m30s".
[[nodiscard]] std::string format_duration(std::chrono::nanoseconds d);

}  // namespace ipc
