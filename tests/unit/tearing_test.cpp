// Unit tests of pipes/tearing: the count of torn records that fifodemo and pipecmp atomic share.
#include "pipes/tearing.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace {

ipc::tear_counter count(unsigned writers, std::uint64_t size, std::string_view stream,
                        std::size_t read_size = 1000) {
    ipc::tear_counter c(writers, size);
    for (std::size_t at = 0; at < stream.size(); at += read_size) {
        c.feed(stream.substr(at, read_size));
    }
    return c;
}

TEST(TearCounter, WholeRecordsInAnyOrderAreNotTorn) {
    const auto c = count(2, 4, "AAAABBBBAAAABBBBBBBB");
    EXPECT_EQ(c.records(), 5U);
    EXPECT_EQ(c.torn(), 0U);
    EXPECT_EQ(c.bytes_from(0), 8U);
    EXPECT_EQ(c.bytes_from(1), 12U);
    EXPECT_EQ(c.stray(), 0U);
}

TEST(TearCounter, AnotherWritersBytesInsideARecordTearIt) {
    // A's first record is cut by B's whole record; B's records are whole.
    const auto c = count(2, 4, "AABBBBAA");
    EXPECT_EQ(c.records(), 2U);
    EXPECT_EQ(c.torn(), 1U);
}

TEST(TearCounter, ARecordCutTwiceIsOneTornRecord) {
    const auto c = count(2, 6, "AABBBBBBAABBBBBBAA");
    EXPECT_EQ(c.records(), 3U);
    EXPECT_EQ(c.torn(), 1U);
}

TEST(TearCounter, BytesNoWriterWritesAreCountedApart) {
    const auto c = count(2, 2, "AAxyBB");
    EXPECT_EQ(c.stray(), 2U);
    EXPECT_EQ(c.records(), 2U);
    EXPECT_EQ(c.torn(), 0U);
}

TEST(TearCounter, BothRecordsOfAnInterleavingAreTorn) {
    const auto c = count(2, 4, "AABBAABB");
    EXPECT_EQ(c.records(), 2U);
    EXPECT_EQ(c.torn(), 2U);
}

TEST(TearCounter, TheWayTheStreamIsReadDoesNotMatter) {
    std::string stream;
    for (int i = 0; i < 50; ++i) stream += i % 3 == 0 ? "AAABBBBBBCCCAAA" : "CCCCCCBBBBBB";
    const auto whole = count(3, 6, stream);
    for (const std::size_t read_size : {1, 2, 5, 7, 4096}) {
        const auto c = count(3, 6, stream, read_size);
        EXPECT_EQ(c.torn(), whole.torn()) << "read_size " << read_size;
        EXPECT_EQ(c.records(), whole.records());
    }
    EXPECT_GT(whole.torn(), 0U);
}

TEST(TearCounter, ALastRecordCutShortCountsAsBegun) {
    const auto c = count(1, 4, "AAAAAA");
    EXPECT_EQ(c.records(), 2U);
    EXPECT_EQ(c.torn(), 0U);
    EXPECT_EQ(c.bytes_from(0), 6U);
}

TEST(TearCounter, TwentySixWriters) {
    std::string stream;
    for (char w = 'A'; w <= 'Z'; ++w) stream += std::string(3, w);
    const auto c = count(26, 3, stream);
    EXPECT_EQ(c.records(), 26U);
    EXPECT_EQ(c.torn(), 0U);
    EXPECT_EQ(c.bytes_from(25), 3U);
}

TEST(CheckEveryByte, PassesWhenEverythingArrived) {
    const ipc::race_options race{2, 4, 2, 4096};
    const auto c = count(2, 4, "AAAABBBBBBBBAAAA");
    ipc::check_every_byte(c, race, "test");  // returns: nothing to report
}

TEST(CheckEveryByteDeathTest, ALostByteEndsTheProgram) {
    const ipc::race_options race{2, 4, 2, 4096};
    const auto c = count(2, 4, "AAAABBBBBBBBAAA");
    EXPECT_EXIT(ipc::check_every_byte(c, race, "pipe(2)"), ::testing::ExitedWithCode(1),
                "pipe\\(2\\): writer 'A' delivered 7 bytes, not 8");
}

TEST(CheckEveryByteDeathTest, AStrayByteEndsTheProgram) {
    const ipc::race_options race{1, 4, 1, 4096};
    const auto c = count(1, 4, "AAAAx");
    EXPECT_EXIT(ipc::check_every_byte(c, race, "fifo"), ::testing::ExitedWithCode(1),
                "fifo: 1 bytes that no writer wrote");
}

}  // namespace
