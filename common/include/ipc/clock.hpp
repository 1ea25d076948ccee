// ipc/clock.hpp: deadlines on the monotonic clock, for poll(2), epoll_wait(2) and sleeping.
//
//   auto deadline = ipc::deadline_after(10s);          // SetDeadline(now + 10s); 0s: never
//   ::poll(fds, n, ipc::ms_until(deadline));            // -1 when there is no deadline
#pragma once

#include <time.h>

#include <chrono>

namespace ipc {

using steady = std::chrono::steady_clock;
inline constexpr steady::time_point never = steady::time_point::max();

// now + timeout, or `never` for a timeout of 0 (as Go's zero deadline means none) or for one too
// far away to be counted (past steady_clock's largest time point, centuries from now).
[[nodiscard]] steady::time_point deadline_after(std::chrono::nanoseconds timeout);

// The milliseconds poll(2) or epoll_wait(2) may sleep until `t`: rounded up, so that it never
// wakes just before the deadline and spins; 0 once it has passed; -1 (no limit) for `never`.
[[nodiscard]] int ms_until(steady::time_point t);

// Sleeps for `d` with clock_nanosleep(2) to an absolute time on CLOCK_MONOTONIC, so a sleep
// that a signal interrupts (EINTR) resumes without drifting. Dies if the call fails otherwise.
void sleep_for(std::chrono::nanoseconds d);

// now + timeout on CLOCK_REALTIME, as the absolute time sem_timedwait(3), mq_timedreceive(3) and
// pthread_mutex_timedlock(3) want. Computed once, so a call that EINTR interrupts is retried
// with the same deadline and never waits longer than asked in all.
[[nodiscard]] timespec realtime_after(std::chrono::nanoseconds timeout);

}  // namespace ipc
