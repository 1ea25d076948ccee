// Unit tests of pipes/demo_sandbox: fifodemo's temp dir and children, cleaned up however it ends.
// The sandbox is one per program (signal handlers, atexit), so each case runs in a death test's
// child process, with $TMPDIR a fresh directory that must be empty again afterwards.
#include "pipes/demo_sandbox.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "ipc/error.hpp"

namespace {

class DemoSandbox : public ::testing::Test {
  protected:
    void SetUp() override {
        static const std::string base = ::testing::TempDir();  // before we change $TMPDIR
        std::string tmpl = base + "sandbox.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        tmp_ = tmpl;
        ASSERT_EQ(::setenv("TMPDIR", tmp_.c_str(), 1), 0);
    }
    void TearDown() override {
        EXPECT_TRUE(std::filesystem::is_empty(tmp_)) << "left behind in " << tmp_;
        std::filesystem::remove_all(tmp_);
    }
    std::string tmp_;
};

// Makes the dir, a file in it and a child that would sleep forever.
pid_t fill_sandbox() {
    const std::string dir = ipc::sandbox::make_dir("t");
    ipc::sandbox::adopt(dir + "/file");
    const int fd = ::open((dir + "/file").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd == -1) std::_Exit(10);
    ::close(fd);
    return ipc::sandbox::spawn([] {
        for (;;) ::pause();
        return 0;
    });
}

TEST_F(DemoSandbox, MakeDirIsPrivateAndNamedAfterThePrefix) {
    EXPECT_EXIT(
        {
            const std::string dir = ipc::sandbox::make_dir("fifo-demo");
            struct stat st {};
            const bool ok = ::stat(dir.c_str(), &st) == 0 && (st.st_mode & 07777) == 0700 &&
                            dir.rfind(tmp_ + "/fifo-demo.", 0) == 0 &&
                            dir.size() == tmp_.size() + 17 && dir == ipc::sandbox::dir();
            std::exit(ok ? 0 : 3);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST_F(DemoSandbox, CleanUpKillsAndReapsTheChildrenAndRemovesTheFiles) {
    EXPECT_EXIT(
        {
            const pid_t child = fill_sandbox();
            ipc::sandbox::clean_up();
            // Reaped: the pid is no longer ours to wait for.
            const bool reaped = ::waitpid(child, nullptr, WNOHANG) == -1 && errno == ECHILD;
            const bool gone = ::access(ipc::sandbox::dir(), F_OK) == -1 && errno == ENOENT;
            std::_Exit(reaped && gone ? 0 : 3);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST_F(DemoSandbox, AWaitedChildIsNoLongerKilled) {
    EXPECT_EXIT(
        {
            (void)ipc::sandbox::make_dir("t");
            const pid_t child = ipc::sandbox::spawn([] { return 7; });
            const int status = ipc::sandbox::wait(child);
            ipc::sandbox::clean_up();
            std::_Exit(WIFEXITED(status) && WEXITSTATUS(status) == 7 ? 0 : 3);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST_F(DemoSandbox, ExitCleansUp) {
    EXPECT_EXIT(
        {
            (void)fill_sandbox();
            ipc::fail("boom");
        },
        ::testing::ExitedWithCode(1), "boom");
}

TEST_F(DemoSandbox, ASignalCleansUpSaysSoAndEndsTheProgramByIt) {
    EXPECT_EXIT(
        {
            (void)fill_sandbox();
            ::raise(SIGTERM);
            std::_Exit(3);  // not reached
        },
        ::testing::KilledBySignal(SIGTERM),
        "demo stopped by SIGTERM; removed .*/t\\.[A-Za-z0-9]{6}");
}

TEST_F(DemoSandbox, SighupToo) {
    EXPECT_EXIT(
        {
            (void)fill_sandbox();
            ::raise(SIGHUP);
            std::_Exit(3);
        },
        ::testing::KilledBySignal(SIGHUP), "demo stopped by SIGHUP");
}

TEST_F(DemoSandbox, EvenASigintThatWasIgnored) {
    EXPECT_EXIT(
        {
            ::signal(SIGINT, SIG_IGN);
            (void)fill_sandbox();
            ::raise(SIGINT);
            std::_Exit(3);
        },
        ::testing::KilledBySignal(SIGINT), "demo stopped by SIGINT");
}

TEST_F(DemoSandbox, ChildrenGetTheDefaultActionBack) {
    EXPECT_EXIT(
        {
            (void)ipc::sandbox::make_dir("t");
            const pid_t child = ipc::sandbox::spawn([] {
                ::raise(SIGHUP);
                return 0;
            });
            const int status = ipc::sandbox::wait(child);
            ipc::sandbox::clean_up();
            std::_Exit(WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP ? 0 : 3);
        },
        ::testing::ExitedWithCode(0), "");
}

}  // namespace
