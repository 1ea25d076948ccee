#include "ipc/units.hpp"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <limits>
#include <stdexcept>

namespace ipc {
namespace {

std::string lower(std::string_view s) {
    std::string out;
    for (const char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Splits "12.5ms" into the number "12.5" and the unit "ms". Throws if there is no digit.
struct number_and_unit {
    std::string_view whole;     // "12"
    std::string_view fraction;  // "5"
    std::string_view unit;      // "ms"
};

number_and_unit split(std::string_view text, bool allow_fraction) {
    std::size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    number_and_unit out{text.substr(0, i), {}, {}};
    if (allow_fraction && i < text.size() && text[i] == '.') {
        const std::size_t start = ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
        out.fraction = text.substr(start, i - start);
    }
    out.unit = text.substr(i);
    if (out.whole.empty() && out.fraction.empty()) throw std::invalid_argument("no digits");
    return out;
}

// Whole digits to an integer; throws on overflow.
std::uint64_t to_u64(std::string_view digits) {
    std::uint64_t v = 0;
    for (const char c : digits) {
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
            throw std::invalid_argument("too large");
        }
        v = v * 10 + d;
    }
    return v;
}

}  // namespace

std::uint64_t parse_size(std::string_view text) {
    const auto bad = [&](std::string_view why) {
        return std::invalid_argument(fmt::format(
            "invalid size '{}' ({}): use a number with an optional K, M, G or T suffix, e.g. 64K",
            text, why));
    };
    number_and_unit parts;
    std::uint64_t value = 0;
    try {
        parts = split(text, false);
        value = to_u64(parts.whole);
    } catch (const std::invalid_argument& e) {
        throw bad(e.what());
    }
    std::string unit = lower(parts.unit);
    if (unit.size() == 3 && unit.ends_with("ib"))
        unit.resize(1);  // "KiB" -> "k"; "iB" alone is no unit (found by tests/fuzz)
    else if (unit.size() == 2 && unit.back() == 'b')
        unit.resize(1);  // "KB" -> "k"
    else if (unit == "b")
        unit.clear();
    int shift = 0;
    if (unit.empty())
        shift = 0;
    else if (unit == "k")
        shift = 10;
    else if (unit == "m")
        shift = 20;
    else if (unit == "g")
        shift = 30;
    else if (unit == "t")
        shift = 40;
    else
        throw bad(fmt::format("unknown suffix '{}'", parts.unit));
    if (shift > 0 && value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
        throw bad("too large");
    }
    return value << shift;
}

std::chrono::nanoseconds parse_duration(std::string_view text) {
    const auto bad = [&](std::string_view why) {
        return std::invalid_argument(fmt::format(
            "invalid duration '{}' ({}): use a number with a unit, e.g. 250ms or 2s", text, why));
    };
    if (text == "0") return std::chrono::nanoseconds(0);
    number_and_unit parts;
    std::uint64_t whole = 0;
    try {
        parts = split(text, true);
        whole = to_u64(parts.whole);
    } catch (const std::invalid_argument& e) {
        throw bad(e.what());
    }
    struct unit_scale {
        std::string_view name;
        std::uint64_t ns;
    };
    constexpr std::array<unit_scale, 7> units{{{"ns", 1},
                                               {"us", 1'000},
                                               {"µs", 1'000},
                                               {"ms", 1'000'000},
                                               {"s", 1'000'000'000},
                                               {"m", 60'000'000'000},
                                               {"h", 3'600'000'000'000}}};
    if (parts.unit.empty()) throw bad("missing unit");
    for (const auto& u : units) {
        if (parts.unit != u.name) continue;
        constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
        if (whole > max / u.ns) throw bad("too large");
        std::uint64_t ns = whole * u.ns;
        // The fraction, digit by digit: "1.25s" adds 2 * 100ms + 5 * 10ms.
        std::uint64_t scale = u.ns;
        for (const char c : parts.fraction) {
            scale /= 10;
            ns += static_cast<std::uint64_t>(c - '0') * scale;
        }
        if (ns > max) throw bad("too large");
        return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
    }
    throw bad(fmt::format("unknown unit '{}'", parts.unit));
}

std::string format_size(std::uint64_t bytes) {
    constexpr std::array<std::string_view, 5> names{"B", "KiB", "MiB", "GiB", "TiB"};
    std::size_t i = 0;
    auto value = static_cast<double>(bytes);
    while (value >= 1024 && i + 1 < names.size()) {
        value /= 1024;
        ++i;
    }
    if (i == 0) return fmt::format("{} B", bytes);
    return fmt::format("{:.4g} {}", value, names[i]);
}

std::string format_duration(std::chrono::nanoseconds d) {
    using namespace std::chrono;
    const auto ns = d.count();
    if (ns < 1'000) return fmt::format("{}ns", ns);
    if (ns < 1'000'000) return fmt::format("{:.4g}us", static_cast<double>(ns) / 1e3);
    if (ns < 1'000'000'000) return fmt::format("{:.4g}ms", static_cast<double>(ns) / 1e6);
    if (ns < 60'000'000'000) return fmt::format("{:.4g}s", static_cast<double>(ns) / 1e9);
    const auto m = duration_cast<minutes>(d);
    const auto s = duration_cast<seconds>(d - m);
    return fmt::format("{}m{}s", m.count(), s.count());
}

}  // namespace ipc
