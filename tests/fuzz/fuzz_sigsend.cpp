// fuzz_sigsend: sigsend's PID and --value checks (signals/sigsend_args.hpp), on any bytes. The
// first byte chooses --group, --force and a --count; the rest is the PID text. Checked: a PID
// is accepted only if it is plain decimal ('-' and digits: no '+', spaces or "0x") that fits,
// with kill(2)'s special values refused as sigsend.cpp says; values_fit says exactly whether
// V+count-1 fits an int, for the PID text read as V when it is one.
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "signals/sigsend_args.hpp"

namespace {
void check(bool ok) {
    if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using sigsend_args::pid_verdict;
    if (size < 1) return 0;
    const bool group = (data[0] & 1) != 0;
    const bool force = (data[0] & 2) != 0;
    const std::uint64_t count =
        (data[0] & 4) != 0 ? data[0] >> 3 : std::uint64_t{1} << (data[0] >> 3);
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

    const sigsend_args::pid_arg arg = sigsend_args::parse_pid(text, group, force);
    if (arg.verdict == pid_verdict::not_a_pid) return 0;
    // Anything else was a decimal number ('-' and digits only; leading zeros are decimal too,
    // as kill(1) reads them), and its value is what strtoll reads.
    check(!text.empty() && text != "-");
    for (std::size_t i = 0; i < text.size(); ++i)
        check((text[i] >= '0' && text[i] <= '9') || (i == 0 && text[i] == '-'));
    check(std::strtoll(std::string(text).c_str(), nullptr, 10) == arg.pid);
    switch (arg.verdict) {
        case pid_verdict::every_process: check(arg.pid == -1); break;
        case pid_verdict::needs_group: check(arg.pid <= 0 && arg.pid != -1 && !group); break;
        case pid_verdict::needs_force: check(arg.pid == 1 && !force); break;
        case pid_verdict::ok:
            check(arg.pid != -1 && (arg.pid > 0 || group) && (arg.pid != 1 || force));
            break;
        case pid_verdict::not_a_pid: break;  // returned above; named so -Wswitch sees every case
    }

    // The same number as a --value (pid_t is an int here): the last value V+count-1, in 128 bits.
    const __int128 last = static_cast<__int128>(arg.pid) + count - 1;
    check(sigsend_args::values_fit(arg.pid, count) == (count == 0 || last <= INT_MAX));
    return 0;
}
