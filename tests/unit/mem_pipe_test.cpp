// Unit tests of pipes/mem_pipe: the guarantees its header states, in every wait mode.
// Runs under the tsan preset too (THREADED), where data races and lock-order bugs fail it.
// Lambdas capture the ends as [&w = w]: clang before 16 cannot capture structured bindings.
#include "pipes/mem_pipe.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <latch>
#include <map>
#include <mutex>
#include <numeric>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using ipc::mem_pipe_errc;
using ipc::wait_mode;

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span{s}); }

std::string text(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Reads until end of file (or an error) with a buffer of `chunk` bytes; returns what arrived.
std::string read_all(ipc::mem_pipe_reader& r, std::size_t chunk, std::error_code* err = nullptr) {
    std::string out;
    std::vector<std::byte> buf(chunk);
    for (;;) {
        auto [n, e] = r.read(buf);
        out += text(std::span{buf}.first(n));
        if (n == 0 || e) {
            if (err) *err = e;
            return out;
        }
    }
}

class MemPipe : public ::testing::TestWithParam<wait_mode> {};

INSTANTIATE_TEST_SUITE_P(WaitModes, MemPipe,
                         ::testing::Values(wait_mode::block, wait_mode::spin, wait_mode::adaptive),
                         [](const auto& param_info) {
                             switch (param_info.param) {
                                 case wait_mode::block: return std::string("block");
                                 case wait_mode::spin: return std::string("spin");
                                 case wait_mode::adaptive: return std::string("adaptive");
                             }
                             return std::string("unknown");
                         });

TEST_P(MemPipe, ReaderSeesTheBytesThenEndOfFile) {
    auto [r, w] = ipc::mem_pipe(GetParam());
    std::jthread writer{[&w = w] {
        EXPECT_EQ(w.write(bytes("hello, ")).n, 7U);
        EXPECT_EQ(w.write(bytes("pipe")).n, 4U);
        w.close();
    }};
    std::error_code err;
    EXPECT_EQ(read_all(r, 64, &err), "hello, pipe");
    EXPECT_FALSE(err) << err.message();
    // End of file stays end of file.
    std::array<std::byte, 8> buf{};
    const auto again = r.read(buf);
    EXPECT_EQ(again.n, 0U);
    EXPECT_FALSE(again.error);
}

TEST_P(MemPipe, ReadsAreMatchedToOneWriteAtATime) {
    auto [r, w] = ipc::mem_pipe(GetParam());
    std::jthread writer{[&w = w] {
        (void)w.write(bytes("abc"));
        (void)w.write(bytes("defgh"));
        w.close();
    }};
    std::array<std::byte, 64> buf{};
    auto first = r.read(buf);
    EXPECT_EQ(text(std::span{buf}.first(first.n)), "abc");  // never "abcdefgh": no buffering
    auto second = r.read(buf);
    EXPECT_EQ(text(std::span{buf}.first(second.n)), "defgh");
}

TEST_P(MemPipe, WriteBlocksUntilEveryByteIsRead) {
    auto [r, w] = ipc::mem_pipe(GetParam());
    std::string data(1000, '\0');
    std::iota(data.begin(), data.end(), '\0');
    std::atomic<bool> returned{false};
    std::jthread writer{[&, &w = w] {
        const auto res = w.write(bytes(data));
        EXPECT_EQ(res.n, data.size());
        EXPECT_FALSE(res.error);
        returned.store(true);
    }};
    std::string got;
    std::array<std::byte, 7> buf{};  // a small buffer: one write takes 143 reads
    int reads = 0;
    while (got.size() < data.size()) {
        EXPECT_FALSE(returned.load()) << "write returned before its last byte was read";
        const auto [n, err] = r.read(buf);
        ASSERT_FALSE(err);
        ASSERT_GT(n, 0U);
        got += text(std::span{buf}.first(n));
        ++reads;
    }
    writer.join();
    EXPECT_TRUE(returned.load());
    EXPECT_EQ(reads, 143);
    EXPECT_EQ(got, data);
}

TEST_P(MemPipe, WriterCloseWithErrorHandsTheReaderThatError) {
    auto [r, w] = ipc::mem_pipe(GetParam());
    const auto reset = std::make_error_code(std::errc::connection_reset);
    w.close_with_error(reset);
    std::array<std::byte, 8> buf{};
    const auto res = r.read(buf);
    EXPECT_EQ(res.n, 0U);
    EXPECT_EQ(res.error, reset);
    // The writer's own end is closed: it gets closed_pipe, not its own error.
    EXPECT_EQ(w.write(bytes("x")).error, mem_pipe_errc::closed_pipe);
}

TEST_P(MemPipe, ReaderCloseGivesTheWriterClosedPipe) {
    auto [r, w] = ipc::mem_pipe(GetParam());
    r.close();
    const auto res = w.write(bytes("lost"));
    EXPECT_EQ(res.n, 0U);
    EXPECT_EQ(res.error, mem_pipe_errc::closed_pipe);
    EXPECT_EQ(res.error.message(), "read/write on closed pipe");
    std::array<std::byte, 8> buf{};
    EXPECT_EQ(r.read(buf).error, mem_pipe_errc::closed_pipe);  // and its own reads too
}

TEST_P(MemPipe, ReaderCloseWithErrorHandsTheWriterThatError) {
    auto [r, w] = ipc::mem_pipe(GetParam());
    const auto broken = std::make_error_code(std::errc::broken_pipe);
    r.close_with_error(broken);
    EXPECT_EQ(w.write(bytes("x")).error, broken);
}

TEST_P(MemPipe, TheFirstErrorWins) {
    {
        auto [r, w] = ipc::mem_pipe(GetParam());
        w.close_with_error(std::make_error_code(std::errc::io_error));
        w.close_with_error(std::make_error_code(std::errc::timed_out));
        w.close();
        std::array<std::byte, 8> buf{};
        EXPECT_EQ(r.read(buf).error, std::errc::io_error);
    }
    {
        auto [r, w] = ipc::mem_pipe(GetParam());
        w.close();  // end of file first: a later error does not replace it
        w.close_with_error(std::make_error_code(std::errc::io_error));
        std::array<std::byte, 8> buf{};
        const auto res = r.read(buf);
        EXPECT_EQ(res.n, 0U);
        EXPECT_FALSE(res.error);
    }
    {
        auto [r, w] = ipc::mem_pipe(GetParam());
        r.close_with_error(std::make_error_code(std::errc::broken_pipe));
        r.close_with_error(std::make_error_code(std::errc::io_error));
        EXPECT_EQ(w.write(bytes("x")).error, std::errc::broken_pipe);
    }
}

TEST_P(MemPipe, BlockedWriterIsReleasedByTheReadersClose) {
    for (int round = 0; round < 50; ++round) {
        auto [r, w] = ipc::mem_pipe(GetParam());
        std::latch started{1};
        ipc::pipe_result res;
        std::jthread writer{[&, &w = w] {
            started.count_down();
            res = w.write(bytes("nobody reads this"));
        }};
        started.wait();
        r.close();
        writer.join();
        EXPECT_EQ(res.n, 0U);
        EXPECT_EQ(res.error, mem_pipe_errc::closed_pipe);
    }
}

TEST_P(MemPipe, PartlyReadWriteIsReleasedByTheReadersClose) {
    auto [r, w] = ipc::mem_pipe(GetParam());
    ipc::pipe_result res;
    std::jthread writer{[&res, &w = w] { res = w.write(bytes("0123456789")); }};
    std::array<std::byte, 3> buf{};
    ASSERT_EQ(r.read(buf).n, 3U);
    r.close_with_error(std::make_error_code(std::errc::operation_canceled));
    writer.join();
    EXPECT_EQ(res.n, 3U);  // what was taken before the close
    EXPECT_EQ(res.error, std::errc::operation_canceled);
}

TEST_P(MemPipe, BlockedReaderIsReleasedByTheWritersClose) {
    for (int round = 0; round < 50; ++round) {
        auto [r, w] = ipc::mem_pipe(GetParam());
        std::latch started{1};
        ipc::pipe_result res{.n = 99, .error = {}};
        std::jthread reader{[&, &r = r] {
            started.count_down();
            std::array<std::byte, 8> buf{};
            res = r.read(buf);
        }};
        started.wait();
        w.close();
        reader.join();
        EXPECT_EQ(res.n, 0U);
        EXPECT_FALSE(res.error);
    }
}

TEST_P(MemPipe, DestroyingTheWriterClosesIt) {
    auto [r, w] = ipc::mem_pipe(GetParam());
    { const auto gone = std::move(w); }
    std::array<std::byte, 8> buf{};
    const auto res = r.read(buf);
    EXPECT_EQ(res.n, 0U);
    EXPECT_FALSE(res.error);
}

TEST_P(MemPipe, AssigningOverAnEndClosesTheEndItHeld) {
    auto [r1, w1] = ipc::mem_pipe(GetParam());
    auto [r2, w2] = ipc::mem_pipe(GetParam());
    r1 = std::move(r2);  // r1's first pipe loses its only reader
    EXPECT_EQ(w1.write(bytes("x")).error, mem_pipe_errc::closed_pipe);
    std::jthread writer{[&w2 = w2] {
        (void)w2.write(bytes("still open"));
        w2.close();
    }};
    EXPECT_EQ(read_all(r1, 4), "still open");
}

TEST_P(MemPipe, ZeroLengthWritesReturnAtOnceAndAreNotSeen) {
    auto [r, w] = ipc::mem_pipe(GetParam());
    const auto empty = w.write({});  // no reader yet: must not block
    EXPECT_EQ(empty.n, 0U);
    EXPECT_FALSE(empty.error);
    std::jthread writer{[&w = w] {
        (void)w.write({});
        (void)w.write(bytes("x"));
        (void)w.write({});
        w.close();
    }};
    EXPECT_EQ(read_all(r, 8), "x");  // a 0-byte write never shows up as a 0-byte read (EOF)
    writer.join();
    EXPECT_EQ(w.write({}).error, mem_pipe_errc::closed_pipe);
    std::array<std::byte, 1> none{};
    EXPECT_EQ(r.read(std::span{none}.first(0)).n, 0U);  // an empty read returns at once too
}

// Records of `size` bytes: writer id, sequence number, then a pattern that depends on both.
std::vector<std::byte> record(std::uint32_t writer, std::uint32_t seq, std::size_t size) {
    std::vector<std::byte> rec(size);
    std::memcpy(rec.data(), &writer, 4);
    std::memcpy(rec.data() + 4, &seq, 4);
    for (std::size_t i = 8; i < size; ++i) rec[i] = static_cast<std::byte>(writer * 31 + seq + i);
    return rec;
}

TEST_P(MemPipe, ManyWritersAndReadersNeverTearARecord) {
    constexpr std::uint32_t writers = 4, readers = 3, per_writer = 300;
    constexpr std::size_t size = 4096 + 3;
    auto [r, w] = ipc::mem_pipe(GetParam());
    std::mutex seen_mu;
    std::map<std::pair<std::uint32_t, std::uint32_t>, int> seen;
    std::atomic<int> torn{0};
    {
        std::vector<std::jthread> threads;
        for (std::uint32_t k = 0; k < readers; ++k) {
            threads.emplace_back([&, &r = r] {
                std::vector<std::byte> buf(size);  // one read takes one whole write
                for (;;) {
                    const auto [n, err] = r.read(buf);
                    if (n == 0) return;
                    std::uint32_t id = 0, seq = 0;
                    std::memcpy(&id, buf.data(), 4);
                    std::memcpy(&seq, buf.data() + 4, 4);
                    if (n != size || id >= writers || record(id, seq, size) != buf) {
                        torn.fetch_add(1);
                        continue;
                    }
                    const std::lock_guard lock(seen_mu);
                    ++seen[{id, seq}];
                }
            });
        }
        std::vector<std::jthread> writing;
        for (std::uint32_t id = 0; id < writers; ++id) {
            writing.emplace_back([&, id, &w = w] {
                for (std::uint32_t seq = 0; seq < per_writer; ++seq) {
                    const auto rec = record(id, seq, size);
                    const auto res = w.write(rec);
                    EXPECT_EQ(res.n, size);
                    EXPECT_FALSE(res.error);
                }
            });
        }
        writing.clear();  // joins the writers
        w.close();        // then the readers see end of file and end
    }
    EXPECT_EQ(torn.load(), 0);
    EXPECT_EQ(seen.size(), std::size_t{writers} * per_writer);
    for (const auto& [key, count] : seen) EXPECT_EQ(count, 1);
}

TEST_P(MemPipe, ManyWritersOneSmallBufferReaderGetsWholeRecordsInTurn) {
    constexpr std::uint32_t writers = 4, per_writer = 200;
    constexpr std::size_t size = 1000;
    auto [r, w] = ipc::mem_pipe(GetParam());
    std::string stream;
    {
        std::jthread reader{
            [&stream, &r = r] { stream = read_all(r, 64); }};  // 16 reads per record
        std::vector<std::jthread> writing;
        for (std::uint32_t id = 0; id < writers; ++id) {
            writing.emplace_back([&, id, &w = w] {
                for (std::uint32_t seq = 0; seq < per_writer; ++seq)
                    (void)w.write(record(id, seq, size));
            });
        }
        writing.clear();
        w.close();
    }
    ASSERT_EQ(stream.size(), std::size_t{writers} * per_writer * size);
    std::vector<std::uint32_t> next(writers, 0);
    for (std::size_t off = 0; off < stream.size(); off += size) {
        const auto rec = std::as_bytes(std::span{stream}.subspan(off, size));
        std::uint32_t id = 0, seq = 0;
        std::memcpy(&id, rec.data(), 4);
        std::memcpy(&seq, rec.data() + 4, 4);
        ASSERT_LT(id, writers);
        const auto want = record(id, seq, size);
        ASSERT_TRUE(std::equal(rec.begin(), rec.end(), want.begin())) << "torn at " << off;
        EXPECT_EQ(seq, next[id]++);  // each writer's records arrive in its order
    }
}

TEST_P(MemPipe, CloseRacingWithTrafficNeverLosesAcceptedBytes) {
    for (int round = 0; round < 20; ++round) {
        auto [r, w] = ipc::mem_pipe(GetParam());
        std::size_t written = 0;
        std::jthread writer{[&, &w = w] {
            const std::string chunk(100, 'z');
            for (;;) {
                const auto res = w.write(bytes(chunk));
                written += res.n;
                if (res.error) return;
            }
        }};
        std::size_t got = 0;
        std::array<std::byte, 64> buf{};
        while (got < 5000) got += r.read(buf).n;
        r.close();
        writer.join();
        EXPECT_EQ(written, got);  // every byte a write reports taken was read, and no more
    }
}

}  // namespace
