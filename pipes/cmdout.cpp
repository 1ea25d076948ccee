// cmdout: start a command with its stdout on a pipe, and read that pipe while it runs.
// Usage: cmdout [--chunk SIZE | --lines [--buffer SIZE]] [-x] -- CMD [ARGS...]
// Demonstrates the notes' "管道" section (multiprocess-ipc.md): exec.Command + StdoutPipe +
// Start, stdout.Read in small chunks until io.EOF, and bufio.Reader.ReadLine, done with
// pipe2, fork, dup2, execvp, read and waitpid.
// Try: cmdout --chunk 5 -- echo -n "command from golang."
// See also: pipeline -- ps aux '|' grep go (two commands joined by one pipe)
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/process.hpp"
#include "ipc/text.hpp"

namespace {

constexpr std::uint64_t max_size = std::uint64_t{16} << 20;  // bounds --chunk and --buffer

struct options {
    std::uint64_t chunk = 0;  // --chunk: bytes per read; 0: not given
    bool lines = false;
    std::uint64_t buffer = 4096;  // --lines: the line reader's buffer, bufio's default
    std::vector<std::string> command;
};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Run a command with its stdout on a pipe and read that pipe as the notes' Go code does:\n"
        "the whole stream (default: copied to stdout, the total on stderr), N bytes per read\n"
        "(--chunk, every read and the EOF shown), or line by line (--lines, a bufio-style\n"
        "reader). Exits with the command's status (128+n if a signal killed it; 127 if it\n"
        "was not found, 126 if it could not be run).",
        "cmdout"};
    ipc::setup(app, "cmdout --chunk 5 -- echo -n \"command from golang.\"");
    options opt;
    auto* chunk_opt = ipc::add_size_option(
        app, "--chunk", opt.chunk,
        "Read N bytes per read(2) and show each read, its size and the final EOF");
    auto* lines_opt =
        app.add_flag("--lines", opt.lines,
                     "Read through a buffered line reader (bufio.Reader) and number the lines");
    auto* buffer_opt = ipc::add_size_option(
        app, "--buffer", opt.buffer,
        "The line reader's buffer (bufio's default 4096); a longer line comes out in parts marked "
        "(isPrefix), as ReadLine returns it");
    chunk_opt->default_str("");  // off unless given
    chunk_opt->excludes(lines_opt);
    buffer_opt->needs(lines_opt);
    app.add_option("command", opt.command, "The command and its arguments (put -- before them)")
        ->required();
    ipc::parse(app, argc, argv);
    if (chunk_opt->count() > 0 && (opt.chunk == 0 || opt.chunk > max_size)) {
        ipc::usage_error("--chunk: must be 1 byte to 16M");
    }
    if (opt.buffer == 0 || opt.buffer > max_size)
        ipc::usage_error("--buffer: must be 1 byte to 16M");
    return opt;
}

// cmdout is a filter, like cat: when the reader of its stdout goes (`cmdout -- yes | head`),
// SIGPIPE ends it and the shell shows 141. ipc::start() made SIGPIPE harmless: give it its
// default action back, unless it was ignored when we started (then a write fails with EPIPE,
// which is reported, exit 1).
void die_of_sigpipe() {
    struct sigaction now {};
    if (::sigaction(SIGPIPE, nullptr, &now) == -1) ipc::die("sigaction(SIGPIPE)");
    if (now.sa_handler == SIG_IGN) return;
    if (::signal(SIGPIPE, SIG_DFL) == SIG_ERR) ipc::die("signal(SIGPIPE, SIG_DFL)");
}

// In the child: its stdout becomes the pipe's write end, then it becomes the command.
[[noreturn]] void exec_command(std::vector<char*>& argv, int out, int exec_status) {
    // (ipc::start() keeps fds 0-2 open, so the pipe is never fd 1 itself: dup2(1, 1) would
    // keep O_CLOEXEC, and stdout would be lost at exec.)
    if (::dup2(out, STDOUT_FILENO) == -1) {
        ipc::warn(fmt::format("dup2({}, 1)", out));
        ::_exit(127);
    }
    ipc::explain("dup2({}, 1); execvp(\"{}\")", out, argv[0]);
    ::execvp(argv[0], argv.data());
    const int err = errno;  // still here: exec failed; tell the parent why
    (void)ipc::write_all(exec_status, &err, sizeof err);
    ::_exit(127);
}

// Starts the command with its stdout on a new pipe (exec.Cmd's StdoutPipe + Start) and returns
// the pipe's read end. If execvp fails, the child sends its errno up a second, close-on-exec
// pipe: a successful exec closes that pipe, so the parent reads EOF there instead. Then, as a
// shell does, we exit 127 if there is no such command, 126 if it cannot be run.
ipc::unique_fd start_command(const std::vector<std::string>& command, pid_t& pid) {
    std::vector<char*> argv;  // built before fork(): the child only uses it
    for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == -1) ipc::die("pipe2");
    ipc::explain("pipe() = [{}, {}]", fds[0], fds[1]);
    ipc::unique_fd out_read(fds[0]), out_write(fds[1]);
    ipc::pipe_fds exec_status = ipc::make_pipe();
    pid = ::fork();
    if (pid == -1) ipc::die("fork");
    if (pid == 0) exec_command(argv, out_write.get(), exec_status.write.get());
    ipc::explain("fork() = {}", pid);
    out_write.reset();  // the child has its copy; ours would keep EOF from ever coming
    exec_status.write.reset();

    int err = 0;
    const ssize_t n = ipc::read_full(exec_status.read.get(), &err, sizeof err);
    if (n == -1) ipc::die("read(exec status pipe)");
    if (n == 0) {
        ipc::explain("read(exec status pipe) = 0: EOF, so execvp succeeded");
        return out_read;
    }
    (void)ipc::wait_child(pid);  // reap it: it only ran long enough to fail
    ipc::explain("read(exec status pipe) = {}: execvp failed with {}", n, ipc::errno_name(err));
    if (err == ENOENT && command[0].find('/') == std::string::npos) {
        ipc::complain("{}: command not found", command[0]);
    } else {
        ipc::warn_en(err, fmt::format("execvp({})", command[0]));
    }
    std::exit(err == ENOENT ? 127 : 126);
}

// "1 read", "4 reads".
std::string counted(std::uint64_t n, std::string_view noun) {
    return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

struct totals {
    std::uint64_t bytes = 0;
    std::uint64_t reads = 0;  // read(2) calls that returned data
    std::uint64_t lines = 0;
};

// One read(2) from the pipe, again if a signal interrupts it; 0 is end of file.
std::size_t read_pipe(int fd, char* buf, std::size_t size, totals& t) {
    const ssize_t n = ipc::read_some(fd, buf, size);
    if (n == -1) ipc::die(fmt::format("read({})", fd));
    ipc::explain("read({}, {}) = {}", fd, size, n);
    if (n > 0) {
        t.bytes += static_cast<std::uint64_t>(n);
        ++t.reads;
    }
    return static_cast<std::size_t>(n);
}

// The default: copy the bytes through to our stdout, whole and unchanged.
void copy_through(int fd, totals& t) {
    std::vector<char> buf(std::size_t{64} << 10);  // a pipe holds 64 KiB by default
    while (const std::size_t n = read_pipe(fd, buf.data(), buf.size(), t)) {
        ipc::print({buf.data(), n});
    }
}

// --chunk N: the notes' loop of stdout.Read(make([]byte, N)) until io.EOF, every read shown.
void show_chunks(int fd, std::size_t chunk, totals& t) {
    std::vector<char> buf(chunk);
    while (const std::size_t n = read_pipe(fd, buf.data(), buf.size(), t)) {
        ipc::say("read {}: {} bytes {}", t.reads, n, ipc::quoted({buf.data(), n}));
    }
    ipc::say("read {}: EOF (read returned 0: every writer has closed the pipe)", t.reads + 1);
}

// A buffered line reader over read(2), like Go's bufio.Reader: it fills its buffer with as much
// as one read returns and hands out lines from it. A line longer than the buffer comes out in
// buffer-sized parts with is_prefix set (ReadLine's isPrefix); the last part has it clear.
class line_reader {
  public:
    struct line {
        std::string_view text;  // without the '\n'; valid until the next call
        bool is_prefix;         // the buffer filled before a '\n': the line goes on
        bool newline;           // false only for a last line that ended at EOF without '\n'
    };

    line_reader(int fd, std::size_t size, totals& t) : fd_(fd), buf_(size), totals_(t) {}

    std::optional<line> read_line() {
        for (;;) {
            const char* begin = buf_.data() + start_;
            if (const void* nl = std::memchr(begin, '\n', end_ - start_)) {
                const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - begin);
                start_ += len + 1;
                return line{{begin, len}, false, true};
            }
            if (end_ - start_ == buf_.size() || (eof_ && end_ > start_)) {
                const std::size_t len = end_ - start_;
                start_ = end_;
                return line{{begin, len}, !eof_, false};
            }
            if (eof_) return std::nullopt;
            fill();
        }
    }

  private:
    void fill() {
        std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);  // keep the partial line
        end_ -= start_;
        start_ = 0;
        const std::size_t n = read_pipe(fd_, buf_.data() + end_, buf_.size() - end_, totals_);
        eof_ = n == 0;
        end_ += n;
    }

    int fd_;
    std::vector<char> buf_;
    std::size_t start_ = 0;  // buf_[start_, end_) is read but not yet handed out
    std::size_t end_ = 0;
    bool eof_ = false;
    totals& totals_;
};

// --lines: number each line as it comes, flagging the parts of a line longer than the buffer.
void show_lines(int fd, std::size_t buffer, totals& t) {
    line_reader reader(fd, buffer, t);
    bool continues = false;  // the previous part was a prefix: this part has the same number
    while (const auto line = reader.read_line()) {
        if (!continues) ++t.lines;
        ipc::say("line {}{}: {}", t.lines,
                 line->is_prefix ? " (isPrefix)" : (line->newline ? "" : " (no newline)"),
                 line->text);
        continues = line->is_prefix;
    }
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    die_of_sigpipe();

    pid_t pid = 0;
    ipc::unique_fd out = start_command(opt.command, pid);  // pipe2, fork, dup2, execvp
    totals t;
    if (opt.chunk > 0) {  // read until it returns 0
        show_chunks(out.get(), opt.chunk, t);
    } else if (opt.lines) {
        show_lines(out.get(), opt.buffer, t);
    } else {
        copy_through(out.get(), t);
    }
    out.reset();  // close: had we stopped early, the command's next write would get SIGPIPE

    const int status = ipc::wait_child(pid);  // waitpid
    ipc::explain("waitpid({}) = {}, status {:#x}", pid, pid, status);
    const std::string line_count = opt.lines ? counted(t.lines, "line") + ", " : "";
    ipc::complain("{}: {}{} in {}; {}", opt.command[0], line_count, counted(t.bytes, "byte"),
                  counted(t.reads, "read"), ipc::describe_status(status));
    return ipc::shell_status(status);
} catch (...) {
    return ipc::internal_error();
}
