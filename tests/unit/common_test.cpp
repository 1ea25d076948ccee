// Unit tests of common/: descriptors, errors, the signal table, sizes and durations, the CLI.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ipc/child.hpp"
#include "ipc/cli.hpp"
#include "ipc/clock.hpp"
#include "ipc/error.hpp"
#include "ipc/explain.hpp"
#include "ipc/fd.hpp"
#include "ipc/io.hpp"
#include "ipc/net.hpp"
#include "ipc/output.hpp"
#include "ipc/posix_name.hpp"
#include "ipc/proc.hpp"
#include "ipc/process.hpp"
#include "ipc/signals.hpp"
#include "ipc/text.hpp"
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

// An exit handler: writes a byte to exit_marker.
int exit_marker = -1;
void write_exit_marker() { (void)!::write(exit_marker, "x", 1); }

// A process forked from the tool's (the one that called ipc::start) ends with _exit when it
// fails: the tool's exit handlers (and static destructors) do not run in it. Run in a death
// test's child, so that ipc::start's handlers stay out of this test program.
TEST(Errors, AForkedChildThatFailsSkipsTheToolsExitHandlers) {
    EXPECT_EXIT(
        {
            ipc::start();
            int fds[2];
            if (::pipe(fds) == -1 || std::atexit(write_exit_marker) != 0) std::_Exit(10);
            exit_marker = fds[1];
            const pid_t pid = ::fork();
            if (pid == -1) std::_Exit(11);
            if (pid == 0) ipc::fail("a forked child fails");
            ::close(fds[1]);
            exit_marker = STDERR_FILENO;  // the tool's own exit writes its "x" there
            char byte = 0;
            if (::read(fds[0], &byte, 1) != 0) std::_Exit(12);  // the child ran the handler
            int status = 0;
            if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 1)
                std::_Exit(13);
            ipc::fail("the tool fails");
        },
        testing::ExitedWithCode(1), "a forked child fails\n.*: the tool fails\nx$");
}

// A progress line on a terminal: while it is shown, each message erases it first.
TEST(Errors, MessagesEraseALineRedrawnInPlaceWhileThereIsOne) {
    testing::internal::CaptureStderr();
    ipc::erase_line_before_messages(true);
    ipc::complain("over a progress line");
    ipc::erase_line_before_messages(false);
    ipc::complain("on a line of its own");
    EXPECT_EQ(testing::internal::GetCapturedStderr(),
              fmt::format("\r\x1b[K{0}: over a progress line\n{0}: on a line of its own\n",
                          ipc::tool_name()));
    EXPECT_EXIT(
        {
            ipc::erase_line_before_messages(true);
            errno = EPIPE;
            ipc::child::die("write(pipe)", 1);
        },
        testing::ExitedWithCode(1),
        "\r\x1b\\[K[^\n]*: write\\(pipe\\): Broken pipe \\(EPIPE\\)\n$");
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

// Found by tests/fuzz/fuzz_signals: a sign was taken as part of a number.
TEST(Signals, NumbersHaveNoSign) {
    for (const char* s : {"-0", "RTMIN+-0", "RTMAX--0", "SIGRTMIN+-0"}) {
        EXPECT_FALSE(ipc::parse_signal(s, true).has_value()) << "'" << s << "'";
    }
    EXPECT_EQ(ipc::parse_signal("RTMIN+0"), SIGRTMIN);
}

// RTMIN + k was an int overflow for a k near INT_MAX (UBSan: signed-integer-overflow).
TEST(Signals, AnOffsetPastTheRangeIsNoSignalAndNoOverflow) {
    for (const char* s : {"RTMIN+2147483647", "SIGRTMIN+2147483647", "RTMAX-2147483647",
                          "RTMIN+2147483648", "RTMIN+31"}) {
        EXPECT_FALSE(ipc::parse_signal(s).has_value()) << "'" << s << "'";
    }
    EXPECT_EQ(ipc::parse_signal(fmt::format("RTMIN+{}", SIGRTMAX - SIGRTMIN)), SIGRTMAX);
    EXPECT_EQ(ipc::parse_signal(fmt::format("RTMAX-{}", SIGRTMAX - SIGRTMIN)), SIGRTMIN);
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

TEST(Units, DecimalsAreTheWholeText) {
    EXPECT_EQ(ipc::parse_decimal<int>("0"), 0);
    EXPECT_EQ(ipc::parse_decimal<int>("2147483647"), 2147483647);
    EXPECT_EQ(ipc::parse_decimal<int>("-5"), -5);
    EXPECT_EQ(ipc::parse_decimal<std::size_t>("18446744073709551615"), SIZE_MAX);
    for (const char* s : {"", " 1", "1 ", "+1", "1x", "0x10", "2147483648", "--1", "1.0"}) {
        EXPECT_FALSE(ipc::parse_decimal<int>(s)) << "'" << s << "'";
    }
    EXPECT_FALSE(ipc::parse_decimal<unsigned>("-1"));
    EXPECT_FALSE(ipc::parse_decimal<std::uint16_t>("65536"));
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

// Found by tests/fuzz/fuzz_units: "iB" with no K, M, G or T before it was taken as bytes.
TEST(Units, IbNeedsAPrefix) {
    for (const char* s : {"0IB", "5iB", "5ib", "5Ib", "5KIBB", "5kiib"}) {
        EXPECT_THROW((void)ipc::parse_size(s), std::invalid_argument) << "'" << s << "'";
    }
    EXPECT_EQ(ipc::parse_size("5KIB"), 5u << 10);
    EXPECT_EQ(ipc::parse_size("5kb"), 5u << 10);
    EXPECT_EQ(ipc::parse_size("5b"), 5u);
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

TEST(Output, StartOpensClosedStandardDescriptorsTheWrongWayRound) {
    EXPECT_EXIT(
        {
            ::close(STDIN_FILENO);
            ::close(STDOUT_FILENO);
            ipc::start();
            char c = 0;
            const bool in_fails = ::read(STDIN_FILENO, &c, 1) == -1 && errno == EBADF;
            const bool out_fails = ::write(STDOUT_FILENO, "x", 1) == -1 && errno == EBADF;
            const int next = ::open("/dev/null", O_RDONLY);  // lands on neither 0 nor 1
            ::_exit(in_fails && out_fails && next > STDERR_FILENO ? 0 : 3);
        },
        testing::ExitedWithCode(0), "");
}

TEST(Output, AFailedWriteToStdoutExitsOneWithTheCall) {
    EXPECT_EXIT(
        {
            ipc::start();
            const int full = ::open("/dev/full", O_WRONLY);
            ::dup2(full, STDOUT_FILENO);
            ipc::say("{} lines", 3);
            ::_exit(0);
        },
        testing::ExitedWithCode(1), ": write\\(stdout\\): No space left on device \\(ENOSPC\\)\n$");
}

TEST(Output, AVanishedReaderIsEpipeNotSigpipe) {
    EXPECT_EXIT(
        {
            ipc::start();
            auto p = ipc::make_pipe();
            ::dup2(p.write.get(), STDOUT_FILENO);
            p.read.reset();
            ipc::print("nobody reads this\n");
            ::_exit(0);
        },
        testing::ExitedWithCode(1), ": write\\(stdout\\): Broken pipe \\(EPIPE\\)\n$");
}

TEST(Output, StdioLeftUnflushedIsCheckedAtExit) {
    EXPECT_EXIT(
        {
            ipc::start();
            const int full = ::open("/dev/full", O_WRONLY);
            ::dup2(full, STDOUT_FILENO);
            std::fputs("buffered by stdio\n", stdout);
            std::exit(0);
        },
        testing::ExitedWithCode(1), ": write\\(stdout\\): No space left on device \\(ENOSPC\\)\n$");
}

TEST(Output, InternalErrorNamesTheException) {
    EXPECT_EXIT(
        {
            try {
                throw std::runtime_error("a bug");
            } catch (...) {
                std::exit(ipc::internal_error());
            }
        },
        testing::ExitedWithCode(1), ": internal error: a bug\n$");
    EXPECT_EXIT(
        {
            try {
                throw std::bad_alloc();
            } catch (...) {
                std::exit(ipc::internal_error());
            }
        },
        testing::ExitedWithCode(1), ": internal error: out of memory");
}

TEST(Output, AnExceptionEscapingAThreadExitsOneWithoutAbort) {
    EXPECT_EXIT(
        {
            ipc::start();
            std::thread t([] { throw std::logic_error("escaped"); });
            t.join();
        },
        testing::ExitedWithCode(1), ": internal error: escaped\n$");
}

TEST(Proc, ParsesAStatLineWhoseNameHoldsSpacesAndParens) {
    const auto st = ipc::parse_stat(
        "42 (a) b (c)) S 1 42 42 34816 42 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 0 0");
    ASSERT_TRUE(st);
    EXPECT_EQ(st->pid, 42);
    EXPECT_EQ(st->comm, "a) b (c)");
    EXPECT_EQ(st->state, 'S');
    EXPECT_EQ(st->ppid, 1);
    EXPECT_EQ(st->pgrp, 42);
    EXPECT_EQ(st->session, 42);
    EXPECT_EQ(st->utime, 7u);
    EXPECT_EQ(st->stime, 3u);
    EXPECT_EQ(st->starttime, 12345u);
    EXPECT_FALSE(ipc::parse_stat(""));
    EXPECT_FALSE(ipc::parse_stat("42 (x"));
    EXPECT_FALSE(ipc::parse_stat("42 (x) S 1 2"));
    EXPECT_FALSE(ipc::parse_stat("x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19"));
}

TEST(Proc, ReadsItsOwnStatAndStatus) {
    const auto stat = ipc::read_proc(0, "stat");
    ASSERT_TRUE(stat);
    const auto st = ipc::parse_stat(*stat);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->pid, ::getpid());
    EXPECT_EQ(st->ppid, ::getppid());
    const auto status = ipc::read_proc(::getpid(), "status");
    ASSERT_TRUE(status);
    EXPECT_EQ(ipc::status_field(*status, "Pid"), std::to_string(::getpid()));
    EXPECT_TRUE(ipc::status_field(*status, "SigQ"));
    EXPECT_FALSE(ipc::status_field(*status, "Pi"));
    EXPECT_FALSE(ipc::read_proc(0, "no-such-file"));
    EXPECT_EQ(errno, ENOENT);
}

TEST(Process, DescribesAWaitStatusOneWay) {
    EXPECT_EQ(ipc::describe_status(3 << 8), "exited 3");
    EXPECT_EQ(ipc::describe_status(SIGPIPE), "killed by SIGPIPE (141)");
    EXPECT_EQ(ipc::describe_status(SIGSEGV | 0x80), "killed by SIGSEGV (139, core dumped)");
    EXPECT_EQ(ipc::describe_status((SIGTSTP << 8) | 0x7f), "stopped by SIGTSTP");
}

TEST(Child, FormatsDecimalsAndDiesWithTheProjectsErrorForm) {
    char buf[24];
    EXPECT_EQ(ipc::child::format_decimal(buf, 0) - buf, 1);
    EXPECT_STREQ(buf, "0");
    ipc::child::format_decimal(buf, 4294967295UL);
    EXPECT_STREQ(buf, "4294967295");
    EXPECT_EXIT(
        {
            errno = ENOENT;
            ipc::child::die("execvp(nosuch)");
        },
        testing::ExitedWithCode(127),
        ": execvp\\(nosuch\\): No such file or directory \\(ENOENT\\)\n$");
}

TEST(Net, NamesTheNetworksOfAType) {
    EXPECT_EQ(ipc::network_names(), "tcp|tcp4|tcp6|unix|unixpacket|udp|udp4|udp6|unixgram");
    EXPECT_EQ(ipc::network_names(SOCK_DGRAM), "udp|udp4|udp6|unixgram");
}

TEST(Net, ResolvesNumericAndEmptyHostsAsGoDoes) {
    const auto* tcp = ipc::find_network("tcp");
    const auto* tcp4 = ipc::find_network("tcp4");
    auto a = ipc::resolve(*tcp, "--listen", ":0", ipc::resolve_for::listen);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(ipc::addr_string(a[0]), "[::]:0");
    a = ipc::resolve(*tcp4, "--listen", ":80", ipc::resolve_for::listen);
    EXPECT_EQ(ipc::addr_string(a[0]), "0.0.0.0:80");
    a = ipc::resolve(*tcp, "--connect", "[::1]:7", ipc::resolve_for::dial);
    EXPECT_EQ(ipc::addr_string(a[0]), "[::1]:7");
    EXPECT_EXIT((void)ipc::resolve(*tcp4, "--connect", "[::1]:7", ipc::resolve_for::dial),
                testing::ExitedWithCode(2), "::1 is not an IPv4 address");
    EXPECT_EXIT((void)ipc::resolve(*tcp, "--connect", "127.0.0.1:0", ipc::resolve_for::dial),
                testing::ExitedWithCode(2), "port '0'");
}

// The parsing under split_host_port, unix_addr and resolve, without the exit: what the fuzz
// targets (tests/fuzz/fuzz_net.cpp) call. The same messages, without the option's name.
TEST(Net, ParsersThrowTheMessageTheUsageErrorPrints) {
    const auto message = [](auto parse) -> std::string {
        try {
            parse();
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "(no exception)";
    };
    EXPECT_EQ(message([] { (void)ipc::parse_host_port("127.0.0.1", ipc::port_zero::allowed); }),
              "127.0.0.1: missing port (host:port, e.g. 127.0.0.1:8000)");
    EXPECT_EQ(message([] { (void)ipc::parse_host_port("::1:80", ipc::port_zero::allowed); }),
              "::1:80: an IPv6 address needs brackets: [::1]:80");
    EXPECT_EQ(message([] { (void)ipc::parse_host_port("h:0", ipc::port_zero::refused); }),
              "h:0: port '0' is not a number from 1 to 65535");
    EXPECT_EQ(message([] { (void)ipc::parse_unix_addr(""); }), "empty socket path");
    EXPECT_EQ(message([] { (void)ipc::parse_unix_addr(std::string(108, 'x')); }),
              "socket path of 108 bytes; at most 107 fit");
    const auto* tcp4 = ipc::find_network("tcp4");
    EXPECT_EQ(
        message([&] { (void)ipc::parse_numeric_addr(*tcp4, "[::1]:7", ipc::resolve_for::dial); }),
        "[::1]:7: ::1 is not an IPv4 address, as network tcp4 needs");
    // The wrappers put the option's name in front, as before.
    EXPECT_EXIT((void)ipc::resolve(*tcp4, "--connect", "[::1]:7", ipc::resolve_for::dial),
                testing::ExitedWithCode(2),
                "^[a-z_]+: --connect \\[::1\\]:7: ::1 is not an IPv4 address, as network tcp4 "
                "needs\nRun with --help for more.\n$");
    EXPECT_EXIT((void)ipc::unix_addr("--listen", ""), testing::ExitedWithCode(2),
                "^[a-z_]+: --listen: empty socket path\n");
}

TEST(Net, NumericAddressesNeedNoLookup) {
    const auto* tcp = ipc::find_network("tcp");
    const auto* unix_net = ipc::find_network("unix");
    auto a = ipc::parse_numeric_addr(*tcp, "127.0.0.1:80", ipc::resolve_for::dial);
    ASSERT_TRUE(a);
    EXPECT_EQ(ipc::addr_string(*a), "127.0.0.1:80");
    a = ipc::parse_numeric_addr(*tcp, ":0", ipc::resolve_for::listen);
    ASSERT_TRUE(a);
    EXPECT_EQ(ipc::addr_string(*a), "[::]:0");
    EXPECT_FALSE(ipc::parse_numeric_addr(*tcp, "localhost:80", ipc::resolve_for::dial));
    EXPECT_FALSE(ipc::parse_numeric_addr(*tcp, ":80", ipc::resolve_for::dial));  // this host
    a = ipc::parse_numeric_addr(*unix_net, "@echo", ipc::resolve_for::listen);
    ASSERT_TRUE(a);
    EXPECT_EQ(ipc::addr_string(*a), "@echo");
}

TEST(Clock, MillisecondsUntilADeadlineRoundUp) {
    EXPECT_EQ(ipc::ms_until(ipc::never), -1);
    EXPECT_EQ(ipc::deadline_after(0s), ipc::never);
    EXPECT_EQ(ipc::ms_until(ipc::steady::now() - 1s), 0);
    const int ms = ipc::ms_until(ipc::steady::now() + 1500us);
    EXPECT_GE(ms, 1);
    EXPECT_LE(ms, 2);
}

// The largest duration parse_duration accepts (about 292 years) was added to now() and overflowed
// (UBSan: signed-integer-overflow), a deadline in the past: graceful --drain-timeout 2562047h
// closed every connection at once.
TEST(Clock, ATimeoutTooFarToCountIsNoDeadline) {
    EXPECT_EQ(ipc::deadline_after(std::chrono::nanoseconds::max()), ipc::never);
    EXPECT_EQ(ipc::deadline_after(ipc::parse_duration("2562047h")), ipc::never);
    EXPECT_EQ(ipc::ms_until(ipc::deadline_after(std::chrono::nanoseconds::max())), -1);
    const auto d = ipc::deadline_after(100h);
    EXPECT_GT(d, ipc::steady::now() + 99h);
    EXPECT_LT(d, ipc::never);
}

TEST(Clock, RealtimeDeadlineIsNowPlusTheTimeoutNormalised) {
    timespec before{};
    ASSERT_EQ(::clock_gettime(CLOCK_REALTIME, &before), 0);
    const timespec t = ipc::realtime_after(2500ms);
    EXPECT_GE(t.tv_nsec, 0);
    EXPECT_LT(t.tv_nsec, 1'000'000'000);
    const auto ns = [](const timespec& x) { return x.tv_sec * 1'000'000'000LL + x.tv_nsec; };
    EXPECT_GE(ns(t) - ns(before), 2'500'000'000LL);
    EXPECT_LT(ns(t) - ns(before), 3'500'000'000LL);
}

TEST(PosixName, OneFileNameWithItsSlash) {
    EXPECT_EQ(ipc::posix_ipc_name("note"), "/note");
    EXPECT_EQ(ipc::posix_ipc_name("/note"), "/note");
    EXPECT_EQ(ipc::posix_ipc_name(std::string(255, 'a')), "/" + std::string(255, 'a'));
    for (const char* bad : {"", "/", ".", "/..", "a/b", "//a"}) {
        EXPECT_THROW((void)ipc::posix_ipc_name(bad), std::invalid_argument) << bad;
    }
    EXPECT_THROW((void)ipc::posix_ipc_name(std::string(256, 'a')), std::invalid_argument);
    EXPECT_THROW((void)ipc::posix_ipc_name(std::string(252, 'a'), 251), std::invalid_argument);
    EXPECT_THROW((void)ipc::posix_ipc_name(std::string("a\0b", 3)), std::invalid_argument);
    try {
        (void)ipc::posix_ipc_name("a/b");
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(),
                     "'a/b' is not a POSIX IPC name (no '/' after the first): one file name of "
                     "at most 255 bytes, like 'note' or '/note'");
    }
}

}  // namespace

TEST(Text, QuotedAsGoPrintsPercentQ) {
    EXPECT_EQ(ipc::quoted("hello\n"), "\"hello\\n\"");
    EXPECT_EQ(ipc::quoted(std::string_view("a\tb\r\"\\\0\xff", 8)),
              "\"a\\tb\\r\\\"\\\\\\x00\\xff\"");
    EXPECT_EQ(ipc::quoted(""), "\"\"");
}

TEST(Text, QuotedCutsLongTextAndSaysSo) {
    EXPECT_EQ(ipc::quoted("abcdef", 3), "\"abc\"...");
    EXPECT_EQ(ipc::quoted("abc", 3), "\"abc\"");
}
