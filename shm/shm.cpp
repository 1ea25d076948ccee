// shm: POSIX shared memory. Processes that map one object share its page frames, for real.
// Usage: shm write NAME TEXT [--size SIZE] | shm read NAME | shm unlink NAME | shm demo
// Demonstrates "进程的空间" in multiprocess-ipc.md (processes may share page frames: that is what
// shared memory is) with shm_open + ftruncate + mmap(MAP_SHARED), and "进程的衍生" in `demo`: after
// fork a private page gets a frame of its own on the first write (copy-on-write). The frame
// numbers come from /proc/self/pagemap, which shows them only to root (CAP_SYS_ADMIN).
// Try: shm write note hello; ls -l /dev/shm/note; shm read note; shm unlink note; shm demo
// See also: procinfo fork (copy-on-write), race (a counter in shared memory), semaphore
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "ipc/child.hpp"
#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "ipc/posix_name.hpp"
#include "ipc/process.hpp"

namespace {

struct options {
    std::string command;     // write, read, unlink or demo
    std::string name;        // "/NAME", as shm_open(3) wants it; the file is /dev/shm/NAME
    std::string text;        // what `write` puts at the start of the object
    std::uint64_t size = 0;  // the object's size for `write`; 0: the text's length
};

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

// The physical frame behind `address`, as the kernel's page table has it: the page's 64-bit
// entry in /proc/self/pagemap holds the frame number in bits 0-54 and "present" in bit 63.
// Never dies (a forked child calls it too): an error becomes the text shown instead.
std::string frame_of(const void* address) {
    const ipc::unique_fd fd{::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)};
    if (!fd) return ipc::error_text(errno, "frame unknown: open(/proc/self/pagemap)");
    const auto offset = reinterpret_cast<std::uintptr_t>(address) / page_size() * 8;
    std::uint64_t entry = 0;
    if (::pread(fd.get(), &entry, sizeof entry, static_cast<off_t>(offset)) != sizeof entry)
        return ipc::error_text(errno, "frame unknown: pread(/proc/self/pagemap)");
    const std::uint64_t frame = entry & ((std::uint64_t{1} << 55) - 1);
    if ((entry >> 63) == 0) return "not in memory (never touched)";
    if (frame == 0) return "frame hidden (pagemap shows 0: not root)";
    return fmt::format("frame {:#x}", frame);
}

// Every signal that can wait (all but SIGKILL and SIGSTOP) waits, pending, while an object is
// half made or still has a name only this run knows; restoring the mask delivers them, once the
// name is removed. kill -9 in that window can still leave the name behind: nothing can stop it.
sigset_t hold_signals() {
    sigset_t stop, old;
    ::sigfillset(&stop);  // the kernel leaves SIGKILL and SIGSTOP out of any mask
    if (::sigprocmask(SIG_BLOCK, &stop, &old) == -1) ipc::die("sigprocmask(SIG_BLOCK)");
    return old;
}
void release_signals(const sigset_t& old) {
    if (::sigprocmask(SIG_SETMASK, &old, nullptr) == -1) ipc::die("sigprocmask(SIG_SETMASK)");
}

// ipc::die() does not unwind: the name this run created is removed first, then the tool dies.
[[noreturn]] void remove_and_die(const std::string& name, const std::string& call) {
    const int err = errno;
    (void)::shm_unlink(name.c_str());
    ipc::die_en(err, call);
}

// shm_open + ftruncate + mmap: a new object (O_EXCL), or an existing one emptied (O_TRUNC).
char* create_and_map(const std::string& name, std::size_t size, bool& created) {
    const auto c = name.c_str();
    ipc::unique_fd fd{::shm_open(c, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
    created = fd.valid();
    if (!fd && errno == EEXIST) fd = ipc::unique_fd{::shm_open(c, O_RDWR | O_TRUNC | O_CLOEXEC, 0)};
    if (!fd) ipc::die(fmt::format("shm_open({}, O_RDWR|O_CREAT)", name));
    ipc::explain("shm_open({}, O_RDWR|{}, 0600) = {}", name, created ? "O_CREAT|O_EXCL" : "O_TRUNC",
                 fd.get());
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) == -1) {
        if (created) remove_and_die(name, fmt::format("ftruncate({})", size));
        ipc::die(fmt::format("ftruncate({})", size));
    }
    ipc::explain("ftruncate({}, {}) = 0", fd.get(), size);
    void* memory = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (memory == MAP_FAILED) {
        if (created) remove_and_die(name, "mmap");
        ipc::die("mmap");
    }
    ipc::explain("mmap({}, PROT_READ|PROT_WRITE, MAP_SHARED, {}) = {}", size, fd.get(), memory);
    return static_cast<char*>(memory);  // fd is closed now: the mapping keeps the object open
}

int run_write(const options& opt) {
    const std::size_t size = opt.size != 0 ? opt.size : opt.text.size();
    const sigset_t old = hold_signals();  // no signal but SIGKILL leaves it half written
    bool created = false;
    char* memory = create_and_map(opt.name, size, created);
    std::copy(opt.text.begin(), opt.text.end(), memory);  // a store to memory: no system call
    release_signals(old);
    ipc::say("/dev/shm{}: {}, {} bytes, mapped at {}", opt.name, created ? "created" : "emptied",
             size, fmt::ptr(memory));
    ipc::say("page 0: {}", frame_of(memory));
    ipc::say("wrote {} bytes: try  cat /dev/shm{}   shm read {}   shm unlink {}", opt.text.size(),
             opt.name, opt.name.substr(1), opt.name.substr(1));
    if (::munmap(memory, size) == -1) ipc::die("munmap");
    return 0;
}

int run_read(const options& opt) {
    const ipc::unique_fd fd{::shm_open(opt.name.c_str(), O_RDONLY | O_CLOEXEC, 0)};
    if (!fd) ipc::die(fmt::format("shm_open({}, O_RDONLY)", opt.name));
    ipc::explain("shm_open({}, O_RDONLY) = {}", opt.name, fd.get());
    struct stat st {};
    if (::fstat(fd.get(), &st) == -1) ipc::die("fstat");
    const auto size = static_cast<std::size_t>(st.st_size);
    ipc::explain("fstat({}) = size {}", fd.get(), size);
    if (size == 0) {
        ipc::say("/dev/shm{}: 0 bytes: nothing to map", opt.name);
        return 0;
    }
    void* memory = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
    if (memory == MAP_FAILED) ipc::die("mmap");
    ipc::explain("mmap({}, PROT_READ, MAP_SHARED, {}) = {}", size, fd.get(), memory);
    const auto* bytes = static_cast<const char*>(memory);
    const std::size_t text = ::strnlen(bytes, size);  // the first access maps page 0
    ipc::say("/dev/shm{}: {} bytes ({} of text, then zeros), mapped read-only at {}", opt.name,
             size, text, fmt::ptr(bytes));
    ipc::say("page 0: {}", frame_of(bytes));
    ipc::say("{}", std::string_view(bytes, text));
    if (::munmap(memory, size) == -1) ipc::die("munmap");
    return 0;
}

int run_unlink(const options& opt) {
    if (::shm_unlink(opt.name.c_str()) == -1) ipc::die(fmt::format("shm_unlink({})", opt.name));
    ipc::explain("shm_unlink({}) = 0", opt.name);
    ipc::say("{} removed: gone from /dev/shm; a process that still maps it keeps the memory",
             opt.name);
    return 0;
}

// ---- shm demo ----------------------------------------------------------------------------------

// What the child leaves in the shared page for the parent to read: shared memory carries data.
struct shared_page {
    char text[64];
    char child_frames[2][64];  // the child's frames of the shared and the private page
};

// A line from the forked child: a failed write ends the child with _exit(1), never with
// std::exit(), which would run the parent's atexit handlers (stdout's check) a second time.
template <typename... Args>
void child_say(fmt::format_string<Args...> format, Args&&... args) {
    const std::string line = fmt::format(format, std::forward<Args>(args)...) + "\n";
    if (!ipc::write_all(STDOUT_FILENO, line.data(), line.size()))
        ipc::child::die("write(stdout)", ipc::exit_failure);
}

// Copies `text` into a page or a field of one, cut to fit, always NUL-terminated.
void copy_text(std::span<char> to, std::string_view text) {
    const std::size_t n = std::min(text.size(), to.size() - 1);
    std::copy_n(text.data(), n, to.data());
    to[n] = '\0';
}

// The child: opens the object by its name, as an unrelated process would, and maps it again.
// It waits for a byte on `go` (the parent removes the name meanwhile), then writes both pages.
[[noreturn]] void run_child(const std::string& name, char* priv, ipc::pipe_fds& opened,
                            ipc::pipe_fds& go, const sigset_t& old_mask) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) ipc::child::die("prctl", 1);
    // The parent's held signals were inherited: the child has no name to remove, so kill works.
    if (::sigprocmask(SIG_SETMASK, &old_mask, nullptr) == -1) ipc::child::die("sigprocmask", 1);
    opened.read.reset();
    go.write.reset();  // the child's copy of the write end: the parent's death gives end of file
    const ipc::unique_fd fd{::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0)};
    if (!fd) ipc::child::die("shm_open", 1);
    void* memory = ::mmap(nullptr, page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (memory == MAP_FAILED) ipc::child::die("mmap", 1);
    auto* page = static_cast<shared_page*>(memory);
    if (!ipc::write_all(opened.write.get(), "!", 1)) ipc::child::die("write(pipe)", 1);
    char byte = 0;
    const ssize_t n = ipc::read_some(go.read.get(), &byte, 1);
    if (n == -1) ipc::child::die("read(pipe)", 1);
    if (n == 0) ::_exit(1);  // end of file: the parent ended without saying go; it has said why
    const pid_t self = ::getpid();
    const std::string text = page->text;  // read first: the first access maps the page
    child_say("child  {}: shm_open({}), mmap: shared page at {}, {}, reads \"{}\"", self, name,
              memory, frame_of(page), text);
    child_say("child  {}: private page at {}, {}, reads \"{}\"", self, fmt::ptr(priv),
              frame_of(priv), priv);
    copy_text(page->text, fmt::format("written by the child {}", self));
    copy_text({priv, page_size()}, "the child's own text");
    copy_text(page->child_frames[0], frame_of(page));
    copy_text(page->child_frames[1], frame_of(priv));
    child_say("child  {}: wrote both pages: shared page {}, private page {}", self,
              page->child_frames[0], page->child_frames[1]);
    ::_exit(0);
}

// A private page (MAP_PRIVATE|MAP_ANONYMOUS): after fork each process's writes are its own.
char* map_private_page() {
    void* memory =
        ::mmap(nullptr, page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) ipc::die("mmap(MAP_PRIVATE|MAP_ANONYMOUS)");
    ipc::explain("mmap({}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) = {}", page_size(),
                 memory);
    return static_cast<char*>(memory);
}

// What the frames showed, compared: the parent's and the child's, of each page.
void say_verdict(const std::string& shared, const std::string& child_shared,
                 const std::string& priv, const std::string& child_priv) {
    if (!shared.starts_with("frame 0x")) {
        ipc::say(
            "frames hidden: /proc/self/pagemap shows frame numbers only to CAP_SYS_ADMIN "
            "(run as root); the texts still show it: the child's write reached the shared "
            "page, not the parent's private one");
        return;
    }
    if (shared == child_shared)
        ipc::say("shared page: {} in parent and child: one page frame, two processes", shared);
    else
        ipc::say("shared page: the parent's {}, the child's {}: not one frame", shared,
                 child_shared);
    if (priv != child_priv)
        ipc::say("private page: the parent's {}, the child's {}: copied on the child's write", priv,
                 child_priv);
    else
        ipc::say("private page: {} in both: not copied", priv);
}

int run_demo() {
    const std::string name = fmt::format("/ipckit-shm-demo-{}", ::getpid());  // this run's own
    char* priv = map_private_page();
    copy_text({priv, page_size()}, "the parent's text");  // now: a frame (not the zero page)
    auto opened = ipc::make_pipe();
    auto go = ipc::make_pipe();
    const sigset_t old = hold_signals();  // until shm_unlink: a signal then waits for it
    bool created = false;
    auto* page = reinterpret_cast<shared_page*>(create_and_map(name, page_size(), created));
    copy_text(page->text, "the parent's text");
    const pid_t child = ::fork();
    if (child == -1) remove_and_die(name, "fork");
    if (child == 0) run_child(name, priv, opened, go, old);
    ipc::explain("fork() = {}", child);
    opened.write.reset();  // ours: so that a child that dies early gives end of file
    char byte = 0;
    const ssize_t n = ipc::read_some(opened.read.get(), &byte, 1);
    if (n == -1) remove_and_die(name, "read(pipe)");
    if (::shm_unlink(name.c_str()) == -1) ipc::die(fmt::format("shm_unlink({})", name));
    ipc::explain("shm_unlink({}) = 0", name);
    release_signals(old);
    if (n == 0) {  // end of file: the child has ended; how (its status) says why
        const int status = ipc::wait_child(child);
        ipc::fail("child {} {} before it mapped {}", child, ipc::describe_status(status), name);
    }

    const pid_t self = ::getpid();
    ipc::say("parent {}: shm_open({}), mmap: shared page at {}, {}", self, name, fmt::ptr(page),
             frame_of(page));
    ipc::say("parent {}: private page at {}, {}", self, fmt::ptr(priv), frame_of(priv));
    ipc::say("parent {}: fork() = {}; the child mapped {} too, so shm_unlink removed the name",
             self, child, name);
    if (!ipc::write_all(go.write.get(), "!", 1)) ipc::die("write(pipe)");  // the child goes on
    const int status = ipc::wait_child(child);
    if (status != 0) ipc::fail("child {} {}", child, ipc::describe_status(status));
    ipc::say("parent {}: shared page reads \"{}\", {}", self, page->text, frame_of(page));
    ipc::say("parent {}: private page reads \"{}\", {}", self, priv, frame_of(priv));
    say_verdict(frame_of(page), page->child_frames[0], frame_of(priv), page->child_frames[1]);
    return 0;
}

options parse_command_line(int argc, char** argv) {
    CLI::App app{
        "POSIX shared memory: shm_open(3) names an object (a file in /dev/shm), ftruncate(2) "
        "sizes it, mmap(2) with MAP_SHARED maps it. Every process that maps it uses the same "
        "page frames, which this tool reads from /proc/self/pagemap (frame numbers need root). "
        "The object stays until `shm unlink`, like a file.",
        "shm"};
    ipc::setup(app, "shm write note hello; ls -l /dev/shm/note; shm read note; shm unlink note");
    app.require_subcommand(1, 1);
    app.fallthrough();  // -x after the subcommand works too
    options opt;
    std::string name;
    auto* write = app.add_subcommand("write", "Create (or empty) NAME, size it, write TEXT in");
    write->add_option("NAME", name, "The object: /dev/shm/NAME")->required();
    write->add_option("TEXT", opt.text, "What to write at its start")->required();
    ipc::add_size_option(*write, "--size", opt.size,
                         "The object's size, at most 1G (default: the text's); the rest reads "
                         "as zeros");
    auto* read = app.add_subcommand("read", "Map NAME read-only and print its text");
    read->add_option("NAME", name, "The object: /dev/shm/NAME")->required();
    auto* unlink = app.add_subcommand("unlink", "Remove the name NAME (shm_unlink)");
    unlink->add_option("NAME", name, "The object: /dev/shm/NAME")->required();
    app.add_subcommand("demo", "Fork: one shared frame in two processes; a private page copied");
    ipc::parse(app, argc, argv);
    opt.command = app.get_subcommands().front()->get_name();
    if (opt.command == "demo") return opt;
    try {
        opt.name = ipc::posix_ipc_name(name);
    } catch (const std::invalid_argument& e) {
        ipc::usage_error(fmt::format("NAME: {}", e.what()));
    }
    if (opt.command == "write" && opt.size == 0 && opt.text.empty())
        ipc::usage_error("TEXT is empty: give --size for an object of zeros");
    if (opt.size > (std::uint64_t{1} << 30)) ipc::usage_error("--size: at most 1G, please");
    if (opt.size != 0 && opt.text.size() > opt.size)
        ipc::usage_error(
            fmt::format("TEXT has {} bytes: more than --size {}", opt.text.size(), opt.size));
    return opt;
}

}  // namespace

int main(int argc, char** argv) try {
    ipc::start();
    const options opt = parse_command_line(argc, argv);
    if (opt.command == "write") return run_write(opt);
    if (opt.command == "read") return run_read(opt);
    if (opt.command == "unlink") return run_unlink(opt);
    return run_demo();
} catch (...) {
    return ipc::internal_error();
}
