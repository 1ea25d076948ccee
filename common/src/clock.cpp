#include "ipc/clock.hpp"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "ipc/error.hpp"

namespace ipc {

steady::time_point deadline_after(std::chrono::nanoseconds timeout) {
    if (timeout.count() == 0) return never;
    const auto now = steady::now();
    // A timeout of centuries ("--drain-timeout 2562047h") would overflow the int64 count of
    // nanoseconds, and wrap to a deadline long past: it is no deadline at all.
    if (timeout >= never - now) return never;
    return now + timeout;
}

int ms_until(steady::time_point t) {
    if (t == never) return -1;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - steady::now()).count();
    return static_cast<int>(std::clamp<std::int64_t>(ms, 0, INT_MAX));
}

namespace {
// now + d on `clock`, as the absolute time clock_nanosleep(2) and sem_timedwait(3) want.
timespec clock_after(clockid_t clock, std::chrono::nanoseconds d) {
    timespec t{};
    if (::clock_gettime(clock, &t) == -1) die("clock_gettime");
    const auto ns = t.tv_nsec + d.count() % 1'000'000'000;
    t.tv_sec += static_cast<time_t>(d.count() / 1'000'000'000 + ns / 1'000'000'000);
    t.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    return t;
}
}  // namespace

void sleep_for(std::chrono::nanoseconds d) {
    const timespec deadline = clock_after(CLOCK_MONOTONIC, d);
    int err = 0;
    while ((err = ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nullptr)) == EINTR) {
    }
    if (err != 0) die_en(err, "clock_nanosleep");
}

timespec realtime_after(std::chrono::nanoseconds timeout) {
    return clock_after(CLOCK_REALTIME, timeout);
}

}  // namespace ipc
