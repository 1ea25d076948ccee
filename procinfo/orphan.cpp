// procinfo orphan: a grandchild outlives its parent; who adopts it, and who reaps it?
// Usage: procinfo orphan [--subreaper] [-x]
// Demonstrates "进程的衍生" of the notes' "进程" section (multiprocess-ipc.md): a process whose
// parent exits is adopted, by init as the notes say, or by the nearest ancestor that made itself
// a subreaper (prctl PR_SET_CHILD_SUBREAPER); its getppid() changes, and the adopter must reap it.
// Try: procinfo orphan; procinfo orphan --subreaper -x
// See also: procinfo --ancestors PID (the chain of parents); procinfo states; children.cpp
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/output.hpp"
#include "procinfo.hpp"

namespace procinfo {
namespace {

using namespace std::chrono_literals;

// Forked by the parent; outlives it. Prints its ppid before and after, and reports the second.
int grandchild(ipc::pipe_fds& said, ipc::pipe_fds& gone, ipc::pipe_fds& report) {
    gone.write.reset();  // so that read() below sees end of file if the tool vanishes
    child_say("grandchild {}: my ppid is {} (my parent is alive)", ::getpid(), ::getppid());
    send_ready(said.write);
    char byte = 0;
    if (ipc::read_some(gone.read.get(), &byte, 1) != 1) return 1;
    const pid_t ids[2] = {::getpid(), ::getppid()};
    child_say("grandchild {}: my ppid is {} (my parent has exited)", ids[0], ids[1]);
    if (!ipc::write_all(report.write.get(), ids, sizeof ids)) child_die("write(report pipe)");
    return 0;
}

// The orphan's new parent must reap it, as any parent must: a prompt init does so at once.
void wait_for_adopter_to_reap(pid_t orphan, pid_t adopter) {
    const auto start = ipc::steady::now();
    const auto waited = [&] { return ipc::steady::now() - start; };
    std::optional<char> state;
    std::chrono::nanoseconds pause = 1ms;
    while ((state = state_of(orphan)) && waited() < 5s) {
        ipc::sleep_for(pause);
        pause = std::min<std::chrono::nanoseconds>(2 * pause, 50ms);
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(waited()).count();
    ipc::explain("read(/proc/{}/stat) for {} ms: {}", orphan, ms, state ? "still there" : "gone");
    if (!state) {
        return ipc::say("pid {} reaped it within {} ms: /proc/{} is gone", adopter, ms, orphan);
    }
    ipc::say("pid {} has not reaped pid {} in 5 s: it stays a zombie ({}) until its parent waits",
             adopter, orphan, *state);
    if (adopter == 1)
        ipc::say("Not every pid 1 reaps orphans (in a container, run a small init: tini).");
}

}  // namespace

int run_orphan(bool subreaper) {
    if (subreaper) {
        if (::prctl(PR_SET_CHILD_SUBREAPER, 1) == -1) ipc::die("prctl(PR_SET_CHILD_SUBREAPER, 1)");
        ipc::explain("prctl(PR_SET_CHILD_SUBREAPER, 1)");
    }
    ipc::say("tool {}: {}", ::getpid(),
             subreaper ? "a subreaper (prctl PR_SET_CHILD_SUBREAPER): it adopts orphans below it"
                       : "not a subreaper: orphans go to the nearest subreaper above, or to init");
    auto said = ipc::make_pipe();    // grandchild -> parent: "I have printed my ppid"
    auto gone = ipc::make_pipe();    // tool -> grandchild: "your parent has exited"
    auto report = ipc::make_pipe();  // grandchild -> tool: its pid and its new ppid
    const pid_t parent = fork_child("the parent", [&] {
        gone.write.reset();  // only the tool writes it: end of file if the tool vanishes
        const pid_t child = ::fork();
        if (child == -1) child_die("fork");
        if (child == 0) ::_exit(grandchild(said, gone, report));
        ipc::explain("fork() = {} (the grandchild)", child);
        report.write.reset();
        await_ready(said, child);
        child_say("parent {}: exiting without waiting for my child {}", ::getpid(), child);
        return 0;
    });
    said = {};             // the parent and the grandchild talk alone: EOF if one dies
    report.write.reset();  // only the grandchild writes: end of file once it has exited
    reap(parent);          // exit() hands its children on before the parent becomes reapable
    ipc::say("tool {}: its parent {} has exited (reaped with waitpid)", ::getpid(), parent);
    if (!ipc::write_all(gone.write.get(), "!", 1)) ipc::die("write(gone pipe)");
    pid_t ids[2] = {0, 0};  // the orphan, its adopter
    if (ipc::read_full(report.read.get(), ids, sizeof ids) != sizeof ids)
        ipc::fail("the grandchild did not report its new ppid");
    const auto [orphan, adopter] = ids;
    if (adopter == ::getpid()) {
        ipc::say("adopted by pid {} ({}): this tool, the nearest subreaper", adopter,
                 name_of(adopter));
        ipc::say("tool {}: reaped its adopted grandchild, status {}", adopter, reap(orphan));
        return 0;
    }
    ipc::say("adopted by pid {} ({}): {}", adopter, name_of(adopter),
             adopter == 1 ? "the init of this pid namespace"
                          : "a subreaper among our ancestors, nearer than pid 1");
    char byte = 0;  // wait for the orphan to exit: its end of the report pipe closes
    if (ipc::read_some(report.read.get(), &byte, 1) != 0) ipc::fail("unexpected report");
    wait_for_adopter_to_reap(orphan, adopter);
    return 0;
}

}  // namespace procinfo
