// batchlog: a log service that writes lines in batches and loses none of them when stopped.
// Usage: batchlog [--batch N] [--out FILE] [--fsync] [--max-line SIZE] [--no-flush-on-signal]
//                 [--generate RATE [--count N]]   (lines from stdin unless --generate)
// Demonstrates "一个例子" (signals-and-graceful-restart.md): a logger that writes every 200 lines
// must write its partial batch on SIGINT, SIGTERM, SIGHUP or SIGQUIT. Here those signals are
// blocked and read from a signalfd in the same poll() as the input, so a signal is acted on only
// between two steps, never in the middle of one: no line read can be lost or written twice.
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
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/signals.hpp"
#include "ipc/units.hpp"

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

// Lines read and not yet written, in order: buf[begin, end). The bytes in [begin, scanned)
// have been looked at: `lines` complete lines, the last one ending just before `line_start`.
// Invariant: every byte read is either here or already in the sink, exactly once.
class pending {
  public:
    std::string_view held() const { return {buf_.data() + begin_, end_ - begin_}; }

    // Room for at least `size` more bytes at the end; fill it, then commit() what was put there.
    char* space(std::size_t size) {
        if (begin_ == end_) begin_ = end_ = scanned_ = line_start_ = 0;
        if (buf_.size() - end_ < size && begin_ > 0) {  // slide what is held to the front
            std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            scanned_ -= begin_;
            line_start_ -= begin_;
            begin_ = 0;
        }
        if (buf_.size() - end_ < size) buf_.resize(std::max(buf_.size() * 2, end_ + size));
        return buf_.data() + end_;
    }
    void commit(std::size_t n) { end_ += n; }

    // Writes every full batch of `batch` lines, each with one write(2). Stops the program if a
    // line is longer than max_line, after writing the lines before it.
    void write_full_batches(sink& out, const options& opt) {
        while (scanned_ < end_) {
            const auto* nl = static_cast<const char*>(
                std::memchr(buf_.data() + scanned_, '\n', end_ - scanned_));
            if (nl == nullptr) {
                scanned_ = end_;
                break;
            }
            const auto next = static_cast<std::size_t>(nl - buf_.data()) + 1;
            if (next - 1 - line_start_ > opt.max_line) too_long(out, opt);
            scanned_ = line_start_ = next;
            if (++lines_ == opt.batch) {
                write_batch(out, held(), scanned_ - begin_, lines_);
                begin_ = scanned_;
                lines_ = 0;
            }
        }
        if (end_ - line_start_ > opt.max_line) too_long(out, opt);
    }

    // Writes everything held, the unfinished last line too, with one write(2).
    void write_all(sink& out) {
        write_batch(out, held(), end_ - begin_, count_lines(held()));
        begin_ = end_ = scanned_ = line_start_ = 0;
        lines_ = 0;
    }

  private:
    [[noreturn]] void too_long(sink& out, const options& opt) {
        write_batch(out, held(), line_start_ - begin_, lines_);
        ipc::fail(fmt::format(
            "line {} is longer than --max-line ({}): stopped after writing the {} lines before "
            "it; the {} bytes read from its start on are not written",
            out.lines + 1, ipc::format_size(opt.max_line), out.lines, end_ - line_start_));
    }

    std::vector<char> buf_;
    std::size_t begin_ = 0;       // first byte not yet written
    std::size_t end_ = 0;         // one past the last byte read
    std::size_t scanned_ = 0;     // bytes before this were searched for newlines
    std::size_t line_start_ = 0;  // where the line after the last newline found starts
    std::uint64_t lines_ = 0;  // complete lines in [begin, scanned): reaches opt.batch, is written
};

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
        out.owned.reset(::open(opt.out.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
        if (!out.owned) ipc::die(fmt::format("open({})", opt.out));
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

// close(2) of a file can be the first to report a failed write-back (NFS, some disks).
void close_sink(sink& out) {
    if (!out.owned) return;
    if (::close(out.owned.release()) == -1) ipc::die(fmt::format("close({})", out.name));
}

void report_unfinished(std::size_t tail) {
    if (tail == 0) return;
    ipc::complain(fmt::format(
        "the last line had no newline yet: its {} bytes were written as they came", tail));
}

// The end of the input: everything read is written. Returns the exit status.
int finish_at_eof(pending& held, sink& out) {
    const auto lines = count_lines(held.held());
    const auto tail = unfinished_bytes(held.held());
    held.write_all(out);
    close_sink(out);
    ipc::complain(fmt::format("end of input: flushed {} pending lines; {} lines written in all",
                              lines, out.lines));
    report_unfinished(tail);
    return 0;
}

// A stop signal is pending: take it, then write what is held (or, with --no-flush-on-signal,
// show the notes' bug: drop it, and say how much was lost). Returns the exit status.
int finish_on_signal(int sfd, pending& held, sink& out, const options& opt) {
    signalfd_siginfo si{};
    if (ipc::read_some(sfd, &si, sizeof si) != static_cast<ssize_t>(sizeof si)) {
        ipc::die("read(signalfd)");
    }
    const auto sig = ipc::signal_name(static_cast<int>(si.ssi_signo));
    ipc::explain("read(signalfd) = {} from pid {}", sig, si.ssi_pid);
    const std::string from = si.ssi_code == SI_USER || si.ssi_code == SI_QUEUE
                                 ? fmt::format(" (from pid {})", si.ssi_pid)
                                 : std::string();
    const auto lines = count_lines(held.held());
    const auto tail = unfinished_bytes(held.held());
    if (!opt.flush_on_signal) {
        close_sink(out);
        ipc::complain(
            fmt::format("lost {} pending lines on {}{}: read, never written "
                        "(--no-flush-on-signal); {} lines written in all",
                        lines, sig, from, out.lines));
        if (tail > 0)
            ipc::complain(fmt::format("also lost: the {} bytes of an unfinished line", tail));
        return ipc::exit_failure;
    }
    held.write_all(out);
    close_sink(out);
    ipc::complain(fmt::format("flushed {} pending lines on {}{}; {} lines written in all", lines,
                              sig, from, out.lines));
    report_unfinished(tail);
    return 0;
}

// Lines from stdin until end of input or a stop signal, whichever poll() shows first.
int copy_stdin(int sfd, pending& held, sink& out, const options& opt) {
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
            held.write_all(out);
            close_sink(out);
            ipc::fail(fmt::format("{}: the {} read before were written",
                                  ipc::error_text(err, "read(stdin)"), what));
        }
        if (n == 0) return finish_at_eof(held, out);
        held.commit(static_cast<std::size_t>(n));
        held.write_full_batches(out, opt);
    }
}

// Numbered lines (1, 2, 3...: what seq prints) at opt.rate per second, until a stop signal or
// opt.count lines. Between two looks at the signalfd it makes at most generate_chunk lines.
int generate(int sfd, pending& held, sink& out, const options& opt) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    std::uint64_t next = 1;  // the number of the next line to make
    pollfd fds[] = {{sfd, POLLIN, 0}};
    for (;;) {
        std::uint64_t due = generate_chunk;
        int timeout_ms = 0;
        if (opt.rate > 0) {
            // Line k is due (k-1)/rate seconds after the start.
            const std::chrono::duration<double> elapsed = clock::now() - start;
            const auto made_by_now = static_cast<std::uint64_t>(elapsed.count() * opt.rate) + 1;
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
        held.write_full_batches(out, opt);
        if (opt.count > 0 && next > opt.count) return finish_at_eof(held, out);
    }
}

int run(int argc, char** argv) {
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

    // First of all, so that no signal can end us between a read and its write.
    const ipc::unique_fd sfd = take_stop_signals();
    sink out = open_sink(opt);
    pending held;
    return opt.generate ? generate(sfd.get(), held, out, opt)
                        : copy_stdin(sfd.get(), held, out, opt);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {  // out of memory, most likely: say so, never abort
        ipc::fail(e.what());
    }
}
