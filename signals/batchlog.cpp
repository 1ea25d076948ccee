// batchlog: a log service that writes lines in batches and loses none of them when stopped.
// Usage: batchlog [--batch N] [--out FILE] [--fsync] [--max-line SIZE] [--no-flush-on-signal]
//                 [--generate RATE [--count N]] [-x]   (lines from stdin unless --generate)
// Demonstrates "一个例子" (signals-and-graceful-restart.md): a logger that writes every 200 lines
// must write its partial batch on SIGINT, SIGTERM, SIGHUP or SIGQUIT. They are blocked and read
// from a signalfd in the poll() that waits for input: acted on between two steps, never inside.
// Try: batchlog --generate 1000 --out log.txt & sleep 1; kill $!; wc -l log.txt
// See also: sigrecv (the same signals, shown), sigsend (send them), siglist
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/signals.hpp"
#include "ipc/units.hpp"
#include "line_buffer.hpp"

namespace {

constexpr std::size_t read_size = std::size_t{128} * 1024;  // what cat(1) asks read(2) for
constexpr std::uint64_t generate_chunk = 4096;  // lines made between two looks at the signalfd
constexpr int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

struct options {
    std::uint64_t batch = 200;
    std::string out;  // empty: stdout
    bool fsync = false;
    std::uint64_t max_line = std::uint64_t{1024} * 1024;
    bool flush_on_signal = true;
    bool generate = false;
    double rate = 0;          // generated lines per second; 0: as fast as possible
    std::uint64_t count = 0;  // generated lines in all; 0: until a signal
};

std::uint64_t count_lines(std::string_view bytes) {
    return static_cast<std::uint64_t>(std::count(bytes.begin(), bytes.end(), '\n'));
}

// The bytes after the last newline: a line still being written when the input stopped.
std::size_t unfinished_bytes(std::string_view bytes) {
    const auto last = bytes.rfind('\n');
    return last == std::string_view::npos ? bytes.size() : bytes.size() - last - 1;
}

// "37 lines", or "37 lines and the 12 bytes of an unfinished line".
std::string describe(std::string_view bytes) {
    std::string text = fmt::format("{} lines", count_lines(bytes));
    if (const auto tail = unfinished_bytes(bytes); tail > 0) {
        text += fmt::format(" and the {} bytes of an unfinished line", tail);
    }
    return text;
}

// Where the batches go: stdout or --out FILE, opened O_APPEND.
struct sink {
    int fd = STDOUT_FILENO;
    ipc::unique_fd owned;  // the --out file; empty for stdout
    std::string name = "stdout";
    bool fsync = false;
    std::uint64_t lines = 0;  // lines that reached the sink
};

// Writes the first `size` bytes (`lines` lines) of `held`, everything read and not yet written,
// with one write(2), looping only if the kernel takes part of it. If the sink fails, dies saying
// how much of what was read did not reach it: a failed sink is never a silent loss.
void write_batch(sink& out, std::string_view held, std::size_t size, std::uint64_t lines) {
    const std::string_view batch = held.substr(0, size);
    std::size_t done = 0;
    while (done < batch.size()) {
        const ssize_t n = ::write(out.fd, batch.data() + done, batch.size() - done);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1) {
            const int err = errno;
            ipc::fail(fmt::format("{}: {} not written ({} lines written before)",
                                  ipc::error_text(err, fmt::format("write({})", out.name)),
                                  describe(held.substr(done)),
                                  out.lines + count_lines(batch.substr(0, done))));
        }
        if (ipc::explaining()) {
            ipc::explain("write({}, {} lines, {} bytes) = {}", out.fd,
                         count_lines(batch.substr(done)), batch.size() - done, n);
        }
        done += static_cast<std::size_t>(n);
    }
    out.lines += lines;
    if (out.fsync) {
        if (::fsync(out.fd) == -1) {
            ipc::fail(fmt::format("{}: the last {} lines may not be on disk",
                                  ipc::error_text(errno, fmt::format("fsync({})", out.name)),
                                  lines));
        }
        ipc::explain("fsync({}) = 0", out.fd);
    }
}

using signals::line_buffer;  // what was read and not yet written (line_buffer.hpp)

// Writes every full batch of --batch lines held, each with one write(2). Stops the program at
// a line longer than --max-line, after writing the lines before it.
void write_full_batches(line_buffer& held, sink& out, const options& opt) {
    while (const std::size_t size = held.next_batch(opt.batch, opt.max_line)) {
        write_batch(out, held.held(), size, opt.batch);
        held.drop(size);
    }
    if (!held.too_long(opt.max_line)) return;
    const std::size_t rest = held.held().size() - held.complete_bytes();
    write_batch(out, held.held(), held.complete_bytes(), held.complete_lines());
    ipc::fail(
        "line {} is longer than --max-line ({}): stopped after writing the {} lines before it; "
        "the {} bytes read from its start on are not written",
        out.lines + 1, ipc::format_size(opt.max_line), out.lines, rest);
}

// Writes everything held, the unfinished last line too, with one write(2).
void write_everything(line_buffer& held, sink& out) {
    write_batch(out, held.held(), held.held().size(), count_lines(held.held()));
    held.drop(held.held().size());
}

// Blocks the stop signals (so they wait, pending, instead of interrupting anything) and returns
// a signalfd that becomes readable when one is pending. Also ignores SIGPIPE: a sink whose
// reader is gone must fail with EPIPE and be reported, not kill us silently.
ipc::unique_fd take_stop_signals() {
    sigset_t set;
    ::sigemptyset(&set);
    for (const int sig : stop_signals) ::sigaddset(&set, sig);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) == -1) ipc::die("sigprocmask(SIG_BLOCK)");
    ipc::explain("sigprocmask(SIG_BLOCK, {{SIGINT, SIGTERM, SIGHUP, SIGQUIT}}) = 0");
    ipc::unique_fd sfd(::signalfd(-1, &set, SFD_CLOEXEC));
    if (!sfd) ipc::die("signalfd");
    ipc::explain("signalfd(-1, {{SIGINT, SIGTERM, SIGHUP, SIGQUIT}}) = {}", sfd.get());

    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    if (::sigaction(SIGPIPE, &ignore, nullptr) == -1) ipc::die("sigaction(SIGPIPE, SIG_IGN)");
    ipc::explain("sigaction(SIGPIPE, SIG_IGN) = 0");
    return sfd;
}

sink open_sink(const options& opt) {
    sink out;
    out.fsync = opt.fsync;
    if (!opt.out.empty()) {
        int fd = -1;  // open(2) of a FIFO waits for a reader; EINTR is retried all the same
        while ((fd = ::open(opt.out.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) ==
                   -1 &&
               errno == EINTR) {}
        if (fd == -1) ipc::die(fmt::format("open({})", opt.out));
        out.owned.reset(fd);
        out.fd = out.owned.get();
        out.name = opt.out;
        ipc::explain("open({}, O_WRONLY|O_APPEND|O_CREAT) = {}", opt.out, out.fd);
    }
    struct stat st {};
    if (::fstat(out.fd, &st) == -1) ipc::die(fmt::format("fstat({})", out.name));
    if (opt.fsync && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        ipc::usage_error(
            fmt::format("--fsync: {} is not a file: a pipe or a terminal has "
                        "nothing to sync (use --out FILE)",
                        out.name));
    }
    return out;
}

// close(2) of a file can be the first to report a failed write-back (NFS, some disks). EINTR
// is no such report, and close is never retried: the descriptor is gone either way.
void close_sink(sink& out) {
    if (!out.owned) return;
    if (::close(out.owned.release()) == -1 && errno != EINTR) {
        ipc::die(fmt::format("close({})", out.name));
    }
}

// Writes everything held, the unfinished last line too, closes the sink, and says so on stderr:
// "flushed 37 pending lines on SIGTERM (from pid 42); 237 lines written in all".
void flush_all(line_buffer& held, sink& out, std::string_view before, std::string_view after) {
    const auto lines = count_lines(held.held());
    const auto tail = unfinished_bytes(held.held());
    write_everything(held, out);
    close_sink(out);
    ipc::complain("{}flushed {} pending lines{}; {} lines written in all", before, lines, after,
                  out.lines);
    if (tail > 0) {
        ipc::complain("the last line had no newline yet: its {} bytes were written as they came",
                      tail);
    }
}

// A stop signal is pending: take it, then write what is held (or, with --no-flush-on-signal,
// show the notes' bug: drop it, and say how much was lost). Returns the exit status.
int finish_on_signal(int sfd, line_buffer& held, sink& out, const options& opt) {
    signalfd_siginfo si{};
    if (ipc::read_some(sfd, &si, sizeof si) != static_cast<ssize_t>(sizeof si)) {
        ipc::die("read(signalfd)");
    }
    const auto sig = ipc::signal_name(static_cast<int>(si.ssi_signo));
    ipc::explain("read(signalfd) = {} from pid {}", sig, si.ssi_pid);
    const std::string from = si.ssi_code == SI_USER || si.ssi_code == SI_QUEUE
                                 ? fmt::format(" (from pid {})", si.ssi_pid)
                                 : std::string();
    if (opt.flush_on_signal) {
        flush_all(held, out, "", fmt::format(" on {}{}", sig, from));
        return 0;
    }
    close_sink(out);
    ipc::complain(
        "lost {} pending lines on {}{}: read, never written (--no-flush-on-signal); {} lines "
        "written in all",
        count_lines(held.held()), sig, from, out.lines);
    if (const auto tail = unfinished_bytes(held.held()); tail > 0) {
        ipc::complain("also lost: the {} bytes of an unfinished line", tail);
    }
    return ipc::exit_failure;
}

// Lines from stdin until end of input or a stop signal, whichever poll() shows first.
int copy_stdin(int sfd, line_buffer& held, sink& out, const options& opt) {
    pollfd fds[] = {{sfd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    for (;;) {
        if (::poll(fds, 2, -1) == -1) {
            if (errno == EINTR) continue;
            ipc::die("poll");
        }
        // A pending signal wins over more input: stop reading, write what was read. Lines still
        // in the pipe were never read and stay there (docs/batchlog.md: "every line read").
        if (fds[0].revents != 0) return finish_on_signal(sfd, held, out, opt);
        if (fds[1].revents == 0) continue;
        const ssize_t n = ipc::read_some(STDIN_FILENO, held.space(read_size), read_size);
        ipc::explain("read(0, {}) = {}", read_size, n);
        if (n == -1) {
            const int err = errno;
            const std::string what = describe(held.held());
            write_everything(held, out);
            close_sink(out);
            ipc::fail(fmt::format("{}: the {} read before were written",
                                  ipc::error_text(err, "read(stdin)"), what));
        }
        if (n == 0) {
            flush_all(held, out, "end of input: ", "");
            return 0;
        }
        held.commit(static_cast<std::size_t>(n));
        write_full_batches(held, out, opt);
    }
}

// Numbered lines (1, 2, 3...: what seq prints) at opt.rate per second, until a stop signal or
// opt.count lines. Between two looks at the signalfd it makes at most generate_chunk lines.
int generate(int sfd, line_buffer& held, sink& out, const options& opt) {
    const auto start = ipc::steady::now();
    std::uint64_t next = 1;  // the number of the next line to make
    pollfd fds[] = {{sfd, POLLIN, 0}};
    for (;;) {
        std::uint64_t due = generate_chunk;
        int timeout_ms = 0;
        if (opt.rate > 0) {
            // Line k is due (k-1)/rate seconds after the start.
            const std::chrono::duration<double> elapsed = ipc::steady::now() - start;
            // Capped before the cast: a double past 2^64 has no uint64_t (--generate 1e25).
            const double made = std::min(elapsed.count() * opt.rate, 1e18);
            const auto made_by_now = static_cast<std::uint64_t>(made) + 1;
            due = std::min(due, made_by_now >= next ? made_by_now - next + 1 : 0);
            if (due == 0) {
                const double wait = static_cast<double>(next - 1) / opt.rate - elapsed.count();
                timeout_ms = static_cast<int>(std::ceil(std::clamp(wait, 0.0, 1.0) * 1000));
            }
        }
        if (opt.count > 0) due = std::min(due, opt.count - next + 1);
        const int ready = ::poll(fds, 1, timeout_ms);
        if (ready == -1 && errno != EINTR) ipc::die("poll");
        if (ready > 0) return finish_on_signal(sfd, held, out, opt);
        std::string lines;
        for (std::uint64_t i = 0; i < due; ++i)
            fmt::format_to(std::back_inserter(lines), "{}\n", next++);
        std::memcpy(held.space(lines.size()), lines.data(), lines.size());
        held.commit(lines.size());
        write_full_batches(held, out, opt);
        if (opt.count > 0 && next > opt.count) {
            flush_all(held, out, "end of input: ", "");  // as if the input had ended
            return 0;
        }
    }
}

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "The notes' log service: reads lines, writes them in batches of --batch lines with one\n"
        "write(2) each, and on SIGINT, SIGTERM, SIGHUP or SIGQUIT writes the partial batch and\n"
        "exits 0: every line read is written exactly once, in order, whenever the signal comes.\n"
        "Those signals are blocked and read from a signalfd in the poll() that waits for input.",
        "batchlog"};
    ipc::setup(app, "batchlog --generate 1000 --out log.txt & sleep 1; kill $!; wc -l log.txt");
    options opt;
    bool no_flush = false;
    std::int64_t batch = 200;  // signed, so that -1 is refused rather than wrapped
    std::int64_t count = 0;
    app.add_option("--batch", batch, "Lines per batch: each full batch is one write(2)")
        ->type_name("N")
        ->capture_default_str();
    app.add_option("--out", opt.out,
                   "Append the batches to FILE (open O_WRONLY|O_APPEND|O_CREAT); default stdout")
        ->type_name("FILE");
    app.add_flag("--fsync", opt.fsync, "fsync(2) the file after each batch (needs --out FILE)");
    ipc::add_size_option(app, "--max-line", opt.max_line,
                         "Longest line accepted (bytes, newline not counted): a longer one stops "
                         "batchlog with an error after the lines before it are written. Memory "
                         "held stays below about twice batch x max-line");
    app.add_flag("--no-flush-on-signal", no_flush,
                 "Show the bug the notes warn about: on a stop signal, drop the partial batch "
                 "(and say how many lines were lost), exit 1");
    auto* gen = app.add_option("--generate", opt.rate,
                               "Make numbered lines (1, 2, 3... as seq does) instead of reading "
                               "stdin: RATE lines a second, 0 = as fast as possible")
                    ->type_name("RATE");
    app.add_option("--count", count, "With --generate: stop after N lines, as at end of input")
        ->type_name("N")
        ->needs(gen);
    ipc::parse(app, argc, argv);
    if (batch < 1) ipc::usage_error("--batch: must be at least 1 line");
    if (opt.max_line == 0) ipc::usage_error("--max-line: must be at least 1 byte");
    if (!(opt.rate >= 0) || std::isinf(opt.rate)) {
        ipc::usage_error("--generate: RATE must be a number of lines a second, 0 or more");
    }
    if (app.count("--count") > 0 && count < 1) {
        ipc::usage_error("--count: must be at least 1 line (leave it out to run until a signal)");
    }
    opt.batch = static_cast<std::uint64_t>(batch);
    opt.count = static_cast<std::uint64_t>(count);
    opt.flush_on_signal = !no_flush;
    opt.generate = gen->count() > 0;
    return opt;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    // The sink first: open(2) of a FIFO waits for a reader, and a stop signal sent meanwhile must
    // end us by its default action (nothing is read yet), not wait, blocked, for that reader.
    sink out = open_sink(opt);
    // Then, before the first read, so that no signal can end us between a read and its write.
    const ipc::unique_fd sfd = take_stop_signals();
    line_buffer held;
    return opt.generate ? generate(sfd.get(), held, out, opt)
                        : copy_stdin(sfd.get(), held, out, opt);
} catch (...) {
    return ipc::internal_error();
}
