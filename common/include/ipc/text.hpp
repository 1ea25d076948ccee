// ipc/text.hpp: bytes shown to a person, as Go's %q shows them: printable ASCII as is, the usual
// escapes (\n \t \r \" \\), anything else as \xNN. cmdout, echoclient and ipcbench show what
// they read or what differed this way.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ipc {

// `bytes` in double quotes, escaped; longer than `max`: the first `max` bytes, then "...".
[[nodiscard]] std::string quoted(std::string_view bytes, std::size_t max = std::string_view::npos);

}  // namespace ipc
