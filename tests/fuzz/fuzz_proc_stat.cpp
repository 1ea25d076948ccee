// fuzz_proc_stat: ipc::parse_stat and ipc::status_field (common/proc), which read what any
// process put in its name (prctl(PR_SET_NAME) takes any 15 bytes: spaces, ')', newlines), on
// any bytes. Then the same through a stat line built around a fuzzed command name, which must
// come back whole, whatever it holds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "ipc/proc.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)ipc::parse_stat(text);
    (void)ipc::status_field(text, "SigQ");
    (void)ipc::status_field(text, "Name");

    // The kernel's own layout (proc(5)) with the first 64 bytes as the command name.
    const std::string_view comm = text.substr(0, 64);
    const std::string line = fmt::format(
        "4242 ({}) S 1 4242 4242 34816 4242 4194560 100 0 0 0 7 3 0 0 20 0 1 0 123456 1000 100 "
        "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
        comm);
    const auto st = ipc::parse_stat(line);
    if (!st || st->comm != comm || st->pid != 4242 || st->state != 'S' || st->ppid != 1 ||
        st->utime != 7 || st->stime != 3 || st->starttime != 123456) {
        std::abort();
    }
    return 0;
}
