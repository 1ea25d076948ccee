// procinfo fork: copy-on-write. After fork() the child writes a variable; the parent's stays.
// Usage: procinfo fork [-x]
// Demonstrates "进程的衍生" and "进程的空间" of the notes' "进程" section (multiprocess-ipc.md):
// the child gets a copy of its parent's data, made lazily by the kernel: both see the value at
// the same virtual address and share its physical frame (/proc/self/pagemap) until the child
// writes, and then the kernel copies the page for the child.
// Try: procinfo fork; sudo procinfo fork   (the frames are shown only to CAP_SYS_ADMIN)
// See also: procinfo orphan; procinfo states; children.cpp
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>

#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/output.hpp"
#include "ipc/process.hpp"
#include "procinfo.hpp"

namespace procinfo {
namespace {

// The physical frame behind a virtual address: bits 0-54 of its page's 64-bit entry in
// /proc/self/pagemap (bit 63: present). Without CAP_SYS_ADMIN the kernel shows frame 0.
std::optional<std::uint64_t> frame_of(const void* address) {
    const ipc::unique_fd fd{::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)};
    if (!fd) ipc::die("open(/proc/self/pagemap)");
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto offset = reinterpret_cast<std::uintptr_t>(address) / page * 8;
    std::uint64_t entry = 0;
    ssize_t n = 0;
    while ((n = ::pread(fd.get(), &entry, sizeof entry, static_cast<off_t>(offset))) == -1 &&
           errno == EINTR) {}
    if (n != sizeof entry) ipc::die("pread(/proc/self/pagemap)");
    ipc::explain("pread(/proc/self/pagemap, 8, offset {:#x}) = entry {:#x}", offset, entry);
    const std::uint64_t frame = entry & ((std::uint64_t{1} << 55) - 1);
    if ((entry >> 63) == 0 || frame == 0) return std::nullopt;
    return frame;
}

std::string where(const int* value) {
    const auto frame = frame_of(value);
    return fmt::format("at {}{}", fmt::ptr(value),
                       frame ? fmt::format(", physical frame {:#x}", *frame) : "");
}

}  // namespace

int run_fork() {
    // One private page. Writing it gives it a frame of its own (until then it has none, or,
    // once read, the shared zero page); fork() then lets parent and child share that frame,
    // read-only, until one of them writes to it and the kernel copies the page for the writer:
    // copy on write.
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    void* memory =
        ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) ipc::die("mmap");
    ipc::explain("mmap({}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) = {}", page, memory);
    auto* value = static_cast<int*>(memory);
    *value = 42;
    ipc::say("parent {}: value = {} {}", ::getpid(), *value, where(value));
    const pid_t pid = fork_child("the child writes the value", [&] {
        child_say("child  {}: value = {} {} (the same address)", ::getpid(), *value, where(value));
        *value = 99;
        child_say("child  {}: value = {} {} (after its write)", ::getpid(), *value, where(value));
        return 0;
    });
    // If the child failed (it has said why), so does the demo: exit 1, not a story of a copy.
    if (const int status = wait_for(pid); status != 0)
        ipc::fail("child {} {}", pid, ipc::describe_status(status));
    ipc::say("parent {}: value = {} {}: the child's write went to its own copy", ::getpid(), *value,
             where(value));
    if (frame_of(value)) {
        ipc::say(
            "Same address; the child's frame was the parent's until its write, then a copy's.");
    } else {
        ipc::say(
            "(Physical frames are hidden: /proc/self/pagemap shows them only to CAP_SYS_ADMIN.)");
    }
    if (::munmap(memory, page) == -1) ipc::die("munmap");
    return 0;
}

}  // namespace procinfo
