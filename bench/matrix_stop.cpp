// bench/matrix_stop.cpp: how an `ipcbench matrix` run ends early (matrix.hpp). SIGINT or SIGTERM
// stops it: the echo side is killed, and the client unwinds with `interrupted`. The echo side's
// death ends it: the client unwinds with `echo_died`. Both work the same way: the handlers only
// set a flag, and the client's blocked call returns EINTR (no SA_RESTART) so that it looks.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "ipc/child.hpp"
#include "ipc/error.hpp"
#include "matrix.hpp"

namespace ipcbench::matrix {
namespace {

volatile sig_atomic_t stop_signal = 0;    // the signal that stopped the run, or 0
volatile sig_atomic_t running_child = 0;  // the echo side's pid while there is one
volatile sig_atomic_t echo_gone = 0;      // SIGCHLD came while there was one
int looks_since_gone = 0;                 // the client's retries since then (not the handler's)

// Records the signal and kills the echo side: a client blocked on its answer then sees end of
// file, EPIPE or EINTR. A client that was between its look at the flag and a blocking call (a
// futex, an eventfd, a queue with no writer left) would wait for good: alarm(2) interrupts that
// call a second later.
void on_stop(int sig) {
    const int saved = errno;
    stop_signal = sig;
    if (const pid_t child = running_child; child > 0) (void)::kill(child, SIGKILL);
    (void)::alarm(1);
    errno = saved;
}

// The echo side ended: after its last answer (the client has it, or will find it at once), or
// killed mid-run (nothing more will come: a futex, a semaphore, a queue, an eventfd or a
// datagram socket has no end of file). EINTR now, then each second, tells the client to look.
void on_child(int /*sig*/) {
    const int saved = errno;
    if (running_child > 0) {
        echo_gone = 1;
        (void)::alarm(1);
    }
    errno = saved;
}

// EINTR each second, until the run has unwound or the echo side is reaped.
void on_alarm(int /*sig*/) {
    if (stop_signal != 0 || echo_gone != 0) (void)::alarm(1);
}

}  // namespace

void catch_stop_signals() {
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    for (const int sig : {SIGINT, SIGTERM, SIGALRM, SIGCHLD}) {
        sa.sa_flags = sig == SIGCHLD ? SA_NOCLDSTOP : 0;  // no SA_RESTART: EINTR, and a look
        sa.sa_handler = sig == SIGALRM ? on_alarm : sig == SIGCHLD ? on_child : on_stop;
        if (::sigaction(sig, &sa, nullptr) == -1) ipc::die("sigaction");
    }
}

void watch_echo_side(pid_t pid) { running_child = pid; }

void forget_echo_side() {
    running_child = 0;  // first: a SIGCHLD from now on is no news
    echo_gone = 0;
    looks_since_gone = 0;
    (void)::alarm(0);
}

int stop_signal_number() noexcept { return stop_signal; }
bool stop_requested() noexcept { return stop_signal != 0; }

void link::fail(const char* call) const {
    if (side_ == side::server) ipc::child::die(call, 1);
    if (stop_requested()) throw interrupted{};
    // Its end closed (EPIPE, ECONNRESET: the kernel closes a dying process's descriptors before
    // SIGCHLD), or nothing came: how the echo side ended says why.
    if (echo_gone != 0 || errno == EPIPE || errno == ECONNRESET || peer_gone()) throw echo_died{};
    ipc::die(call);
}

// Once the echo side is gone, one more try: a call whose answer arrived before the death
// returns it at once. A second EINTR (the alarm, a second later) means nothing came.
bool link::retry_eintr() const {
    if (side_ == side::server) return true;
    if (stop_requested()) return false;
    return echo_gone == 0 || ++looks_since_gone < 2;
}

bool link::peer_gone() const {
    if (side_ == side::server) return false;  // waitid sees children only; PDEATHSIG does this
    siginfo_t info{};
    const int flags = WEXITED | WNOHANG | WNOWAIT;
    return ::waitid(P_PID, static_cast<id_t>(peer_), &info, flags) == 0 && info.si_pid != 0;
}

}  // namespace ipcbench::matrix
