// pipeline: the shell's `ps aux | grep go`, done by hand with pipe2, fork, dup2, execvp, waitpid.
// Usage: pipeline [-v] [--pipefail] [--relay | --splice] [--buffer SIZE] [-x] [-- CMD [ARGS...]
//        ['|' CMD [ARGS...]]...]    (no command: ps aux '|' grep go)
// Demonstrates the notes' "管道" section (multiprocess-ipc.md): all stages run at once, each
// one's stdout joined to the next one's stdin. With --relay the parent copies the bytes itself
// between the stages, as the notes' Go code does with bufio: pipes/pipeline_relay.cpp.
// Try: pipeline -x -v -- yes '|' head -n 3
// See also: cmdout (one command's output read through a pipe), fifo (a pipe with a name)
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/process.hpp"
#include "pipeline_relay.hpp"
#include "stages.hpp"

namespace {

struct stage {
    std::vector<std::string> argv;
    pid_t pid = -1;
    ipc::unique_fd report;  // read end of its exec report (see start_stage), until read
    int status = 0;  // as a shell reports it: the exit code, or 128 + the signal that killed it
};

// The pipes between stage i and stage i+1. Direct: stage i writes `upstream`, stage i+1 reads
// it. --relay: stage i writes `upstream`, the parent copies it into `downstream`, which stage
// i+1 reads. All are O_CLOEXEC, so no stage can keep one open by accident past its exec.
struct pipe_link {
    ipc::pipe_fds upstream;
    ipc::pipe_fds downstream;  // --relay only
};

struct options {
    bool pipefail = false;
    bool verbose = false;
    bool relay = false;                               // --relay, or --splice
    bool splice = false;                              // --splice
    std::uint64_t buffer = 64 * std::uint64_t{1024};  // the default pipe capacity
    std::vector<std::string> words;                   // CMD ARGS... '|' CMD ARGS...
};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Run commands as a shell pipeline, without a shell: all stages at once, each stage's "
        "stdout joined to the next one's stdin by pipe2(O_CLOEXEC) and dup2, every unused pipe "
        "end closed in every process. Stages are separated by a '|' word of their own (quote "
        "it). With no command: ps aux '|' grep go, the notes' example. Exit status: as bash's.",
        "pipeline"};
    ipc::setup(app, "pipeline -x -v -- yes '|' head -n 3");
    options opt;
    app.add_flag("--pipefail", opt.pipefail,
                 "Exit with the status of the last stage that failed (as bash's pipefail: the "
                 "rightmost non-zero one), or 0 if none did");
    app.add_flag("-v,--verbose", opt.verbose,
                 "Print each stage's status on stderr: 'grep: exited 1', "
                 "'yes: killed by SIGPIPE (141)'");
    app.add_flag("--relay", opt.relay,
                 "The parent sits between the stages and copies the bytes itself (read/write "
                 "through a bounded buffer, poll() over all links), then says how many it relayed");
    app.add_flag("--splice", opt.splice,
                 "--relay, moving the bytes with splice(2) from pipe to pipe instead of "
                 "read/write: the kernel passes the pages on, no copy through our memory");
    ipc::add_size_option(app, "--buffer", opt.buffer,
                         "--relay: the buffer of each link (--splice: the most one call moves)");
    app.add_option("command", opt.words,
                   "The stages, after '--': CMD ARGS... '|' CMD ARGS... (each run by execvp)");
    ipc::parse(app, argc, argv);
    if (opt.buffer == 0 || opt.buffer > (std::uint64_t{64} << 20)) {
        ipc::usage_error("--buffer: must be between 1 byte and 64M");
    }
    opt.relay = opt.relay || opt.splice;
    if (opt.words.empty()) opt.words = {"ps", "aux", "|", "grep", "go"};
    return opt;
}

// The stages, cut at each "|" word (stages.cpp); an empty stage is a usage error.
std::vector<stage> make_stages(const std::vector<std::string>& words) {
    const std::vector<stages::words> split = stages::split(words);
    if (const std::size_t empty = stages::first_empty(split); empty != 0) {
        ipc::usage_error(fmt::format(
            "stage {} is empty: put a command before, between and after each '|'", empty));
    }
    std::vector<stage> out(split.size());
    for (std::size_t i = 0; i < split.size(); ++i) out[i].argv = split[i];
    return out;
}

void close_fd(ipc::unique_fd& fd) {
    ipc::explain("close({})", fd.get());
    fd.reset();
}

// pipe2(2): [0] is the read end, [1] the write end. O_CLOEXEC: gone in any program we exec.
ipc::pipe_fds open_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == -1) ipc::die("pipe2");
    ipc::explain("pipe() = [{}, {}]", fds[0], fds[1]);
    return {ipc::unique_fd(fds[0]), ipc::unique_fd(fds[1])};
}

// A pipe holds 64 KiB by default, so no read or write moves more than that. A larger --buffer
// grows both pipes of a relayed link to match: fewer calls, fewer wakeups.
void grow_pipe(int fd, std::uint64_t buffer) {
    const int size = static_cast<int>(buffer);
    if (::fcntl(fd, F_SETPIPE_SZ, size) == -1) {
        ipc::warn(fmt::format("fcntl({}, F_SETPIPE_SZ, {})", fd, size));
    } else {
        ipc::explain("fcntl({}, F_SETPIPE_SZ, {}): the pipe holds --buffer", fd, size);
    }
}

// The pipes of every link, [w => r] meaning: a pipe, written at w, read at r.
std::vector<pipe_link> make_links(std::size_t count, const options& opt) {
    std::vector<pipe_link> links(count);
    for (std::size_t i = 0; i < count; ++i) {
        pipe_link& l = links[i];
        l.upstream = open_pipe();
        const int w = l.upstream.write.get(), r = l.upstream.read.get();
        if (!opt.relay) {
            ipc::explain("  link {}: stage {} -> [{} => {}] -> stage {}", i + 1, i + 1, w, r,
                         i + 2);
            continue;
        }
        l.downstream = open_pipe();
        ipc::explain("  link {}: stage {} -> [{} => {}] -> pipeline -> [{} => {}] -> stage {}",
                     i + 1, i + 1, w, r, l.downstream.write.get(), l.downstream.read.get(), i + 2);
        if (opt.buffer > 64 * 1024) {
            grow_pipe(r, opt.buffer);
            grow_pipe(l.downstream.write.get(), opt.buffer);
        }
    }
    return links;
}

// In the child: make `in` and `out` its stdin and stdout, close every pipe end it inherited,
// and exec the stage. Never returns; noexcept, so nothing can unwind into the parent's code.
[[noreturn]] void exec_stage(const std::vector<char*>& argv, int in, int out,
                             const std::vector<pipe_link>& links, const std::vector<stage>& stages,
                             int report) noexcept {
    auto dup_onto = [](int from, int onto) {
        if (from == -1) return;  // the first stage's stdin and the last one's stdout: ours
        while (::dup2(from, onto) == -1) {
            if (errno == EINTR) continue;
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
    for (const pipe_link& l : links) {
        close_end(l.upstream.read);
        close_end(l.upstream.write);
        close_end(l.downstream.read);
        close_end(l.downstream.write);
    }
    for (const stage& s : stages) close_end(s.report);  // the parent's ends, ours too
    // exec gives a caught signal its default action back, but keeps an ignored one ignored
    // (--relay ignores SIGPIPE): give the command the default, so that `yes` dies when `head`
    // is gone. That death, status 141, is part of the lesson.
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

// Forks stages[i] with its stdin and stdout on the links' pipes (the first one's stdin and the
// last one's stdout are ours). It does not wait for the exec: all stages start at once, as in
// a shell. How the parent learns that exec failed is the classic trick: a pipe whose write end
// is O_CLOEXEC. The child writes errno there only if execvp returns; a successful exec closes
// the write end, and the parent's read() returns 0 (EOF). See check_exec().
void start_stage(std::vector<stage>& stages, std::size_t i, const std::vector<pipe_link>& links,
                 bool relay) {
    const int in = i == 0  ? -1
                   : relay ? links[i - 1].downstream.read.get()
                           : links[i - 1].upstream.read.get();
    const int out = i + 1 == stages.size() ? -1 : links[i].upstream.write.get();
    stage& s = stages[i];
    std::vector<char*> argv;  // built before fork(): the child only uses it
    for (const std::string& arg : s.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ipc::pipe_fds report = open_pipe();
    ipc::explain("  exec report of stage {}: child -> [{} => {}] -> pipeline", i + 1,
                 report.write.get(), report.read.get());
    s.report = std::move(report.read);

    s.pid = ::fork();
    if (s.pid == -1) ipc::die("fork");
    if (s.pid == 0) exec_stage(argv, in, out, links, stages, report.write.get());
    ipc::explain("fork() = {}: stage {} ({})", s.pid, i + 1, s.argv[0]);
    close_fd(report.write);  // else our own copy would keep check_exec() from seeing EOF
}

// Reads stage i's exec report: EOF if it exec'ed; else its errno, which we print as a shell would.
void check_exec(stage& s, std::size_t i) {
    int err = 0;
    const ssize_t n = ipc::read_full(s.report.get(), &err, sizeof err);
    if (n == -1) ipc::die(fmt::format("read({})", s.report.get()));
    if (n == 0) {
        ipc::explain("read({}) = 0: stage {} has exec'ed", s.report.get(), i + 1);
    } else if (err == ENOENT && s.argv[0].find('/') == std::string::npos) {
        ipc::complain(fmt::format("stage {}: {}: command not found", i + 1, s.argv[0]));
    } else {
        ipc::warn_en(err, fmt::format("stage {}: {}", i + 1, s.argv[0]));
    }
    close_fd(s.report);
}

// The stages have their ends; the parent closes its copies of them. Direct: all of them, the
// parent is not part of the pipeline. --relay: all but the two it copies between, which it
// returns, non-blocking.
std::vector<relay::link> close_our_ends(std::vector<pipe_link>& links, const options& opt) {
    std::vector<relay::link> relays;
    for (pipe_link& l : links) {
        close_fd(l.upstream.write);
        if (!opt.relay) {
            close_fd(l.upstream.read);
            continue;
        }
        close_fd(l.downstream.read);
        relays.push_back(relay::make_link(std::move(l.upstream.read), std::move(l.downstream.write),
                                          opt.buffer, opt.splice));
    }
    return relays;
}

void report_relayed(const std::vector<relay::link>& relays, const std::vector<stage>& stages) {
    for (std::size_t i = 0; i < relays.size(); ++i) {
        std::string text =
            fmt::format("relayed {} bytes: stage {} ({}) -> stage {} ({})", relays[i].relayed,
                        i + 1, stages[i].argv[0], i + 2, stages[i + 1].argv[0]);
        if (relays[i].dropped > 0) {
            text += fmt::format("; {} more read after stage {} had gone", relays[i].dropped, i + 2);
        }
        ipc::complain(text);
    }
}

// waitpid(2) for stage i, again if a signal interrupts it; its status as a shell shows it.
void wait_for(stage& s, std::size_t i, bool verbose) {
    int wstatus = 0;
    while (::waitpid(s.pid, &wstatus, 0) == -1) {
        if (errno != EINTR) ipc::die(fmt::format("waitpid({})", s.pid));
    }
    ipc::explain("waitpid({}) = {}", s.pid, ipc::describe_status(wstatus));
    s.status = ipc::shell_status(wstatus);
    if (verbose) ipc::complain("stage {}: {}: {}", i + 1, s.argv[0], ipc::describe_status(wstatus));
}

// The last stage's status; --pipefail: bash's rule, the rightmost stage that failed.
int pipeline_status(const std::vector<stage>& stages, const options& opt) {
    int status = stages.back().status;
    if (opt.pipefail) {
        status = 0;
        for (const stage& s : stages) {
            if (s.status != 0) status = s.status;
        }
    }
    if (opt.verbose) {
        ipc::complain("status {} ({})", status,
                      opt.pipefail ? "--pipefail: the last stage that failed" : "the last stage's");
    }
    return status;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    std::vector<stage> stages = make_stages(opt.words);
    if (opt.relay) {
        // ipc::start() has already made SIGPIPE harmless to us; ignoring it says so outright:
        // a write to an exited stage returns EPIPE. (exec_stage gives the stages the default.)
        if (::signal(SIGPIPE, SIG_IGN) == SIG_ERR) ipc::die("signal(SIGPIPE, SIG_IGN)");
        ipc::explain("signal(SIGPIPE, SIG_IGN): a write to an exited stage returns EPIPE");
    }
    std::vector<pipe_link> links = make_links(stages.size() - 1, opt);  // pipe2
    for (std::size_t i = 0; i < stages.size(); ++i) {                   // fork, dup2, execvp
        start_stage(stages, i, links, opt.relay);
    }
    for (std::size_t i = 0; i < stages.size(); ++i) check_exec(stages[i], i);  // read
    std::vector<relay::link> relays = close_our_ends(links, opt);              // close
    if (opt.relay) relay::run(relays, opt.splice);  // poll; read/write or splice: pipeline_relay
    for (std::size_t i = 0; i < stages.size(); ++i) wait_for(stages[i], i, opt.verbose);  // waitpid
    // Once every stage has ended: our lines on stderr never cut into one of theirs.
    if (opt.relay) report_relayed(relays, stages);
    return pipeline_status(stages, opt);
} catch (...) {
    return ipc::internal_error();
}
