// fuzz_signals: ipc::parse_signal (common/signals), which every signal a user names goes
// through (sigrecv --signals, sigsend SIG, siglist SIGNAL...), on any bytes. The first byte
// chooses whether "0" (kill's null signal) is allowed. What it accepts must be spelled as
// signals.hpp documents (digits; or letters with an optional SIG, RTMIN+DIGITS, RTMAX-DIGITS),
// be a valid signal (or 0 when allowed), and the signal's own name must parse back to it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ipc/signals.hpp"

namespace {

bool digits_only(std::string_view s) {
    if (s.empty()) return false;
    for (const char c : s) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

// A name: a letter, then letters or digits (USR1, USR2 have digits).
bool letters_only(std::string_view s) {
    if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
    for (const char c : s) {
        if ((c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9')) return false;
    }
    return true;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if ((s[i] | 0x20) != (prefix[i] | 0x20)) return false;
    }
    return true;
}

bool signal_spelling(std::string_view s) {
    if (digits_only(s)) return true;
    if (starts_with_nocase(s, "sig")) s.remove_prefix(3);
    if (starts_with_nocase(s, "rtmin+") || starts_with_nocase(s, "rtmax-")) {
        return digits_only(s.substr(6));
    }
    return letters_only(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const bool allow_null = (data[0] & 1) != 0;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    const auto number = ipc::parse_signal(text, allow_null);
    if (!number) return 0;
    if (!signal_spelling(text)) std::abort();
    if (*number == 0) {
        if (!allow_null) std::abort();
        return 0;
    }
    if (!ipc::is_valid_signal(*number)) std::abort();
    const auto info = ipc::signal_info_of(*number);
    if (!info || ipc::parse_signal(info->name) != number) std::abort();
    if (ipc::parse_signal(ipc::signal_name(*number)) != number) std::abort();
    return 0;
}
