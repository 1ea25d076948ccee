// signals/sigsend_args.cpp: see sigsend_args.hpp.
#include "sigsend_args.hpp"

#include <climits>
#include <cstdint>

#include "ipc/units.hpp"

namespace sigsend_args {

pid_arg parse_pid(std::string_view text, bool group, bool force) {
    const auto parsed = ipc::parse_decimal<pid_t>(text);
    if (!parsed) return {};
    const pid_t pid = *parsed;
    if (pid == -1) return {pid, pid_verdict::every_process};
    if (pid <= 0 && !group) return {pid, pid_verdict::needs_group};
    if (pid == 1 && !force) return {pid, pid_verdict::needs_force};
    return {pid, pid_verdict::ok};
}

bool values_fit(int first, std::uint64_t count) {
    if (count == 0) return true;
    const auto room = static_cast<std::uint64_t>(std::int64_t{INT_MAX} - first);  // >= 0
    return count - 1 <= room;
}

}  // namespace sigsend_args
