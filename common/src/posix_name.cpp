#include "ipc/posix_name.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace ipc {

std::string posix_ipc_name(std::string_view text, std::size_t max_length) {
    const std::string_view base = text.starts_with('/') ? text.substr(1) : text;
    const char* why = nullptr;
    if (base.empty() || base == "." || base == "..")
        why = "a name is needed";
    else if (base.find('/') != std::string_view::npos)
        why = "no '/' after the first";
    else if (base.find('\0') != std::string_view::npos)
        why = "no NUL byte";
    else if (base.size() > max_length)
        why = "too long";
    if (why == nullptr) return fmt::format("/{}", base);
    throw std::invalid_argument(fmt::format(
        "'{}' is not a POSIX IPC name ({}): one file name of at most {} bytes, like 'note' or "
        "'/note'",
        text, why, max_length));
}

}  // namespace ipc
