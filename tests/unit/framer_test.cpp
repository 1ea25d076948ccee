// Unit tests of sockets/framer: the echo servers' ReadBytes('\n') framing and --max-line.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "sockets/framer.hpp"

namespace {

using echo::framer;
using echo::framing;

// Feeds `in` in pieces of `step` bytes; returns what went back, or "REFUSED" after a refusal.
std::string feed_in_steps(framer& f, std::string_view in, std::size_t step) {
    std::string out;
    for (std::size_t at = 0; at < in.size(); at += step) {
        if (!f.feed(in.substr(at, step), out)) return out + "REFUSED";
    }
    return out;
}

TEST(Framer, WholeLinesGoBackTogether) {
    framer f(framing::lines, 100);
    std::string out;
    EXPECT_TRUE(f.feed("one\ntwo\nthr", out));
    EXPECT_EQ(out, "one\ntwo\n");
    EXPECT_EQ(f.units(), 2U);
    EXPECT_TRUE(f.mid_line());
}

TEST(Framer, AnUnfinishedLineWaitsForItsNewline) {
    framer f(framing::lines, 100);
    std::string out;
    EXPECT_TRUE(f.feed("hel", out));
    EXPECT_EQ(out, "");
    EXPECT_TRUE(f.feed("lo", out));
    EXPECT_EQ(out, "");
    EXPECT_TRUE(f.feed("\n", out));
    EXPECT_EQ(out, "hello\n");
    EXPECT_FALSE(f.mid_line());
}

TEST(Framer, FinishReturnsTheLastLineWithoutNewline) {
    framer f(framing::lines, 100);
    std::string out;
    EXPECT_TRUE(f.feed("a\nno newline at the end", out));
    EXPECT_EQ(f.finish(), "no newline at the end");
    EXPECT_EQ(f.units(), 2U);
    EXPECT_EQ(f.finish(), "");  // nothing more, and not counted twice
    EXPECT_EQ(f.units(), 2U);
}

TEST(Framer, EmptyLinesAndBinaryBytesAreLines) {
    framer f(framing::lines, 100);
    std::string out;
    const std::string in("\n\n\0\xff\xfe\n", 6);
    EXPECT_TRUE(f.feed(in, out));
    EXPECT_EQ(out, in);
    EXPECT_EQ(f.units(), 3U);
}

TEST(Framer, MaxLineCountsNoNewline) {
    framer f(framing::lines, 16);
    std::string out;
    EXPECT_TRUE(f.feed("exactly-16-bytes\n", out));
    EXPECT_EQ(out, "exactly-16-bytes\n");
    EXPECT_FALSE(f.feed("seventeen-bytes!!\n", out));
}

TEST(Framer, ALongLineIsRefusedOnceItIsTooLongEvenWithoutNewline) {
    framer f(framing::lines, 16);
    std::string out;
    EXPECT_TRUE(f.feed(std::string(16, 'x'), out));  // 16 buffered: still fits
    EXPECT_FALSE(f.feed("y", out));                  // the 17th byte without '\n'
    EXPECT_EQ(out, "");
}

TEST(Framer, LinesBeforeALongOneStillGoBack) {
    framer f(framing::lines, 16);
    std::string out;
    EXPECT_FALSE(f.feed("short\nexactly-16-bytes\nthis line is longer than sixteen\n", out));
    EXPECT_EQ(out, "short\nexactly-16-bytes\n");
    EXPECT_EQ(f.units(), 2U);
}

TEST(Framer, TheSameOutputWhateverTheReadSizes) {
    const std::string in = "alpha\nbeta\n\ngamma delta\nepsilon";
    for (std::size_t step = 1; step <= in.size(); ++step) {
        framer f(framing::lines, 64);
        std::string out = feed_in_steps(f, in, step);
        out += f.finish();
        EXPECT_EQ(out, in) << "step " << step;
        EXPECT_EQ(f.units(), 5U) << "step " << step;
    }
}

TEST(Framer, MessagesGoBackWholeNewlinesAndAll) {
    framer f(framing::messages, 8);
    std::string out;
    EXPECT_TRUE(f.feed("a\nb\nc", out));
    EXPECT_TRUE(f.feed("abcdefgh", out));
    EXPECT_EQ(out, "a\nb\ncabcdefgh");
    EXPECT_EQ(f.units(), 2U);
    EXPECT_FALSE(f.mid_line());
    EXPECT_FALSE(f.feed("123456789", out));  // one byte over
    EXPECT_EQ(f.unit_name(), "messages");
    EXPECT_EQ(f.too_long_name(), "message");
}

TEST(Framer, NamesForTheLog) {
    const framer f(framing::lines, 1);
    EXPECT_EQ(f.unit_name(), "lines");
    EXPECT_EQ(f.too_long_name(), "line");
}

}  // namespace
