#include "ipc/text.hpp"

#include <fmt/format.h>

namespace ipc {

std::string quoted(std::string_view bytes, std::size_t max) {
    std::string out = "\"";
    for (const char c : bytes.substr(0, max)) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            default:
                if (u >= 0x20 && u < 0x7f) {
                    out += c;
                } else {
                    out += fmt::format("\\x{:02x}", u);
                }
        }
    }
    return out + (bytes.size() > max ? "\"..." : "\"");
}

}  // namespace ipc
