// Unit tests of common/: descriptors, errors, the signal table, sizes and durations, the CLI.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "ipc/cli.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/net.hpp"
#include "ipc/process.hpp"
#include "ipc/signals.hpp"
#include "ipc/units.hpp"

using namespace std::chrono_literals;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFd, ClosesOnDestruction) {
    int raw = -1;
    {
        auto p = ipc::make_pipe();
        raw = p.read.get();
        EXPECT_TRUE(is_open(raw));
    }
    EXPECT_FALSE(is_open(raw));
}

TEST(UniqueFd, MoveTransfersOwnership) {
    auto p = ipc::make_pipe();
    const int raw = p.write.get();
    ipc::unique_fd moved(std::move(p.write));
    EXPECT_FALSE(p.write.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from
    EXPECT_EQ(moved.get(), raw);
    ipc::unique_fd assigned;
    assigned = std::move(moved);
    EXPECT_EQ(assigned.get(), raw);
    EXPECT_TRUE(is_open(raw));
}

TEST(UniqueFd, ReleaseGivesUpOwnership) {
    int raw = -1;
    {
        auto p = ipc::make_pipe();
        raw = p.read.release();
        EXPECT_FALSE(p.read.valid());
    }
    EXPECT_TRUE(is_open(raw));
    ::close(raw);
}

TEST(UniqueFd, ResetKeepsErrno) {
    auto p = ipc::make_pipe();
    errno = EAGAIN;
    p.read.reset();
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_FALSE(p.read.valid());
}

TEST(UniqueFd, PipeIsCloseOnExecAndCarriesBytes) {
    auto p = ipc::make_pipe();
    EXPECT_TRUE(::fcntl(p.read.get(), F_GETFD) & FD_CLOEXEC);
    EXPECT_TRUE(::fcntl(p.write.get(), F_GETFD) & FD_CLOEXEC);
    ASSERT_TRUE(ipc::write_all(p.write.get(), "hello", 5));
    char buf[8] = {};
    EXPECT_EQ(ipc::read_some(p.read.get(), buf, sizeof buf), 5);
    EXPECT_STREQ(buf, "hello");
}

TEST(UniqueFd, SocketpairIsBidirectional) {
    auto s = ipc::make_socketpair();
    ASSERT_TRUE(ipc::write_all(s.first.get(), "ping", 4));
    ASSERT_TRUE(ipc::write_all(s.second.get(), "pong", 4));
    char buf[4];
    EXPECT_EQ(ipc::read_full(s.second.get(), buf, 4), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
    EXPECT_EQ(ipc::read_full(s.first.get(), buf, 4), 4);
    EXPECT_EQ(std::string(buf, 4), "pong");
}

TEST(Io, ReadFullStopsAtEof) {
    auto p = ipc::make_pipe();
    ASSERT_TRUE(ipc::write_all(p.write.get(), "abc", 3));
    p.write.reset();
    char buf[10];
    EXPECT_EQ(ipc::read_full(p.read.get(), buf, sizeof buf), 3);
    EXPECT_EQ(ipc::read_full(p.read.get(), buf, sizeof buf), 0);
}

TEST(Io, WriteAllFinishesPartialWritesOfALargeBuffer) {
    // 1 MiB is far more than a pipe holds: write_all must loop while a thread drains.
    auto p = ipc::make_pipe();
    std::vector<char> data(1 << 20, 'x');
    std::vector<char> got(data.size());
    ssize_t n = 0;
    std::thread reader([&] { n = ipc::read_full(p.read.get(), got.data(), got.size()); });
    EXPECT_TRUE(ipc::write_all(p.write.get(), data.data(), data.size()));
    p.write.reset();
    reader.join();
    EXPECT_EQ(n, static_cast<ssize_t>(data.size()));
    EXPECT_EQ(got, data);
}

TEST(Io, WriteAllReportsEpipe) {
    ::signal(SIGPIPE, SIG_IGN);
    auto p = ipc::make_pipe();
    p.read.reset();
    EXPECT_FALSE(ipc::write_all(p.write.get(), "x", 1));
    EXPECT_EQ(errno, EPIPE);
    ::signal(SIGPIPE, SIG_DFL);
}

TEST(Errors, NamesAndText) {
    EXPECT_EQ(ipc::errno_name(EPIPE), "EPIPE");
    EXPECT_EQ(ipc::errno_name(ESRCH), "ESRCH");
    EXPECT_EQ(ipc::errno_name(99999), "E?99999");
    EXPECT_EQ(ipc::error_text(ESRCH, "kill(99999, SIGTERM)"),
              "kill(99999, SIGTERM): No such process (ESRCH)");
}

TEST(Errors, DiePrintsTheCallAndExitsOne) {
    EXPECT_EXIT(
        {
            errno = EMFILE;
            ipc::die("pipe");
        },
        testing::ExitedWithCode(1), ": pipe: Too many open files \\(EMFILE\\)\n$");
    EXPECT_EXIT(ipc::die_en(EAGAIN, "pthread_create"), testing::ExitedWithCode(1),
                ": pthread_create: Resource temporarily unavailable \\(EAGAIN\\)");
}

TEST(Errors, UsageErrorExitsTwoWithTheHint) {
    EXPECT_EXIT(ipc::usage_error("--pid: not a number: abc"), testing::ExitedWithCode(2),
                ": --pid: not a number: abc\nRun with --help for more.\n$");
}

TEST(Errors, WarnKeepsErrno) {
    testing::internal::CaptureStderr();
    errno = ENOENT;
    ipc::warn("open(x)");
    EXPECT_EQ(errno, ENOENT);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find(": open(x): No such file or directory (ENOENT)\n"), std::string::npos);
}

TEST(Errors, ComplainPrintsAndGoesOn) {
    testing::internal::CaptureStderr();
    errno = EPIPE;
    ipc::complain("skipping pid 1");
    EXPECT_EQ(errno, EPIPE);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find(": skipping pid 1\n"), std::string::npos);
}

TEST(Explain, SilentUnlessOnThenPrefixedWithPid) {
    testing::internal::CaptureStderr();
    ipc::explain("pipe() = [{}, {}]", 3, 4);
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
    ipc::set_explain(true);
    testing::internal::CaptureStderr();
    errno = EINTR;
    ipc::explain("pipe() = [{}, {}]", 3, 4);
    EXPECT_EQ(errno, EINTR);
    ipc::set_explain(false);
    EXPECT_EQ(testing::internal::GetCapturedStderr(),
              "[" + std::to_string(::getpid()) + "] pipe() = [3, 4]\n");
}

TEST(Signals, ParsesEverySpelling) {
    for (const char* s : {"TERM", "SIGTERM", "term", "sigterm", "15", "SigTerm"}) {
        EXPECT_EQ(ipc::parse_signal(s), SIGTERM) << s;
    }
    EXPECT_EQ(ipc::parse_signal("KILL"), SIGKILL);
    EXPECT_EQ(ipc::parse_signal("IOT"), SIGABRT);
    EXPECT_EQ(ipc::parse_signal("POLL"), SIGIO);
    EXPECT_EQ(ipc::parse_signal("CLD"), SIGCHLD);
    EXPECT_EQ(ipc::parse_signal("RTMIN"), SIGRTMIN);
    EXPECT_EQ(ipc::parse_signal("RTMIN+3"), SIGRTMIN + 3);
    EXPECT_EQ(ipc::parse_signal("SIGRTMAX-2"), SIGRTMAX - 2);
    EXPECT_EQ(ipc::parse_signal("rtmax"), SIGRTMAX);
}

TEST(Signals, RejectsWhatIsNotASignal) {
    for (const char* s : {"", "0", "32", "33", "65", "-1", "TERMX", "SIG", "RTMIN+99", "RTMAX-99",
                          "RTMIN+", "RTMIN+-1", "15x", " 15"}) {
        EXPECT_FALSE(ipc::parse_signal(s).has_value()) << "'" << s << "'";
    }
    EXPECT_EQ(ipc::parse_signal("0", true), 0);
}

TEST(Signals, NamesAsBashKillL) {
    EXPECT_EQ(ipc::signal_name(SIGHUP), "SIGHUP");
    EXPECT_EQ(ipc::signal_name(SIGSYS), "SIGSYS");
    EXPECT_EQ(ipc::signal_name(SIGRTMIN), "SIGRTMIN");
    EXPECT_EQ(ipc::signal_name(SIGRTMAX), "SIGRTMAX");
    if (SIGRTMIN == 34 && SIGRTMAX == 64) {  // glibc on Linux
        EXPECT_EQ(ipc::signal_name(49), "SIGRTMIN+15");
        EXPECT_EQ(ipc::signal_name(50), "SIGRTMAX-14");
    }
    EXPECT_EQ(ipc::signal_name(32), "signal 32");
}

TEST(Signals, NameAndNumberRoundTrip) {
    for (const auto& info : ipc::all_signals()) {
        EXPECT_EQ(ipc::parse_signal(info.name), info.number) << info.name;
        EXPECT_EQ(ipc::parse_signal(ipc::signal_name(info.number)), info.number);
        EXPECT_FALSE(info.description.empty());
    }
}

TEST(Signals, TableFacts) {
    const auto all = ipc::all_signals();
    EXPECT_EQ(all.size(), 31u + static_cast<unsigned>(SIGRTMAX - SIGRTMIN + 1));
    EXPECT_FALSE(ipc::signal_info_of(SIGKILL)->catchable);
    EXPECT_FALSE(ipc::signal_info_of(SIGSTOP)->catchable);
    EXPECT_TRUE(ipc::signal_info_of(SIGTERM)->catchable);
    EXPECT_EQ(ipc::signal_info_of(SIGCHLD)->action, ipc::signal_action::ign);
    EXPECT_EQ(ipc::signal_info_of(SIGQUIT)->action, ipc::signal_action::core);
    EXPECT_EQ(ipc::signal_info_of(SIGCONT)->action, ipc::signal_action::cont);
    EXPECT_EQ(ipc::signal_info_of(SIGTSTP)->action, ipc::signal_action::stop);
    EXPECT_EQ(ipc::signal_info_of(SIGRTMIN + 1)->action, ipc::signal_action::term);
    EXPECT_EQ(ipc::action_name(ipc::signal_action::core), "Core");
    EXPECT_FALSE(ipc::signal_info_of(0));
    EXPECT_FALSE(ipc::signal_info_of(33));
}

TEST(Units, Sizes) {
    EXPECT_EQ(ipc::parse_size("0"), 0u);
    EXPECT_EQ(ipc::parse_size("512"), 512u);
    EXPECT_EQ(ipc::parse_size("64K"), 65536u);
    EXPECT_EQ(ipc::parse_size("64k"), 65536u);
    EXPECT_EQ(ipc::parse_size("64KiB"), 65536u);
    EXPECT_EQ(ipc::parse_size("1M"), 1u << 20);
    EXPECT_EQ(ipc::parse_size("1G"), 1u << 30);
    EXPECT_EQ(ipc::parse_size("2T"), 2ull << 40);
    EXPECT_EQ(ipc::parse_size("100B"), 100u);
}

TEST(Units, BadSizesSayWhy) {
    for (const char* s :
         {"", "K", "12Q", "-1", "1.5K", "99999999999999999999", "16777216T", " 1", "1 K"}) {
        EXPECT_THROW((void)ipc::parse_size(s), std::invalid_argument) << "'" << s << "'";
    }
    try {
        (void)ipc::parse_size("12Q");
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(),
                     "invalid size '12Q' (unknown suffix 'Q'): use a number with an optional K, "
                     "M, G or T suffix, e.g. 64K");
    }
}

TEST(Units, Durations) {
    EXPECT_EQ(ipc::parse_duration("0"), 0ns);
    EXPECT_EQ(ipc::parse_duration("250ms"), 250ms);
    EXPECT_EQ(ipc::parse_duration("2s"), 2s);
    EXPECT_EQ(ipc::parse_duration("1.5s"), 1500ms);
    EXPECT_EQ(ipc::parse_duration("0.25s"), 250ms);
    EXPECT_EQ(ipc::parse_duration("10us"), 10us);
    EXPECT_EQ(ipc::parse_duration("3m"), 180s);
    EXPECT_EQ(ipc::parse_duration("1h"), 3600s);
    EXPECT_EQ(ipc::parse_duration("7ns"), 7ns);
}

TEST(Units, BadDurationsSayWhy) {
    for (const char* s : {"", "5", "s", "5x", "-1s", "1.s5", "99999999999h", "1 s"}) {
        EXPECT_THROW((void)ipc::parse_duration(s), std::invalid_argument) << "'" << s << "'";
    }
}

TEST(Units, Formatting) {
    EXPECT_EQ(ipc::format_size(100), "100 B");
    EXPECT_EQ(ipc::format_size(65536), "64 KiB");
    EXPECT_EQ(ipc::format_size(1536), "1.5 KiB");
    EXPECT_EQ(ipc::format_size(1ull << 30), "1 GiB");
    EXPECT_EQ(ipc::format_duration(1500us), "1.5ms");
    EXPECT_EQ(ipc::format_duration(2s), "2s");
    EXPECT_EQ(ipc::format_duration(90s), "1m30s");
    EXPECT_EQ(ipc::format_duration(42ns), "42ns");
}

TEST(Net, FindsTheNotesNetworks) {
    ASSERT_NE(ipc::find_network("unixpacket"), nullptr);
    EXPECT_EQ(ipc::find_network("unixpacket")->type, SOCK_SEQPACKET);
    EXPECT_EQ(ipc::find_network("tcp6")->family, AF_INET6);
    EXPECT_TRUE(ipc::find_network("tcp")->stream());
    EXPECT_FALSE(ipc::find_network("udp")->stream());
    EXPECT_EQ(ipc::find_network("sctp"), nullptr);
}

TEST(Net, SplitsHostAndPortAsGoDoes) {
    auto hp = ipc::split_host_port("--listen", "127.0.0.1:8000", ipc::port_zero::refused);
    EXPECT_EQ(hp.host, "127.0.0.1");
    EXPECT_EQ(hp.number, 8000);
    hp = ipc::split_host_port("--listen", "[::1]:0", ipc::port_zero::allowed);
    EXPECT_EQ(hp.host, "::1");
    EXPECT_EQ(hp.number, 0);
    hp = ipc::split_host_port("--listen", ":65535", ipc::port_zero::allowed);
    EXPECT_EQ(hp.host, "");
    EXPECT_EQ(hp.port, "65535");
}

TEST(Net, BadHostPortIsAUsageError) {
    const auto split = [](const char* text, ipc::port_zero zero) {
        (void)ipc::split_host_port("--connect", text, zero);
    };
    EXPECT_EXIT(split("127.0.0.1", ipc::port_zero::allowed), testing::ExitedWithCode(2),
                "--connect 127.0.0.1: missing port");
    EXPECT_EXIT(split("::1:80", ipc::port_zero::allowed), testing::ExitedWithCode(2),
                "needs brackets: \\[::1\\]:80");
    EXPECT_EXIT(split("[::1]80", ipc::port_zero::allowed), testing::ExitedWithCode(2),
                "expected \\[IPv6\\]:port");
    EXPECT_EXIT(split("h:65536", ipc::port_zero::allowed), testing::ExitedWithCode(2),
                "port '65536' is not a number from 0 to 65535");
    EXPECT_EXIT(split("h:0", ipc::port_zero::refused), testing::ExitedWithCode(2),
                "port '0' is not a number from 1 to 65535");
    EXPECT_EXIT(split("h:8x", ipc::port_zero::allowed), testing::ExitedWithCode(2), "port '8x'");
}

TEST(Net, UnixAddressesPathsAndAbstractNames) {
    EXPECT_EQ(ipc::addr_string(ipc::unix_addr("--listen", "/tmp/echo.sock")), "/tmp/echo.sock");
    EXPECT_EQ(ipc::addr_string(ipc::unix_addr("--listen", "@echo")), "@echo");
    EXPECT_EXIT((void)ipc::unix_addr("--listen", ""), testing::ExitedWithCode(2),
                "--listen: empty socket path");
    EXPECT_EXIT((void)ipc::unix_addr("--listen", std::string(200, 'x')), testing::ExitedWithCode(2),
                "socket path of 200 bytes; at most 107 fit");
}

TEST(Net, LocalAddrOfABoundSocketReadsBack) {
    const ipc::unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(fd.valid());
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&in), sizeof in), 0);
    const std::string text = ipc::addr_string(ipc::local_addr(fd.get()));
    EXPECT_TRUE(text.starts_with("127.0.0.1:")) << text;
    EXPECT_NE(text, "127.0.0.1:0");
}

TEST(Process, WaitChildGivesTheStatusAShellShows) {
    pid_t pid = ::fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) ::_exit(7);
    EXPECT_EQ(ipc::shell_status(ipc::wait_child(pid)), 7);

    pid = ::fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
        ::pause();  // until the parent's SIGTERM ends it
        ::_exit(0);
    }
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    const int raw = ipc::wait_child(pid);
    EXPECT_TRUE(WIFSIGNALED(raw));
    EXPECT_EQ(ipc::shell_status(raw), 128 + SIGTERM);
}

TEST(Process, WaitingForAStrangerDies) {
    EXPECT_EXIT((void)ipc::wait_child(1), testing::ExitedWithCode(1),
                "waitpid\\(1\\): No child processes \\(ECHILD\\)");
}

// A small app with the shared set-up, parsed from a vector of words.
struct test_app {
    CLI::App app{"test", "tool"};
    std::uint64_t size = 4096;
    std::chrono::nanoseconds timeout = 1s;
    int count = 0;
    test_app() {
        ipc::setup(app, "tool --size 64K");
        ipc::add_size_option(app, "--size", size, "a size");
        ipc::add_duration_option(app, "--timeout", timeout, "a duration");
        app.add_option("--count", count, "a count");
    }
    void parse(std::vector<std::string> words) {
        std::vector<char*> argv;
        words.insert(words.begin(), "tool");
        for (auto& w : words) argv.push_back(w.data());
        ipc::parse(app, static_cast<int>(argv.size()), argv.data());
    }
};

TEST(Cli, ParsesSizesDurationsAndExplain) {
    test_app t;
    t.parse({"--size", "1M", "--timeout", "250ms", "-x"});
    EXPECT_EQ(t.size, 1u << 20);
    EXPECT_EQ(t.timeout, 250ms);
    EXPECT_TRUE(ipc::explaining());
    ipc::set_explain(false);
}

TEST(Cli, DefaultsStayWhenNotGiven) {
    test_app t;
    t.parse({});
    EXPECT_EQ(t.size, 4096u);
    EXPECT_EQ(t.timeout, 1s);
}

TEST(Cli, VersionAndHelpExitZero) {
    EXPECT_EXIT(test_app{}.parse({"--version"}), testing::ExitedWithCode(0), "");
    EXPECT_EXIT(test_app{}.parse({"--help"}), testing::ExitedWithCode(0), "");
}

TEST(Cli, UsageErrorsExitTwo) {
    EXPECT_EXIT(test_app{}.parse({"--size", "12Q"}), testing::ExitedWithCode(2),
                ": --size: invalid size '12Q'.*\nRun with --help for more.\n$");
    EXPECT_EXIT(test_app{}.parse({"--timeout", "5"}), testing::ExitedWithCode(2),
                "--timeout: invalid duration '5' \\(missing unit\\)");
    EXPECT_EXIT(test_app{}.parse({"--bogus"}), testing::ExitedWithCode(2), "--bogus");
    EXPECT_EXIT(test_app{}.parse({"--count", "many"}), testing::ExitedWithCode(2), "many");
}

}  // namespace
