// Unit tests of graceful's request parser (signals/graceful_http_parse.cpp): what it accepts,
// what it refuses and with which status, and that no prefix or mutation of a request makes it
// read past its input or call a request complete that is not.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

#include "signals/graceful_http.hpp"

namespace {

using http::parse_request;
using state = http::parsed::state;

TEST(GracefulHttp, ParsesAGetAndItsQuery) {
    const std::string in = "GET /sleep?ms=20&n=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    const auto p = parse_request(in);
    ASSERT_EQ(p.result, state::complete);
    EXPECT_EQ(p.length, in.size());
    EXPECT_EQ(p.req.method, "GET");
    EXPECT_EQ(p.req.path, "/sleep");
    EXPECT_EQ(p.req.query, "ms=20&n=1");
    EXPECT_TRUE(p.keep_alive);
    EXPECT_EQ(http::query_value(p.req.query, "ms"), "20");
    EXPECT_EQ(http::query_value(p.req.query, "n"), "1");
    EXPECT_EQ(http::query_value(p.req.query, "m"), std::nullopt);
}

TEST(GracefulHttp, PipelinedRequestsOneAtATime) {
    const std::string one = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string two = "HEAD /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const std::string in = one + two + "GET /c HT";
    auto p = parse_request(in);
    ASSERT_EQ(p.result, state::complete);
    EXPECT_EQ(p.length, one.size());
    p = parse_request(std::string_view{in}.substr(one.size()));
    ASSERT_EQ(p.result, state::complete);
    EXPECT_EQ(p.req.method, "HEAD");
    EXPECT_FALSE(p.keep_alive);
    EXPECT_EQ(parse_request(std::string_view{in}.substr(one.size() + two.size())).result,
              state::incomplete);
}

TEST(GracefulHttp, BareLineFeedsAndLeadingEmptyLines) {
    const std::string in = "\r\n\nGET / HTTP/1.1\nHost: x\n\n";
    const auto p = parse_request(in);
    ASSERT_EQ(p.result, state::complete);
    EXPECT_EQ(p.length, in.size());
}

TEST(GracefulHttp, ABodyIsSkippedWhole) {
    const std::string in = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET";
    EXPECT_EQ(parse_request(in.substr(0, in.size() - 5)).result, state::incomplete);
    const auto p = parse_request(in);
    ASSERT_EQ(p.result, state::complete);
    EXPECT_EQ(p.length, in.size() - 3);
}

TEST(GracefulHttp, Http10KeepsAliveOnlyWhenAsked) {
    auto p = parse_request("GET / HTTP/1.0\r\n\r\n");
    ASSERT_EQ(p.result, state::complete);
    EXPECT_FALSE(p.keep_alive);
    p = parse_request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    EXPECT_TRUE(p.keep_alive);
    EXPECT_TRUE(p.http10);
}

int status_of(std::string_view in) {
    const auto p = parse_request(in);
    EXPECT_EQ(p.result, state::bad) << in;
    EXPECT_FALSE(p.keep_alive);
    return p.status;
}

TEST(GracefulHttp, BadRequestsGetTheirStatus) {
    EXPECT_EQ(status_of("GARBAGE\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET nowhere HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n"), 400);  // no Host
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);  // space before the colon
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n"), 400);  // a bare CR
    EXPECT_EQ(status_of(std::string_view{"GET / HTTP/1.1\r\nHost: \0\r\n\r\n", 26}), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                        "Content-Length: 2\r\n\r\n"),
              400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\n\r\n"), 405);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"), 413);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
    EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
}

TEST(GracefulHttp, HugeHeadersAre431EvenBeforeTheyEnd) {
    std::string in = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ";
    in.append(http::max_head, 'a');
    EXPECT_EQ(status_of(in), 431);  // no end of the head yet: still refused
    EXPECT_EQ(status_of(in + "\r\n\r\n"), 431);
    EXPECT_EQ(status_of(std::string(http::max_head + 1, '\n')), 400);
}

// Every prefix of a good request is incomplete, never complete nor bad.
TEST(GracefulHttp, EveryPrefixIsIncomplete) {
    const std::string in = "GET /x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
    for (std::size_t n = 0; n < in.size(); ++n) {
        EXPECT_EQ(parse_request(in.substr(0, n)).result, state::incomplete) << n;
    }
    EXPECT_EQ(parse_request(in).result, state::complete);
}

// Random mutations: a result is one of the three, and a complete one never claims more bytes
// than it was given (run under the dev preset, AddressSanitizer checks every view).
TEST(GracefulHttp, MutationsStayInBounds) {
    const std::string seed = "GET /sleep?ms=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab";
    std::mt19937 rng(12345);
    for (int i = 0; i < 20000; ++i) {
        std::string in = seed;
        for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
            const auto at = rng() % (in.size() + 1);
            switch (rng() % 3) {
                case 0: in.insert(at, 1, static_cast<char>(rng() % 256)); break;
                case 1:
                    if (at < in.size()) in.erase(at, 1);
                    break;
                default:
                    if (at < in.size()) in[at] = "\r\n :\0/?"[rng() % 7];
            }
        }
        const auto p = parse_request(in);
        if (p.result == state::complete) {
            EXPECT_LE(p.length, in.size());
            EXPECT_GT(p.length, 0U);
        }
        if (p.result == state::bad) {
            EXPECT_NE(p.status, 0);
        }
    }
}

}  // namespace
