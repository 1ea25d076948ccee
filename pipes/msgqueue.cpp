// msgqueue: POSIX message queues, beside /dev/mqueue where Linux shows them.
// Usage: msgqueue create NAME [--max-msgs N] [--msg-size SIZE] [--mode MODE] [--exclusive]
//   | send NAME TEXT [-p N] [--timeout D|--nonblock] | receive NAME [-n N] [--timeout D|--nonblock]
//   | info NAME | unlink NAME | demo [--block D]
// Demonstrates the data transfer of the map that opens multiprocess-ipc.md, by pipes (管道) or
// by message queues: a queue keeps each message whole, with a priority, and outlives processes.
// Try: msgqueue create /q; msgqueue send /q hi -p 3; cat /dev/mqueue/q; msgqueue receive /q
// See also: msgqueue_demo.cpp (what a pipe does not do), fifo (a named pipe)
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/units.hpp"
#include "msgqueue.hpp"

namespace msgqueue {

queue_fd::~queue_fd() {
    if (q_ == mqd_t(-1)) return;
    const int saved = errno;
    ::mq_close(q_);  // the queue itself stays until mq_unlink and the last close
    errno = saved;
}

int send_message(mqd_t q, std::string_view text, unsigned priority, const timespec* deadline) {
    int rc;
    do {
        rc = deadline != nullptr ? ::mq_timedsend(q, text.data(), text.size(), priority, deadline)
                                 : ::mq_send(q, text.data(), text.size(), priority);
    } while (rc == -1 && errno == EINTR);
    const int err = rc == -1 ? errno : 0;
    ipc::explain("{}({}, {:?}, {} bytes, priority {}) = {}",
                 deadline != nullptr ? "mq_timedsend" : "mq_send", q, text, text.size(), priority,
                 rc == -1 ? "-1 " + ipc::errno_name(err) : "0");
    return err;
}

ssize_t receive_message(mqd_t q, std::vector<char>& buf, unsigned& priority,
                        const timespec* deadline) {
    ssize_t n;
    do {
        n = deadline != nullptr ? ::mq_timedreceive(q, buf.data(), buf.size(), &priority, deadline)
                                : ::mq_receive(q, buf.data(), buf.size(), &priority);
    } while (n == -1 && errno == EINTR);
    const int err = errno;
    ipc::explain(
        "{}({}, {} bytes of room) = {}", deadline != nullptr ? "mq_timedreceive" : "mq_receive", q,
        buf.size(),
        n == -1 ? "-1 " + ipc::errno_name(err) : fmt::format("{}, priority {}", n, priority));
    errno = err;
    return n;
}

std::string status_line(mqd_t q) {
    char buf[256];
    ssize_t n;
    do {
        n = ::pread(q, buf, sizeof buf, 0);  // the kernel writes the line afresh at offset 0
    } while (n == -1 && errno == EINTR);
    if (n == -1) ipc::die(fmt::format("pread({}) of the queue's status", q));
    std::string line;  // the kernel pads each field with blanks: keep one between fields
    for (const char c : std::string_view(buf, static_cast<std::size_t>(n))) {
        if (c != ' ' && c != '\n')
            line += c;
        else if (!line.empty() && line.back() != ' ')
            line += ' ';
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line;
}

long proc_limit(const char* name) {
    const std::string path = fmt::format("/proc/sys/fs/mqueue/{}", name);
    const ipc::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    char buf[32] = {};
    if (!fd || ipc::read_some(fd.get(), buf, sizeof buf - 1) <= 0) return -1;
    return std::strtol(buf, nullptr, 10);
}

}  // namespace msgqueue

namespace {

using msgqueue::queue_fd;

enum class command { create, send, receive, info, unlink, demo };

struct options {
    command cmd = command::info;
    std::string name;                     // "/q", checked by checked_name()
    std::string text;                     // send
    unsigned priority = 0;                // send: 0 (lowest) to MQ_PRIO_MAX - 1
    long max_msgs = 0;                    // create: 0 = /proc/sys/fs/mqueue/msg_default
    std::uint64_t msg_size = 0;           // create: 0 = msgsize_default
    mode_t mode = 0600;                   // create: the umask applies
    bool exclusive = false;               // create: O_EXCL, fail if it exists
    std::chrono::nanoseconds timeout{0};  // send, receive: 0 = wait as long as it takes
    bool nonblock = false;                // send, receive: O_NONBLOCK, EAGAIN at once
    unsigned count = 1;                   // receive: 0 = until interrupted
    std::chrono::nanoseconds block{std::chrono::seconds(1)};  // demo
};

std::string flag_names(int flags) {
    std::string out = (flags & O_ACCMODE) == O_RDONLY   ? "O_RDONLY"
                      : (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                                                        : "O_RDWR";
    if ((flags & O_CREAT) != 0) out += "|O_CREAT";
    if ((flags & O_EXCL) != 0) out += "|O_EXCL";
    if ((flags & O_NONBLOCK) != 0) out += "|O_NONBLOCK";
    return out;
}

queue_fd open_queue(const std::string& name, int flags) {
    queue_fd q{::mq_open(name.c_str(), flags)};
    if (!q) ipc::die(fmt::format("mq_open({}, {})", name, flag_names(flags)));
    ipc::explain("mq_open({}, {}) = {}", name, flag_names(flags), q.get());
    return q;
}

// What info prints, and create after it: mq_getattr, fstat and the status line.
void describe(mqd_t q, const std::string& name) {
    mq_attr attr{};
    if (::mq_getattr(q, &attr) == -1) ipc::die(fmt::format("mq_getattr({})", name));
    struct stat st {};
    if (::fstat(q, &st) == -1) ipc::die(fmt::format("fstat({})", name));
    const std::string status = msgqueue::status_line(q);
    ipc::say("{}: {} messages queued, at most {} of at most {} bytes each", name, attr.mq_curmsgs,
             attr.mq_maxmsg, attr.mq_msgsize);
    ipc::say("mq_getattr: mq_maxmsg {}, mq_msgsize {}, mq_curmsgs {}, mq_flags {}", attr.mq_maxmsg,
             attr.mq_msgsize, attr.mq_curmsgs,
             (attr.mq_flags & O_NONBLOCK) != 0 ? "O_NONBLOCK" : "0");
    ipc::say("fstat: mode {:04o}, uid {}, gid {}", st.st_mode & 07777, st.st_uid, st.st_gid);
    ipc::say("status: {}   (what cat /dev/mqueue{} shows)", status, name);
}

// EINVAL from mq_open(O_CREAT) mostly means a limit of /proc/sys/fs/mqueue: say which.
void explain_einval(const mq_attr& attr) {
    const long msg_max = msgqueue::proc_limit("msg_max");
    const long size_max = msgqueue::proc_limit("msgsize_max");
    if (msg_max == -1 || size_max == -1) return;  // /proc/sys/fs/mqueue unreadable: no hint
    if (attr.mq_maxmsg > msg_max || attr.mq_msgsize > size_max) {
        ipc::complain(
            "{} {} is over /proc/sys/fs/mqueue/{} ({}): only a process with "
            "CAP_SYS_RESOURCE may go beyond it",
            attr.mq_maxmsg > msg_max ? "--max-msgs" : "--msg-size",
            attr.mq_maxmsg > msg_max ? attr.mq_maxmsg : attr.mq_msgsize,
            attr.mq_maxmsg > msg_max ? "msg_max" : "msgsize_max",
            attr.mq_maxmsg > msg_max ? msg_max : size_max);
    }
}

int create(const options& opt) {
    // No --max-msgs nor --msg-size: NULL attributes, and the kernel takes its defaults. One of
    // them: the other from /proc/sys/fs/mqueue's defaults (mq_open takes both or neither).
    const bool given = opt.max_msgs != 0 || opt.msg_size != 0;
    mq_attr attr{};
    attr.mq_maxmsg = opt.max_msgs != 0 ? opt.max_msgs : msgqueue::proc_limit("msg_default");
    attr.mq_msgsize = opt.msg_size != 0 ? static_cast<long>(opt.msg_size)
                                        : msgqueue::proc_limit("msgsize_default");
    const std::string attr_text =
        given ? fmt::format("{{mq_maxmsg {}, mq_msgsize {}}}", attr.mq_maxmsg, attr.mq_msgsize)
              : "NULL";
    // O_EXCL first, to tell "made" from "was there": on an existing queue, mq_open(O_CREAT)
    // opens it and ignores the attributes and the mode.
    const int flags = O_RDONLY | O_CREAT | O_EXCL;
    queue_fd q{::mq_open(opt.name.c_str(), flags, opt.mode, given ? &attr : nullptr)};
    if (!q && errno == EEXIST && !opt.exclusive) {
        ipc::explain("mq_open({}, {}, {:04o}) = -1 EEXIST", opt.name, flag_names(flags), opt.mode);
        queue_fd old = open_queue(opt.name, O_RDONLY);
        ipc::say("{} exists already: its attributes and mode stay as they are", opt.name);
        describe(old.get(), opt.name);
        return 0;
    }
    if (!q) {
        const int err = errno;
        if (err == EINVAL && given) explain_einval(attr);
        ipc::die_en(err, fmt::format("mq_open({}, {}, {:04o}, {})", opt.name, flag_names(flags),
                                     opt.mode, attr_text));
    }
    ipc::explain("mq_open({}, {}, {:04o}, {}) = {}", opt.name, flag_names(flags), opt.mode,
                 attr_text, q.get());
    ipc::say("created {}: it stays until msgqueue unlink {} (or rm /dev/mqueue{}) or a reboot",
             opt.name, opt.name, opt.name);
    describe(q.get(), opt.name);
    return 0;
}

int send(const options& opt) {
    const queue_fd q = open_queue(opt.name, O_WRONLY | (opt.nonblock ? O_NONBLOCK : 0));
    const timespec deadline = ipc::realtime_after(opt.timeout);
    const bool timed = opt.timeout.count() > 0;
    const int err =
        msgqueue::send_message(q.get(), opt.text, opt.priority, timed ? &deadline : nullptr);
    if (err == EMSGSIZE) {
        mq_attr attr{};
        if (::mq_getattr(q.get(), &attr) == 0) {
            ipc::complain("{} takes messages of at most {} bytes; this one has {}", opt.name,
                          attr.mq_msgsize, opt.text.size());
        }
    }
    if (err != 0) {
        ipc::die_en(err, timed ? fmt::format("mq_timedsend({}, {})", opt.name,
                                             ipc::format_duration(opt.timeout))
                               : fmt::format("mq_send({})", opt.name));
    }
    ipc::say("sent {} bytes with priority {} to {}", opt.text.size(), opt.priority, opt.name);
    return 0;
}

int receive(const options& opt) {
    const queue_fd q = open_queue(opt.name, O_RDONLY | (opt.nonblock ? O_NONBLOCK : 0));
    mq_attr attr{};
    if (::mq_getattr(q.get(), &attr) == -1) ipc::die(fmt::format("mq_getattr({})", opt.name));
    // Room for the largest message the queue takes, or mq_receive fails with EMSGSIZE.
    std::vector<char> buf(static_cast<std::size_t>(attr.mq_msgsize));
    const bool timed = opt.timeout.count() > 0;
    for (unsigned i = 0; opt.count == 0 || i < opt.count; ++i) {
        const timespec deadline = ipc::realtime_after(opt.timeout);  // for each message
        unsigned priority = 0;
        const ssize_t n =
            msgqueue::receive_message(q.get(), buf, priority, timed ? &deadline : nullptr);
        if (n == -1) {
            ipc::die(timed ? fmt::format("mq_timedreceive({}, {})", opt.name,
                                         ipc::format_duration(opt.timeout))
                           : fmt::format("mq_receive({})", opt.name));
        }
        ipc::say("received {:?} ({} bytes, priority {})",
                 std::string_view(buf.data(), static_cast<std::size_t>(n)), n, priority);
    }
    return 0;
}

int info(const options& opt) {
    const queue_fd q = open_queue(opt.name, O_RDONLY);
    describe(q.get(), opt.name);
    return 0;
}

int unlink_queue(const options& opt) {
    if (::mq_unlink(opt.name.c_str()) == -1) ipc::die(fmt::format("mq_unlink({})", opt.name));
    ipc::explain("mq_unlink({}) = 0", opt.name);
    ipc::say(
        "unlinked {}: the name is gone; a process that has it open keeps the queue until it "
        "closes it",
        opt.name);
    return 0;
}

// POSIX IPC names (mq_overview(7)): a '/', then 1 to NAME_MAX bytes, none of them a '/'.
std::string checked_name(const std::string& text) {
    if (text.empty() || text[0] != '/') {
        ipc::usage_error(
            fmt::format("NAME: '{}' must start with '/', as in /{} (mq_overview(7))", text, text));
    }
    const std::string_view rest = std::string_view(text).substr(1);
    if (rest.empty() || rest.size() > NAME_MAX) {
        ipc::usage_error(fmt::format("NAME: '{}' needs 1 to {} characters after the '/'",
                                     text.substr(0, 40), NAME_MAX));
    }
    if (rest.find('/') != std::string_view::npos || rest == "." || rest == "..") {
        ipc::usage_error(fmt::format(
            "NAME: '{}' must be one name after the '/': no other '/', not . or ..", text));
    }
    return text;
}

mode_t parse_mode(const std::string& text) {
    if (text.empty() || text.size() > 4 || text.find_first_not_of("01234567") != std::string::npos)
        ipc::usage_error(fmt::format("--mode: '{}' is not an octal mode like 600", text));
    const auto mode = static_cast<mode_t>(std::stoul(text, nullptr, 8));
    if (mode > 0777) ipc::usage_error(fmt::format("--mode: {} has bits beyond 0777", text));
    return mode;
}

// --timeout and --nonblock, which send and receive share.
void add_wait_options(CLI::App& cmd, options& opt, const char* what) {
    auto* timeout = ipc::add_duration_option(
        cmd, "--timeout", opt.timeout,
        fmt::format("Wait at most this long {} (mq_timed*: ETIMEDOUT, exit 1)", what));
    cmd.add_flag("--nonblock", opt.nonblock,
                 "Open with O_NONBLOCK: fail at once with EAGAIN instead of waiting")
        ->excludes(timeout);
}

// The attributes and mode a new queue gets.
void add_create_options(CLI::App& create, options& opt, std::string& mode_text) {
    create.add_option("--max-msgs", opt.max_msgs, "At most N messages (default: msg_default)")
        ->check(CLI::Range(1L, LONG_MAX).description(""))
        ->type_name("N");
    ipc::add_size_option(create, "--msg-size", opt.msg_size,
                         "Messages of at most SIZE bytes (default: msgsize_default)")
        ->default_str("");
    create.add_option("--mode", mode_text, "Permission bits, in octal (the umask applies)")
        ->capture_default_str();
    create.add_flag("--exclusive", opt.exclusive, "Fail (EEXIST) if the queue exists already");
}

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "POSIX message queues: make one, send and receive messages with priorities, and "
        "see it beside /dev/mqueue; or run the demo of what a pipe does not do (message "
        "boundaries, priorities, a full queue, mq_notify, the system limits).",
        "msgqueue"};
    ipc::setup(app, "msgqueue create /q; msgqueue send /q hello --priority 3; msgqueue receive /q");
    app.require_subcommand(1, 1);
    app.fallthrough();  // -x after the subcommand works too
    options opt;
    std::string mode_text = "600";
    auto* create = app.add_subcommand("create", "mq_open(O_CREAT|O_EXCL): make a queue");
    auto* send = app.add_subcommand("send", "mq_send: put TEXT in the queue, with a priority");
    auto* receive = app.add_subcommand("receive",
                                       "mq_receive: take the oldest message of the "
                                       "highest priority (waits for one)");
    auto* info = app.add_subcommand("info", "mq_getattr, fstat and the /dev/mqueue status line");
    auto* unlink = app.add_subcommand("unlink", "mq_unlink: remove the name");
    auto* demo = app.add_subcommand("demo", "What a queue does that a pipe does not, in one run");
    for (auto* cmd : {create, send, receive, info, unlink}) {
        cmd->add_option("name", opt.name, "The queue: /name")->required();
    }
    add_create_options(*create, opt, mode_text);
    send->add_option("text", opt.text, "The message (use -- before one starting with -)")
        ->required();
    send->add_option("-p,--priority", opt.priority, "0 (lowest) to 32767")
        ->check(CLI::Range(0, MQ_PRIO_MAX - 1));
    add_wait_options(*send, opt, "for room in a full queue");
    receive->add_option("-n,--count", opt.count, "Receive N messages (0: until interrupted)")
        ->capture_default_str();
    add_wait_options(*receive, opt, "for each message");
    ipc::add_duration_option(*demo, "--block", opt.block,
                             "How long the demo waits on a full queue before ETIMEDOUT");
    ipc::parse(app, argc, argv);

    opt.cmd = *create    ? command::create
              : *send    ? command::send
              : *receive ? command::receive
              : *info    ? command::info
              : *unlink  ? command::unlink
                         : command::demo;
    if (opt.cmd == command::demo) {
        if (opt.block.count() <= 0 || opt.block > std::chrono::hours(1))
            ipc::usage_error("--block: must be more than 0 and at most 1h");
        return opt;
    }
    opt.name = checked_name(opt.name);
    opt.mode = parse_mode(mode_text);
    if (create->count("--msg-size") != 0 && opt.msg_size == 0)
        ipc::usage_error("--msg-size: must be at least 1 byte");
    if (opt.msg_size > (std::uint64_t{16} << 20))  // HARD_MSGSIZEMAX: not even root goes beyond
        ipc::usage_error("--msg-size: at most 16M, the kernel's limit even for root");
    return opt;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    switch (opt.cmd) {
        case command::create: return create(opt);
        case command::send: return send(opt);
        case command::receive: return receive(opt);
        case command::info: return info(opt);
        case command::unlink: return unlink_queue(opt);
        case command::demo: return msgqueue::demo(opt.block);
    }
    return 0;
} catch (...) {
    return ipc::internal_error();
}
