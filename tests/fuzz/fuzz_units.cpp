// fuzz_units: ipc::parse_size and ipc::parse_duration (common/units), which every --size,
// --chunk, --buffer, --timeout and --deadline option goes through, on any bytes.
// A bad text must throw std::invalid_argument (nothing else); a good one must be spelled as
// units.hpp documents (the grammar below), print back (format_size, format_duration) and,
// written plainly, parse to the same value.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ipc/units.hpp"

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

bool digit(char c) { return c >= '0' && c <= '9'; }

// Takes the digits at the front of `s`; how many there were.
std::size_t take_digits(std::string_view& s) {
    std::size_t n = 0;
    while (n < s.size() && digit(s[n])) ++n;
    s.remove_prefix(n);
    return n;
}

bool one_of(std::string_view s, std::initializer_list<std::string_view> list) {
    for (const auto item : list) {
        if (s == item) return true;
    }
    return false;
}

// DIGITS, then nothing, B, or K/M/G/T followed by nothing, B or iB (any case).
bool size_spelling(std::string_view s) {
    if (take_digits(s) == 0) return false;
    if (s.empty() || one_of(s, {"b", "B"})) return true;
    if (std::string_view("kKmMgGtT").find(s[0]) == std::string_view::npos) return false;
    s.remove_prefix(1);
    return one_of(s, {"", "b", "B", "ib", "iB", "Ib", "IB"});
}

// "0", or DIGITS[.DIGITS] (at least one digit) and a unit of Go's ParseDuration.
bool duration_spelling(std::string_view s) {
    if (s == "0") return true;
    std::size_t digits = take_digits(s);
    if (!s.empty() && s[0] == '.') {
        s.remove_prefix(1);
        digits += take_digits(s);
    }
    return digits > 0 && one_of(s, {"ns", "us", "µs", "ms", "s", "m", "h"});
}

void fuzz_size(std::string_view text) {
    std::uint64_t bytes = 0;
    try {
        bytes = ipc::parse_size(text);
    } catch (const std::invalid_argument&) {
        return;
    }
    check(size_spelling(text));
    (void)ipc::format_size(bytes);
    check(ipc::parse_size(std::to_string(bytes)) == bytes);  // "65536" is 64K
}

void fuzz_duration(std::string_view text) {
    std::chrono::nanoseconds d{};
    try {
        d = ipc::parse_duration(text);
    } catch (const std::invalid_argument&) {
        return;
    }
    check(duration_spelling(text));
    check(d.count() >= 0);
    (void)ipc::format_duration(d);
    check(ipc::parse_duration(std::to_string(d.count()) + "ns") == d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    fuzz_size(text);
    fuzz_duration(text);
    return 0;
}
