// fuzz_framer: the echo servers' line framer (sockets/framer.hpp: echo::framer, shared by
// echoserver, echoloop and sockets' unit test), on any bytes cut into reads of any size.
// Checked: what comes back is exactly what went in, whole lines first, in order; each echoed
// line ends in '\n' and none is longer than max_line; units counts them; a refused line is one
// that really was too long.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sockets/framer.hpp"

namespace {
void check(bool ok) {
    if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const bool lines = (data[0] & 1) == 0;          // false: unixpacket, one read is one message
    const std::size_t max_line = data[1] % 64 + 1;  // small, so that the limit is often reached
    echo::framer f(lines ? echo::framing::lines : echo::framing::messages, max_line);
    std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
    std::string in, out;
    while (!rest.empty()) {
        // Each read: a length byte, then that many bytes (what one recv(2) returned).
        const std::size_t n =
            std::min<std::size_t>(static_cast<unsigned char>(rest[0]) % 32 + 1, rest.size() - 1);
        const std::string_view chunk = rest.substr(1, n);
        rest.remove_prefix(std::min(rest.size(), n + 1));
        std::string back;
        const bool fits = f.feed(chunk, back);
        in.append(chunk);
        out.append(back);
        if (!fits) {
            // Refused: the line (or message) really was longer than max_line. Whole lines
            // went back first, so the refused one starts where the echo stops.
            const std::string_view tail = std::string_view(in).substr(lines ? out.size() : 0);
            check(lines ? tail.substr(0, tail.find('\n')).size() > max_line
                        : chunk.size() > max_line);
            return 0;
        }
        if (!lines) check(back == chunk);
    }
    const std::string last = f.finish();
    if (lines) {
        check(out + last == in);  // nothing lost, nothing added, in order
        check(out.empty() || out.back() == '\n');
        check(last.find('\n') == std::string::npos);
        const auto newlines = static_cast<std::uint64_t>(std::count(out.begin(), out.end(), '\n'));
        check(f.units() == newlines + (last.empty() ? 0 : 1));
        for (std::size_t at = 0; at < out.size();) {  // no line longer than max_line ('\n' aside)
            const std::size_t nl = out.find('\n', at);
            check(nl - at <= max_line);
            at = nl + 1;
        }
    }
    return 0;
}
