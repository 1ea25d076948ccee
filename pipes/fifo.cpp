// fifo: named pipes beside mkfifo, cat and echo: make one, read it, write it.
// Usage: fifo make PATH [--mode 666] | fifo read PATH | fifo write PATH [TEXT...] | fifo demo [...]
// Demonstrates the named pipes (命名管道) of the notes' "管道" section (multiprocess-ipc.md):
// mkfifo, an open that waits until the other end is opened too, end of file once the last
// writer has closed, EPIPE once the reader has gone. `fifo demo` runs fifodemo, the next lesson.
// Try: fifo make p; cat p & fifo write p hello
// See also: mkfifo(1), fifodemo (the rules of FIFOs, each made to happen), cmdout (a pipe)
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
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

namespace {

std::string flag_names(int flags) {
    return (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY" : "O_RDONLY";
}

[[noreturn]] void not_a_fifo(const std::string& path) { ipc::fail("{}: not a FIFO", path); }

// mkfifo(3): a FIFO is a file with no data, only a name that two processes can open.
int make(const std::string& path, mode_t mode) {
    if (::mkfifo(path.c_str(), mode) == -1) {
        const int err = errno;
        struct stat st {};
        if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && !S_ISFIFO(st.st_mode)) {
            not_a_fifo(path);
        }
        ipc::die_en(err, fmt::format("mkfifo({}, {:04o})", path, mode));
    }
    ipc::explain("mkfifo({}, {:04o}) = 0", path, mode);
    struct stat st {};
    if (::stat(path.c_str(), &st) == -1) ipc::die(fmt::format("stat({})", path));
    const mode_t got = st.st_mode & 07777;
    ipc::say("{}: FIFO made, mode {:04o} (asked for {:04o}; the umask took away {:04o})", path, got,
             mode, mode & ~got);
    return 0;
}

// Opens an existing FIFO. stat() first, so that a file that is not a FIFO is never opened
// (a write-open would not change a regular file, but a device could mind); fstat() after, in
// case the path was replaced in between. The open waits here until the other end is opened.
ipc::unique_fd open_fifo(const std::string& path, int flags) {
    const std::string flag_name = flag_names(flags);
    struct stat st {};
    if (::stat(path.c_str(), &st) == -1) ipc::die(fmt::format("stat({})", path));
    if (!S_ISFIFO(st.st_mode)) not_a_fifo(path);
    ipc::explain("open({}, {}): waits until the other end is opened", path, flag_name);
    int fd = -1;
    do {
        fd = ::open(path.c_str(), flags | O_CLOEXEC);  // a signal may interrupt the wait: again
    } while (fd == -1 && errno == EINTR);
    if (fd == -1) ipc::die(fmt::format("open({}, {})", path, flag_name));
    ipc::unique_fd owned(fd);
    ipc::explain("open({}, {}) = {}", path, flag_name, fd);
    if (::fstat(fd, &st) == -1) ipc::die(fmt::format("fstat({})", fd));
    if (!S_ISFIFO(st.st_mode)) not_a_fifo(path);
    return owned;
}

// Reads `from` until end of file, 64 KiB at a time, and hands each piece to put().
template <typename Put>
void copy(int from, std::string_view from_name, Put put) {
    std::vector<char> buf(std::size_t{64} << 10);
    for (;;) {
        const ssize_t n = ipc::read_some(from, buf.data(), buf.size());
        if (n == -1) ipc::die(fmt::format("read({})", from_name));
        ipc::explain("read({}) = {}", from_name, n);
        if (n == 0) return;
        put(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    }
}

int read_fifo(const std::string& path) {
    const ipc::unique_fd fd = open_fifo(path, O_RDONLY);
    // End of file comes once the last writer has closed: not at the first one's close.
    copy(fd.get(), path, [](std::string_view bytes) { ipc::print(bytes); });
    return 0;
}

// A reader that goes away gives EPIPE here (ipc::start() has made SIGPIPE harmless), which is
// reported: "fifo: write(PATH): Broken pipe (EPIPE)", exit 1.
void write_to(const ipc::unique_fd& fd, const std::string& path, std::string_view bytes) {
    if (!ipc::write_all(fd.get(), bytes.data(), bytes.size())) {
        ipc::die(fmt::format("write({})", path));
    }
}

int write_fifo(const std::string& path, const std::vector<std::string>& text) {
    const ipc::unique_fd fd = open_fifo(path, O_WRONLY);
    if (text.empty()) {
        copy(STDIN_FILENO, "stdin", [&](std::string_view bytes) { write_to(fd, path, bytes); });
        return 0;
    }
    const std::string line = fmt::format("{}\n", fmt::join(text, " "));
    write_to(fd, path, line);
    ipc::explain("write({}, {} bytes): {}", fd.get(), line.size(),
                 line.size() <= PIPE_BUF ? "one atomic write (<= PIPE_BUF)" : "may be split");
    return 0;
}

// `fifo demo ARGS...` is `fifodemo ARGS...`, the program built beside this one: the demo is a
// lesson of its own (pipes/fifodemo.cpp). execv keeps our pid, so a signal sent to `fifo demo`
// reaches the demo.
[[noreturn]] void exec_demo(const std::vector<std::string>& args) {
    std::string self(PATH_MAX, '\0');
    const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size());
    if (n == -1) ipc::die("readlink(/proc/self/exe)");
    self.resize(static_cast<std::size_t>(n));
    std::string path = self.substr(0, self.rfind('/') + 1) + "fifodemo";
    std::vector<char*> argv{path.data()};
    std::string explain_flag = "-x";
    if (ipc::explaining()) argv.push_back(explain_flag.data());
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ipc::explain("execv(\"{}\")", path);
    ::execv(path.c_str(), argv.data());
    ipc::die(fmt::format("execv({})", path));
}

mode_t parse_mode(const std::string& text) {
    if (text.empty() || text.size() > 4 ||
        text.find_first_not_of("01234567") != std::string::npos) {
        ipc::usage_error(fmt::format("--mode: '{}' is not an octal mode like 600", text));
    }
    const auto mode = static_cast<mode_t>(std::stoul(text, nullptr, 8));
    if (mode > 0777) ipc::usage_error(fmt::format("--mode: {} has bits beyond 0777", text));
    return mode;
}

enum class command { make, read, write, demo };

struct options {
    command what = command::make;
    std::string path;
    mode_t mode = 0666;
    std::vector<std::string> text;  // write: the words; demo: fifodemo's arguments
};

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "Named pipes (FIFOs) beside mkfifo, cat and echo: make one, read it or write it. The "
        "opens wait until the other end is opened too. `fifo demo` runs fifodemo, which makes "
        "each rule of FIFOs happen in a private temp dir.",
        "fifo"};
    ipc::setup(app, "fifo make p; cat p & fifo write p hello");
    app.require_subcommand(1, 1);
    app.fallthrough();  // -x after the subcommand works too
    options opt;
    std::string mode_text = "666";
    auto* make_cmd = app.add_subcommand(
        "make", "Create a FIFO with mkfifo(3); the umask applies to --mode, as with mkfifo(2)");
    make_cmd->add_option("path", opt.path, "Where to make it")->required();
    make_cmd->add_option("--mode", mode_text, "Permission bits, in octal (the umask applies)")
        ->capture_default_str();
    auto* read_cmd = app.add_subcommand(
        "read", "Open a FIFO for reading (waits for a writer) and copy it to stdout until EOF");
    read_cmd->add_option("path", opt.path, "The FIFO")->required();
    auto* write_cmd = app.add_subcommand(
        "write",
        "Open a FIFO for writing (waits for a reader) and write TEXT joined by spaces plus a "
        "newline, in one write(2); or copy stdin when no TEXT is given");
    write_cmd->add_option("path", opt.path, "The FIFO")->required();
    write_cmd->add_option("text", opt.text,
                          "The words to write (use -- before words starting with -)");
    auto* demo_cmd = app.add_subcommand(
        "demo", "Run fifodemo with the arguments that follow (fifodemo --help tells them)");
    demo_cmd->prefix_command()->fallthrough(false);  // every argument after `demo` is fifodemo's
    demo_cmd->set_help_flag();                       // `fifo demo --help` too
    ipc::parse(app, argc, argv);

    if (*make_cmd) opt.mode = parse_mode(mode_text);
    if (*read_cmd) opt.what = command::read;
    if (*write_cmd) opt.what = command::write;
    if (*demo_cmd) {
        opt.what = command::demo;
        opt.text = demo_cmd->remaining();
    }
    return opt;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    switch (opt.what) {
        case command::make: return make(opt.path, opt.mode);
        case command::read: return read_fifo(opt.path);
        case command::write: return write_fifo(opt.path, opt.text);
        case command::demo: exec_demo(opt.text);
    }
    return 0;
} catch (...) {
    return ipc::internal_error();
}
