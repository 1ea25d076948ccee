// cmdout: start a command with its stdout on a pipe, and read that pipe while it runs.
// Usage: cmdout [--chunk N | --lines [--buffer N]] [-x] -- CMD [ARGS...]
// Demonstrates the notes' "管道" section (multiprocess-ipc.md): exec.Command + StdoutPipe +
// Start, stdout.Read in small chunks until io.EOF, and bufio.Reader.ReadLine, done with
// pipe2, fork, dup2, execvp, read and waitpid.
// Try: cmdout --chunk 5 -- echo -n "command from golang."
// See also: pipeline -- ps aux '|' grep go (two commands joined by one pipe)
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
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

constexpr std::uint64_t max_size = std::uint64_t{16} << 20;  // bounds --chunk and --buffer

// Starts argv[0] with its stdout on a new pipe (exec.Cmd's StdoutPipe + Start) and returns
// the pipe's read end. If execvp fails, the child sends its errno up a second, close-on-exec
// pipe: a successful exec closes that pipe, so the parent reads EOF there instead.
// Then, as a shell does, we exit 127 if there is no such command, 126 if it cannot be run.
ipc::unique_fd start(std::vector<char*>& argv, pid_t& pid) {
    ipc::pipe_fds out = ipc::make_pipe();
    ipc::pipe_fds exec_status = ipc::make_pipe();
    pid = ::fork();
    if (pid == -1) ipc::die("fork");
    if (pid == 0) {
        const int w = out.write.get();
        // dup2(1, 1) would do nothing and keep O_CLOEXEC, losing stdout at exec.
        const int rc = w == STDOUT_FILENO ? ::fcntl(w, F_SETFD, 0) : ::dup2(w, STDOUT_FILENO);
        if (rc == -1) {
            ipc::warn(fmt::format("dup2({}, 1)", w));
            ::_exit(127);
        }
        ipc::explain("dup2({}, 1); execvp(\"{}\")", w, argv[0]);
        ::execvp(argv[0], argv.data());
        const int err = errno;
        (void)ipc::write_all(exec_status.write.get(), &err, sizeof err);
        ::_exit(127);
    }
    ipc::explain("fork() = {}", pid);
    out.write.reset();  // the child has its copy; ours would keep EOF from ever coming
    exec_status.write.reset();

    int err = 0;
    const ssize_t n = ipc::read_full(exec_status.read.get(), &err, sizeof err);
    if (n == -1) ipc::die("read(exec status pipe)");
    if (n == 0) {
        ipc::explain("read(exec status pipe) = 0: EOF, so execvp succeeded");
        return std::move(out.read);
    }
    (void)ipc::wait_child(pid);  // reap it: it only ran long enough to fail
    ipc::explain("read(exec status pipe) = {}: execvp failed with {}", n, ipc::errno_name(err));
    if (err == ENOENT && std::strchr(argv[0], '/') == nullptr) {
        ipc::complain(fmt::format("{}: command not found", argv[0]));
    } else {
        ipc::warn_en(err, fmt::format("execvp({})", argv[0]));
    }
    std::exit(err == ENOENT ? 127 : 126);
}

// Go's %q for bytes: printable ASCII as is, the rest escaped, so every byte read is visible.
std::string quoted(std::string_view bytes) {
    std::string out = "\"";
    for (const char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            default:
                if (u >= 0x20 && u < 0x7f) {
                    out += c;
                } else {
                    out += fmt::format("\\x{:02x}", u);
                }
        }
    }
    return out + "\"";
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

ssize_t read_pipe(int fd, char* buf, std::size_t size) {
    const ssize_t n = ipc::read_some(fd, buf, size);
    if (n == -1) ipc::die(fmt::format("read({})", fd));
    ipc::explain("read({}, {}) = {}", fd, size, n);
    return n;
}

// The default: copy the bytes through to our stdout, whole and unchanged.
// Returns false if our stdout failed (the error is printed): we stop reading.
bool copy_through(int fd, totals& t) {
    std::vector<char> buf(std::size_t{64} << 10);  // a pipe holds 64 KiB by default
    while (const ssize_t n = read_pipe(fd, buf.data(), buf.size())) {
        t.bytes += static_cast<std::uint64_t>(n);
        ++t.reads;
        if (!ipc::write_all(STDOUT_FILENO, buf.data(), static_cast<std::size_t>(n))) {
            ipc::warn("write(stdout)");
            return false;
        }
    }
    return true;
}

// --chunk N: the notes' loop of stdout.Read(make([]byte, N)) until io.EOF, every read shown.
void show_chunks(int fd, std::size_t chunk, totals& t) {
    std::vector<char> buf(chunk);
    for (;;) {
        const ssize_t n = read_pipe(fd, buf.data(), buf.size());
        if (n == 0) {
            fmt::print("read {}: EOF (read returned 0: every writer has closed the pipe)\n",
                       t.reads + 1);
            return;
        }
        t.bytes += static_cast<std::uint64_t>(n);
        ++t.reads;
        fmt::print("read {}: {} bytes {}\n", t.reads, n,
                   quoted({buf.data(), static_cast<std::size_t>(n)}));
    }
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
        const ssize_t n = read_pipe(fd_, buf_.data() + end_, buf_.size() - end_);
        if (n == 0) {
            eof_ = true;
            return;
        }
        end_ += static_cast<std::size_t>(n);
        totals_.bytes += static_cast<std::uint64_t>(n);
        ++totals_.reads;
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
        fmt::print("line {}{}: ", t.lines,
                   line->is_prefix ? " (isPrefix)" : (line->newline ? "" : " (no newline)"));
        (void)std::fwrite(line->text.data(), 1, line->text.size(), stdout);
        (void)std::fputc('\n', stdout);
        continues = line->is_prefix;
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Run a command with its stdout on a pipe and read that pipe as the notes' Go code does:\n"
        "the whole stream (default: copied to stdout, the total on stderr), N bytes per read\n"
        "(--chunk, every read and the EOF shown), or line by line (--lines, a bufio-style\n"
        "reader). Exits with the command's status (128+n if a signal killed it; 127 if it\n"
        "was not found, 126 if it could not be run).",
        "cmdout"};
    ipc::setup(app, "cmdout --chunk 5 -- echo -n \"command from golang.\"");
    std::uint64_t chunk = 0;
    bool lines = false;
    std::uint64_t buffer = 4096;
    std::vector<std::string> command;
    auto* chunk_opt = ipc::add_size_option(
        app, "--chunk", chunk,
        "Read N bytes per read(2) and show each read, its size and the final EOF");
    auto* lines_opt =
        app.add_flag("--lines", lines,
                     "Read through a buffered line reader (bufio.Reader) and number the lines");
    auto* buffer_opt = ipc::add_size_option(
        app, "--buffer", buffer,
        "The line reader's buffer (bufio's default 4096); a longer line comes out in parts marked "
        "(isPrefix), as ReadLine returns it");
    chunk_opt->default_str("");  // off unless given
    chunk_opt->excludes(lines_opt);
    buffer_opt->needs(lines_opt);
    app.add_option("command", command, "The command and its arguments (put -- before them)")
        ->required();
    ipc::parse(app, argc, argv);
    if (chunk_opt->count() > 0 && (chunk == 0 || chunk > max_size)) {
        ipc::usage_error("--chunk: must be 1 byte to 16M");
    }
    if (buffer == 0 || buffer > max_size) ipc::usage_error("--buffer: must be 1 byte to 16M");

    std::vector<char*> args;
    args.reserve(command.size() + 1);
    for (auto& a : command) args.push_back(a.data());
    args.push_back(nullptr);

    pid_t pid = 0;
    ipc::unique_fd out = start(args, pid);
    totals t;
    bool ok = true;
    if (chunk > 0) {
        show_chunks(out.get(), chunk, t);
    } else if (lines) {
        show_lines(out.get(), buffer, t);
    } else {
        ok = copy_through(out.get(), t);
    }
    if (std::fflush(stdout) == EOF || std::ferror(stdout)) {
        ipc::warn("write(stdout)");
        ok = false;
    }
    out.reset();  // if we stopped early, the command's next write gets SIGPIPE, as in a shell

    const int status = ipc::wait_child(pid);
    ipc::explain("waitpid({}) = {}, status {:#x}", pid, pid, status);
    const int code = ipc::shell_status(status);
    std::string how;
    if (WIFSIGNALED(status)) {
        how = fmt::format("killed by {} (exit {})", ipc::signal_name(WTERMSIG(status)), code);
    } else {
        how = fmt::format("exit status {}", code);
    }
    const std::string line_count = lines ? counted(t.lines, "line") + ", " : "";
    ipc::complain(fmt::format("{}: {}{} in {}; {}", command[0], line_count,
                              counted(t.bytes, "byte"), counted(t.reads, "read"), how));
    return ok ? code : ipc::exit_failure;
}
