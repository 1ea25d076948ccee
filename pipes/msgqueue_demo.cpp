// msgqueue demo: what a POSIX message queue does that a pipe does not, in one run.
// Usage: msgqueue demo [--block DURATION] [-x]
// Demonstrates, beside a pipe (管道, multiprocess-ipc.md): message boundaries kept, the highest
// priority first, a full queue that blocks (or EAGAIN), mq_notify waking a reader, and the
// system's limits in /proc/sys/fs/mqueue. Part of msgqueue (msgqueue.cpp: the commands).
// Try: msgqueue demo -x
// See also: msgqueue send/receive (two terminals), pipecmp and fifo (a pipe's own rules)
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/process.hpp"
#include "ipc/units.hpp"
#include "msgqueue.hpp"

namespace {

using msgqueue::queue_fd;

constexpr long max_msgs = 4;   // small, so that it fills up; at most msg_max (10 by default)
constexpr long msg_size = 64;  // every mq_receive must offer this much room

struct message {
    std::string text;
    unsigned priority = 0;
};

void put(mqd_t q, std::string_view text, unsigned priority) {
    if (const int err = msgqueue::send_message(q, text, priority, nullptr); err != 0)
        ipc::die_en(err, "mq_send");
}

message take(mqd_t q) {
    std::vector<char> buf(msg_size);
    message m;
    const ssize_t n = msgqueue::receive_message(q, buf, m.priority, nullptr);
    if (n == -1) ipc::die("mq_receive");
    m.text.assign(buf.data(), static_cast<std::size_t>(n));
    return m;
}

// A queue for this run alone, "/msgqueue-demo-PID", made with O_EXCL and unlinked at once, as a
// temporary file is: it lives on while a descriptor is open, so the way this demo ends (Ctrl-C,
// kill, a failed call) cannot leave it in /dev/mqueue. Every signal that can wait is blocked
// between mq_open and mq_unlink; only kill -9 in those two calls' window could leave the name.
queue_fd private_queue() {
    const std::string name = fmt::format("/msgqueue-demo-{}", ::getpid());
    sigset_t stops, old;
    ::sigfillset(&stops);  // the kernel leaves SIGKILL and SIGSTOP out of any mask
    if (::sigprocmask(SIG_BLOCK, &stops, &old) == -1) ipc::die("sigprocmask(SIG_BLOCK)");
    mq_attr attr{};
    attr.mq_maxmsg = max_msgs;
    attr.mq_msgsize = msg_size;
    queue_fd q{::mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &attr)};
    if (!q) ipc::die(fmt::format("mq_open({}, O_RDWR|O_CREAT|O_EXCL, 0600)", name));
    ipc::explain("mq_open({}, O_RDWR|O_CREAT|O_EXCL, 0600, {{{}, {}}}) = {}", name, max_msgs,
                 msg_size, q.get());
    const std::string file = "/dev/mqueue" + name;
    const bool visible = ::access(file.c_str(), F_OK) == 0;
    if (::mq_unlink(name.c_str()) == -1) ipc::die(fmt::format("mq_unlink({})", name));
    ipc::explain("mq_unlink({}) = 0", name);
    if (::sigprocmask(SIG_SETMASK, &old, nullptr) == -1) ipc::die("sigprocmask(SIG_SETMASK)");
    ipc::say(
        "queue {} ({} messages of at most {} bytes): {}, then mq_unlink at once; like an "
        "unlinked file it lives while a descriptor is open",
        name, max_msgs, msg_size,
        visible ? fmt::format("{} was there", file) : "/dev/mqueue is not mounted here");
    return q;
}

void boundaries(mqd_t q) {
    constexpr std::array<std::string_view, 3> words{"one", "two", "three"};
    const auto pipe = ipc::make_pipe();
    for (const auto w : words) {
        if (!ipc::write_all(pipe.write.get(), w.data(), w.size())) ipc::die("write(pipe)");
    }
    char buf[msg_size];
    const ssize_t n = ipc::read_some(pipe.read.get(), buf, sizeof buf);
    if (n == -1) ipc::die("read(pipe)");
    ipc::explain("read(pipe, {}) = {}", sizeof buf, n);
    ipc::say(
        "1. message boundaries. A pipe: write(2) \"one\", \"two\", \"three\", then one "
        "read(2) of {} bytes = {:?}: a stream of bytes",
        sizeof buf, std::string_view(buf, static_cast<std::size_t>(n)));
    for (const auto w : words) put(q, w, 0);
    std::string got;
    for (std::size_t i = 0; i < words.size(); ++i) got += fmt::format(" {:?}", take(q).text);
    ipc::say(
        "   A queue: mq_send \"one\", \"two\", \"three\", then mq_receive({} bytes) 3 "
        "times ={}: one whole message each",
        msg_size, got);
    const std::string big(msg_size + 1, 'x');
    const int err = msgqueue::send_message(q, big, 0, nullptr);
    ipc::say("   A message longer than mq_msgsize is never cut: mq_send of {} bytes = -1 {}",
             big.size(), ipc::errno_name(err));
}

void priorities(mqd_t q) {
    constexpr std::array<std::pair<std::string_view, unsigned>, 4> sent{
        {{"low", 0}, {"high", 9}, {"mid", 5}, {"high too", 9}}};
    for (const auto& [text, priority] : sent) put(q, text, priority);
    std::string got;
    for (std::size_t i = 0; i < sent.size(); ++i) {
        const message m = take(q);
        got += fmt::format(" {:?} ({})", m.text, m.priority);
    }
    ipc::say(
        "2. priorities: sent \"low\" (0), \"high\" (9), \"mid\" (5), \"high too\" (9); "
        "received{}: the highest priority first, the oldest first within one",
        got);
}

void full_queue(mqd_t q, std::chrono::nanoseconds block) {
    for (long i = 1; i <= max_msgs; ++i) put(q, fmt::format("m{}", i), 0);
    ipc::say("3. a full queue: {} of {} messages; mq_timedsend waits for room, at most {}",
             max_msgs, max_msgs, ipc::format_duration(block));
    const timespec deadline = ipc::realtime_after(block);
    const auto start = ipc::steady::now();
    const int err = msgqueue::send_message(q, "one more", 0, &deadline);
    const std::chrono::duration<double> waited = ipc::steady::now() - start;
    ipc::say("   mq_timedsend = -1 {} after {:.1f}s: nobody took a message meanwhile",
             ipc::errno_name(err), waited.count());

    mq_attr attr{};
    attr.mq_flags = O_NONBLOCK;  // the only attribute mq_setattr changes
    if (::mq_setattr(q, &attr, nullptr) == -1) ipc::die("mq_setattr(O_NONBLOCK)");
    ipc::explain("mq_setattr({}, O_NONBLOCK) = 0", q);
    const int again = msgqueue::send_message(q, "one more", 0, nullptr);
    ipc::say(
        "   with O_NONBLOCK (mq_setattr): mq_send = -1 {} at once, as write(2) on a full "
        "non-blocking pipe",
        ipc::errno_name(again));
    attr.mq_flags = 0;
    if (::mq_setattr(q, &attr, nullptr) == -1) ipc::die("mq_setattr(0)");
    for (long i = 0; i < max_msgs; ++i) (void)take(q);
}

// The reader registers with mq_notify and is woken by a signal when a message arrives in the
// empty queue. The signal is blocked and taken with sigtimedwait: no handler runs.
void notify(mqd_t q) {
    sigset_t usr1, old;
    ::sigemptyset(&usr1);
    ::sigaddset(&usr1, SIGUSR1);
    if (::sigprocmask(SIG_BLOCK, &usr1, &old) == -1) ipc::die("sigprocmask(SIG_BLOCK)");
    sigevent ev{};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 42;
    if (::mq_notify(q, &ev) == -1) ipc::die("mq_notify(SIGEV_SIGNAL, SIGUSR1)");
    ipc::explain("mq_notify({}, {{SIGEV_SIGNAL, SIGUSR1, value 42}}) = 0", q);
    const int second = ::mq_notify(q, &ev) == -1 ? errno : 0;
    ipc::say(
        "4. mq_notify: registered for SIGUSR1 (status: {}); a second mq_notify = -1 {}: one "
        "process per queue",
        msgqueue::status_line(q), ipc::errno_name(second));

    const pid_t writer = ::fork();
    if (writer == -1) ipc::die("fork");
    if (writer == 0) {  // the writer: one message into the empty queue, or its error
        const int err = msgqueue::send_message(q, "wake up", 1, nullptr);
        if (err != 0) ipc::warn_en(err, "writer: mq_send");
        ::_exit(err == 0 ? 0 : ipc::exit_failure);
    }
    ipc::explain("fork() = {}: the writer", writer);
    // The writer first: SIGUSR1 is blocked, so the notification waits, pending, meanwhile. A
    // writer that failed sent nothing, so no notification will come: end now, not 5 s later.
    const int status = ipc::wait_child(writer);
    if (WIFEXITED(status) && WEXITSTATUS(status) == ipc::exit_failure)
        std::exit(ipc::exit_failure);  // its error is said already, in its own line
    if (status != 0) ipc::fail("the writer {} {}", writer, ipc::describe_status(status));
    siginfo_t info{};
    const timespec limit{5, 0};
    int signo;
    do {
        signo = ::sigtimedwait(&usr1, &info, &limit);
    } while (signo == -1 && errno == EINTR);
    if (signo == -1) ipc::die("sigtimedwait(SIGUSR1, 5s)");  // EAGAIN: no notification came
    const message m = take(q);
    ipc::say(
        "   the writer {} ({}) sent a message: SIGUSR1 came with si_code {}, si_pid {}, "
        "si_value {}; mq_receive = {:?}",
        writer, ipc::describe_status(status),
        info.si_code == SI_MESGQ ? "SI_MESGQ" : std::to_string(info.si_code), info.si_pid,
        info.si_value.sival_int, m.text);
    ipc::say("   the registration is used up: status now {}", msgqueue::status_line(q));
    if (::sigprocmask(SIG_SETMASK, &old, nullptr) == -1) ipc::die("sigprocmask(SIG_SETMASK)");
}

void limits() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_MSGQUEUE, &rl) == -1) ipc::die("getrlimit(RLIMIT_MSGQUEUE)");
    ipc::say(
        "5. limits (/proc/sys/fs/mqueue): msg_max {} messages and msgsize_max {} bytes a "
        "queue (more only with CAP_SYS_RESOURCE), queues_max {} queues",
        msgqueue::proc_limit("msg_max"), msgqueue::proc_limit("msgsize_max"),
        msgqueue::proc_limit("queues_max"));
    ipc::say(
        "   a queue made without attributes gets msg_default {} and msgsize_default {}; "
        "RLIMIT_MSGQUEUE allows {} bytes of queues per user",
        msgqueue::proc_limit("msg_default"), msgqueue::proc_limit("msgsize_default"),
        rl.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(rl.rlim_cur));
}

}  // namespace

namespace msgqueue {

int demo(std::chrono::nanoseconds block) {
    const queue_fd q = private_queue();
    boundaries(q.get());
    priorities(q.get());
    full_queue(q.get(), block);
    notify(q.get());
    limits();
    return 0;
}

}  // namespace msgqueue
