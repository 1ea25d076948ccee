// pipeline: the shell's `ps aux | grep go`, done by hand with pipe2, fork, dup2, execvp, waitpid.
// Usage: pipeline [-v] [--pipefail] [--relay [--buffer SIZE]] [-x] [-- CMD ARGS... ['|' CMD...]...]
// Demonstrates the notes' "管道" section (multiprocess-ipc.md): all stages run at once, each
// one's stdout joined to the next one's stdin. With --relay the parent copies the bytes itself
// between the stages, as the notes' Go code does with its bufio reader and writer.
// Try: pipeline -x -v -- yes '|' head -n 3
// See also: cmdout (one command's output read through a pipe), fifo (a pipe with a name)
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/process.hpp"
#include "ipc/signals.hpp"

namespace {

struct Stage {
    std::vector<std::string> argv;
    pid_t pid = -1;
    ipc::unique_fd report;  // read end of its exec report (see start_stage), until read
    int status = 0;  // as a shell reports it: the exit code, or 128 + the signal that killed it
};

// The pipes between stage i and stage i+1. Direct: stage i writes `upstream`, stage i+1 reads
// it. --relay: stage i writes `upstream`, the parent copies it into `downstream`, which stage
// i+1 reads. All are O_CLOEXEC, so no stage can keep one open by accident past its exec.
struct Link {
    ipc::pipe_fds upstream;
    ipc::pipe_fds downstream;  // --relay only
};

// The parent's side of one link under --relay: it reads what stage i writes and passes it on
// to stage i+1 through a buffer of bounded size, so no stage's output is ever held whole.
struct Relay {
    ipc::unique_fd from;             // read end of stage i's stdout; closed at EOF
    ipc::unique_fd to;               // write end of stage i+1's stdin; closed when the link is done
    std::size_t chunk = 0;           // the most one read() or splice() moves
    std::vector<char> buf;           // read/write: `chunk` bytes; --splice: none
    std::size_t begin = 0, end = 0;  // buf[begin, end) has been read and not yet written
    bool readable = false;           // --splice: poll() said `from` has input (or EOF)
    bool writable = false;           // --splice: poll() said `to` has room
    std::uint64_t relayed = 0;       // bytes written to stage i+1
    std::uint64_t dropped = 0;       // bytes read that stage i+1 was no longer there to take
};

// Splits the words at each literal "|" word. No words: the notes' example.
std::vector<Stage> split_stages(std::vector<std::string> words) {
    if (words.empty()) words = {"ps", "aux", "|", "grep", "go"};
    std::vector<Stage> stages(1);
    for (const std::string& word : words) {
        if (word == "|") {
            stages.emplace_back();
        } else {
            stages.back().argv.push_back(word);
        }
    }
    for (std::size_t i = 0; i < stages.size(); ++i) {
        if (stages[i].argv.empty()) {
            ipc::usage_error(fmt::format(
                "stage {} is empty: put a command before, between and after each '|'", i + 1));
        }
    }
    return stages;
}

void close_fd(ipc::unique_fd& fd) {
    ipc::explain("close({})", fd.get());
    fd.reset();
}

// A pipe we make must never land on 0, 1 or 2: a stage's dup2() onto them would then be a no-op
// and its close() would take the stream away. If we were started with one of them closed, put
// /dev/null there first (shells and sshd do the same).
void open_standard_fds() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) != -1) continue;
        if (errno != EBADF) ipc::die(fmt::format("fcntl({}, F_GETFD)", fd));
        const int null = ::open("/dev/null", O_RDWR);  // the lowest free number: fd itself
        if (null == -1) ipc::die("open(/dev/null)");
        ipc::explain("open(/dev/null) = {}: fd {} was closed", null, fd);
    }
}

// In the child: make `in` and `out` its stdin and stdout, close every pipe end it inherited,
// and exec the stage. Never returns; noexcept, so nothing can unwind into the parent's code.
[[noreturn]] void exec_stage(const std::vector<char*>& argv, int in, int out,
                             const std::vector<Link>& links, const std::vector<Stage>& stages,
                             int report) noexcept {
    auto dup_onto = [](int from, int onto) {
        if (from == -1) return;  // the first stage's stdin and the last one's stdout: ours
        if (::dup2(from, onto) == -1) {
            ipc::warn(fmt::format("dup2({}, {})", from, onto));
            ::_exit(126);
        }
        ipc::explain("dup2({}, {})", from, onto);
    };
    dup_onto(in, STDIN_FILENO);
    dup_onto(out, STDOUT_FILENO);
    // Now 0 and 1 are all this stage needs. A pipe end left open here would keep a reader from
    // ever seeing EOF (an extra writer) or a writer from ever getting SIGPIPE (an extra reader).
    // O_CLOEXEC would close them at exec anyway; closing them by hand shows which they are.
    auto close_end = [](const ipc::unique_fd& end) {
        if (!end) return;
        if (::close(end.get()) == -1) ipc::warn(fmt::format("close({})", end.get()));
        ipc::explain("close({})", end.get());
    };
    for (const Link& link : links) {
        close_end(link.upstream.read);
        close_end(link.upstream.write);
        close_end(link.downstream.read);
        close_end(link.downstream.write);
    }
    for (const Stage& stage : stages) close_end(stage.report);  // the parent's ends, ours too
    // The parent may ignore SIGPIPE (--relay) and an ignored signal stays ignored across exec:
    // give the command the default, so that `yes` dies when `head` is gone.
    if (::signal(SIGPIPE, SIG_DFL) == SIG_ERR) ipc::warn("signal(SIGPIPE, SIG_DFL)");

    ipc::explain("execvp(\"{}\", {})", argv[0],
                 std::vector<std::string_view>(argv.begin(), argv.end() - 1));
    ::execvp(argv[0], argv.data());
    // Still here: exec failed. Tell the parent why through the report pipe (its write end is
    // O_CLOEXEC, so a successful exec closes it and the parent reads EOF instead), and exit
    // with the status a shell gives: 127 for a command not found, 126 for one it cannot run.
    const int err = errno;
    ipc::explain("execvp failed: {}; write({}, errno) tells the parent", ipc::errno_name(err),
                 report);
    (void)ipc::write_all(report, &err, sizeof err);
    ::_exit(err == ENOENT ? 127 : 126);
}

// Forks stages[i] with `in` as its stdin and `out` as its stdout (-1: keep ours). It does not
// wait for the exec: all stages start at once, as in a shell.
//
// How the parent learns that exec failed is the classic trick: a pipe whose write end is
// O_CLOEXEC. The child writes errno there only if execvp returns; a successful exec closes the
// write end, and the parent's read() returns 0 (EOF). See check_exec().
void start_stage(std::vector<Stage>& stages, std::size_t i, int in, int out,
                 const std::vector<Link>& links) {
    Stage& stage = stages[i];
    std::vector<char*> argv;  // built before fork(): the child only uses it
    for (const std::string& arg : stage.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ipc::pipe_fds report = ipc::make_pipe();
    ipc::explain("  exec report of stage {}: child -> [{} => {}] -> pipeline", i + 1,
                 report.write.get(), report.read.get());
    stage.report = std::move(report.read);

    stage.pid = ::fork();
    if (stage.pid == -1) ipc::die("fork");
    if (stage.pid == 0) exec_stage(argv, in, out, links, stages, report.write.get());
    ipc::explain("fork() = {}: stage {} ({})", stage.pid, i + 1, stage.argv[0]);
    close_fd(report.write);  // else our own copy would keep check_exec() from seeing EOF
}

// Reads stage i's exec report: EOF if it exec'ed; else its errno, which we print as a shell would.
void check_exec(Stage& stage, std::size_t i) {
    int err = 0;
    const ssize_t n = ipc::read_full(stage.report.get(), &err, sizeof err);
    if (n == -1) ipc::die(fmt::format("read({})", stage.report.get()));
    if (n == 0) {
        ipc::explain("read({}) = 0: stage {} has exec'ed", stage.report.get(), i + 1);
    } else if (err == ENOENT && stage.argv[0].find('/') == std::string::npos) {
        ipc::complain(fmt::format("stage {}: {}: command not found", i + 1, stage.argv[0]));
    } else {
        ipc::warn_en(err, fmt::format("stage {}: {}", i + 1, stage.argv[0]));
    }
    close_fd(stage.report);
}

void set_nonblocking(const ipc::unique_fd& fd) {
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags == -1) ipc::die(fmt::format("fcntl({}, F_GETFL)", fd.get()));
    if (::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) == -1) {
        ipc::die(fmt::format("fcntl({}, F_SETFL, O_NONBLOCK)", fd.get()));
    }
}

// Stage i+1 has gone: drop what we hold and close both ends, so that stage i gets SIGPIPE at
// its next write, exactly as if the pipe joined them directly.
void cut(Relay& link, std::size_t i) {
    const int to = link.to.get(), from = link.from.get();
    link.to.reset();
    link.from.reset();
    // Told after the closes, so that a reader of the narration knows they have happened.
    ipc::explain("stage {} has closed its stdin (POLLERR or EPIPE on {}): close({})", i + 2, to,
                 to);
    if (from != -1) ipc::explain("close({}): stage {} gets SIGPIPE at its next write", from, i + 1);
    link.dropped += link.end - link.begin;
    link.begin = link.end = 0;
}

// One step of a link after poll(): read when the buffer is empty, write what it holds.
void step_copy(Relay& link, std::size_t i, short from_events, short to_events) {
    if (to_events & POLLERR) return cut(link, i);  // a pipe with no reader left polls POLLERR
    bool wrote_or_read = false;
    if (link.begin == link.end && (from_events & (POLLIN | POLLHUP | POLLERR))) {
        const ssize_t n = ::read(link.from.get(), link.buf.data(), link.chunk);
        if (n == -1 && errno != EAGAIN && errno != EINTR) {
            ipc::die(fmt::format("read({})", link.from.get()));
        }
        if (n == 0) {
            ipc::explain("read({}) = 0: end of stage {}'s output", link.from.get(), i + 1);
            close_fd(link.from);
        } else if (n > 0) {
            if (link.relayed == 0) ipc::explain("read({}) = {}", link.from.get(), n);
            link.end = static_cast<std::size_t>(n);
            wrote_or_read = true;
        }
    }
    // Right after a read, try the write at once (`to` is non-blocking; a full pipe says EAGAIN
    // and the next poll() waits for room): one poll() per chunk instead of two.
    if (link.begin < link.end && (wrote_or_read || (to_events & POLLOUT))) {
        const ssize_t n =
            ::write(link.to.get(), link.buf.data() + link.begin, link.end - link.begin);
        if (n == -1 && errno == EPIPE) return cut(link, i);
        if (n == -1 && errno != EAGAIN && errno != EINTR) {
            ipc::die(fmt::format("write({})", link.to.get()));
        }
        if (n > 0) {
            if (link.relayed == 0) ipc::explain("write({}) = {}", link.to.get(), n);
            link.begin += static_cast<std::size_t>(n);
            link.relayed += static_cast<std::uint64_t>(n);
            if (link.begin == link.end) link.begin = link.end = 0;
        }
    }
    if (!link.from && link.begin == link.end && link.to) {
        ipc::explain("close({}): all of stage {}'s output is passed on, stage {} sees EOF",
                     link.to.get(), i + 1, i + 2);
        link.to.reset();
    }
}

// --splice: splice(2) moves the bytes from pipe to pipe inside the kernel (page references,
// not copies); they never enter our memory. A non-blocking splice that says EAGAIN does not
// say which side was not ready, so it is called only once poll() has said both are.
void step_splice(Relay& link, std::size_t i, short from_events, short to_events) {
    if (to_events & POLLERR) return cut(link, i);
    if (from_events & (POLLIN | POLLHUP)) link.readable = true;
    if (to_events & POLLOUT) link.writable = true;
    if (!link.readable || !link.writable) return;
    link.readable = link.writable = false;  // poll() again before the next splice
    const ssize_t n = ::splice(link.from.get(), nullptr, link.to.get(), nullptr, link.chunk,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n == -1 && errno == EPIPE) return cut(link, i);
    if (n == -1 && errno != EAGAIN && errno != EINTR) {
        ipc::die(fmt::format("splice({}, {})", link.from.get(), link.to.get()));
    }
    if (n > 0 && link.relayed == 0) {
        ipc::explain("splice({}, {}) = {}", link.from.get(), link.to.get(), n);
    }
    if (n > 0) link.relayed += static_cast<std::uint64_t>(n);
    if (n == 0) {
        ipc::explain(
            "splice({}, {}) = 0: end of stage {}'s output; close({}) and close({}), "
            "stage {} sees EOF",
            link.from.get(), link.to.get(), i + 1, link.from.get(), link.to.get(), i + 2);
        link.from.reset();
        link.to.reset();
    }
}

// The parent between the stages: one poll() over every link until all are done. For each link
// it watches `from` for input while its buffer is empty and `to` for room while it is not;
// `to` is always in the set, since poll() reports POLLERR on it once stage i+1 is gone.
void relay(std::vector<Relay>& links, bool splice) {
    std::vector<pollfd> fds(2 * links.size());
    ipc::explain("relaying {} link(s) with poll(); only the first read and write of each is shown",
                 links.size());
    for (;;) {
        bool any = false;
        for (std::size_t i = 0; i < links.size(); ++i) {
            const Relay& link = links[i];
            const bool want_input = splice ? !link.readable : link.begin == link.end;
            const bool want_room = splice ? !link.writable : link.begin != link.end;
            fds[2 * i] = {link.from && want_input ? link.from.get() : -1, POLLIN, 0};
            fds[2 * i + 1] = {link.to.get(), static_cast<short>(want_room ? POLLOUT : 0), 0};
            any = any || link.to;
        }
        if (!any) return;
        if (::poll(fds.data(), fds.size(), -1) == -1) {
            if (errno == EINTR) continue;
            ipc::die("poll");
        }
        for (std::size_t i = 0; i < links.size(); ++i) {
            if (!links[i].to) continue;
            auto* step = splice ? step_splice : step_copy;
            step(links[i], i, fds[2 * i].revents, fds[2 * i + 1].revents);
        }
    }
}

// "exited 1", "killed by SIGPIPE (141)", "killed by SIGSEGV (139, core dumped)".
std::string describe(int wstatus) {
    if (WIFEXITED(wstatus)) return fmt::format("exited {}", WEXITSTATUS(wstatus));
    const int sig = WTERMSIG(wstatus);
    return fmt::format("killed by {} ({}{})", ipc::signal_name(sig), 128 + sig,
                       WCOREDUMP(wstatus) ? ", core dumped" : "");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Run commands as a shell pipeline, without a shell: all stages at once, each stage's "
        "stdout joined to the next one's stdin by pipe2(O_CLOEXEC) and dup2, every unused pipe "
        "end closed in every process. Stages are separated by a '|' word of their own (quote "
        "it). With no command: ps aux '|' grep go, the notes' example. Exit status: as bash's.",
        "pipeline"};
    ipc::setup(app, "pipeline -x -v -- yes '|' head -n 3");
    bool pipefail = false;
    bool verbose = false;
    bool relay_mode = false;
    bool splice = false;
    std::uint64_t buffer = 64 * std::uint64_t{1024};  // the default pipe capacity
    std::vector<std::string> words;
    app.add_flag("--pipefail", pipefail,
                 "Exit with the status of the last stage that failed (as bash's pipefail: the "
                 "rightmost non-zero one), or 0 if none did");
    app.add_flag("-v,--verbose", verbose,
                 "Print each stage's status on stderr: 'grep: exited 1', "
                 "'yes: killed by SIGPIPE (141)'");
    app.add_flag("--relay", relay_mode,
                 "The parent sits between the stages and copies the bytes itself (read/write "
                 "through a bounded buffer, poll() over all links), then says how many it relayed");
    app.add_flag("--splice", splice,
                 "--relay, moving the bytes with splice(2) from pipe to pipe instead of "
                 "read/write: the kernel passes the pages on, no copy through our memory");
    ipc::add_size_option(app, "--buffer", buffer,
                         "--relay: the buffer of each link (--splice: the most one call moves)");
    app.add_option("command", words,
                   "The stages, after '--': CMD ARGS... '|' CMD ARGS... (each run by execvp)");
    ipc::parse(app, argc, argv);
    if (buffer == 0 || buffer > (std::uint64_t{64} << 20)) {
        ipc::usage_error("--buffer: must be between 1 byte and 64M");
    }
    relay_mode = relay_mode || splice;
    std::vector<Stage> stages = split_stages(words);
    open_standard_fds();

    // --relay: a write to a stage that has exited must fail with EPIPE, not kill us.
    if (relay_mode) {
        if (::signal(SIGPIPE, SIG_IGN) == SIG_ERR) ipc::die("signal(SIGPIPE, SIG_IGN)");
        ipc::explain("signal(SIGPIPE, SIG_IGN): a write to an exited stage returns EPIPE");
    }
    std::vector<Link> links(stages.size() - 1);
    for (std::size_t i = 0; i < links.size(); ++i) {  // [w => r]: a pipe, written at w, read at r
        Link& link = links[i];
        link.upstream = ipc::make_pipe();
        const int w = link.upstream.write.get(), r = link.upstream.read.get();
        if (!relay_mode) {
            ipc::explain("  link {}: stage {} -> [{} => {}] -> stage {}", i + 1, i + 1, w, r,
                         i + 2);
            continue;
        }
        link.downstream = ipc::make_pipe();
        ipc::explain("  link {}: stage {} -> [{} => {}] -> pipeline -> [{} => {}] -> stage {}",
                     i + 1, i + 1, w, r, link.downstream.write.get(), link.downstream.read.get(),
                     i + 2);
        // A pipe holds 64 KiB by default, so no read or write moves more than that. A larger
        // --buffer grows both pipes of the link to match: fewer calls, fewer wakeups.
        if (buffer > 64 * 1024) {
            for (const int fd : {r, link.downstream.write.get()}) {
                const int size = static_cast<int>(buffer);
                if (::fcntl(fd, F_SETPIPE_SZ, size) == -1) {
                    ipc::warn(fmt::format("fcntl({}, F_SETPIPE_SZ, {})", fd, size));
                } else {
                    ipc::explain("fcntl({}, F_SETPIPE_SZ, {}): the pipe holds --buffer", fd, size);
                }
            }
        }
    }
    for (std::size_t i = 0; i < stages.size(); ++i) {
        const int in = i == 0       ? -1
                       : relay_mode ? links[i - 1].downstream.read.get()
                                    : links[i - 1].upstream.read.get();
        const int out = i + 1 == stages.size() ? -1 : links[i].upstream.write.get();
        start_stage(stages, i, in, out, links);
    }
    for (std::size_t i = 0; i < stages.size(); ++i) check_exec(stages[i], i);
    // The stages have their ends; the parent closes its copies of them. Direct: all of them,
    // the parent is not part of the pipeline. --relay: all but the two it copies between.
    std::vector<Relay> relays;
    for (Link& link : links) {
        close_fd(link.upstream.write);
        if (!relay_mode) {
            close_fd(link.upstream.read);
            continue;
        }
        close_fd(link.downstream.read);
        Relay& r = relays.emplace_back();
        r.from = std::move(link.upstream.read);
        r.to = std::move(link.downstream.write);
        r.chunk = buffer;
        if (!splice) r.buf.resize(r.chunk);
        set_nonblocking(r.from);
        set_nonblocking(r.to);
    }
    if (relay_mode) {
        relay(relays, splice);
        for (std::size_t i = 0; i < relays.size(); ++i) {
            std::string text =
                fmt::format("relayed {} bytes: stage {} ({}) -> stage {} ({})", relays[i].relayed,
                            i + 1, stages[i].argv[0], i + 2, stages[i + 1].argv[0]);
            if (relays[i].dropped > 0) {
                text +=
                    fmt::format("; {} more read after stage {} had gone", relays[i].dropped, i + 2);
            }
            ipc::complain(text);
        }
    }

    for (std::size_t i = 0; i < stages.size(); ++i) {
        const int wstatus = ipc::wait_child(stages[i].pid);
        ipc::explain("waitpid({}) = {}", stages[i].pid, describe(wstatus));
        stages[i].status = ipc::shell_status(wstatus);
        if (verbose) {
            ipc::complain(
                fmt::format("stage {}: {}: {}", i + 1, stages[i].argv[0], describe(wstatus)));
        }
    }
    int status = stages.back().status;
    if (pipefail) {  // bash's rule: the rightmost stage that failed, not the first
        status = 0;
        for (const Stage& stage : stages) {
            if (stage.status != 0) status = stage.status;
        }
    }
    if (verbose) {
        ipc::complain(
            fmt::format("status {} ({})", status,
                        pipefail ? "--pipefail: the last stage that failed" : "the last stage's"));
    }
    return status;
}
