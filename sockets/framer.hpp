// sockets/framer.hpp: what an echo server sends back for the bytes it reads. No I/O: bytes in,
// bytes out, so the servers, a unit test and a fuzzer all drive the same code.
//
//   echo::framer f(echo::framing::lines, 64 * 1024);
//   std::string out;
//   f.feed("hel", out);        // out == "": the line is not finished
//   f.feed("lo\nwor", out);    // out == "hello\n"; "wor" waits for its '\n'
//   out += f.finish();         // end of stream: "wor", as ReadBytes returns it with io.EOF
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace echo {

// A stream (tcp, unix) has no boundaries: the server cuts it into lines, as the notes'
// bufio.Reader.ReadBytes('\n') does. A unixpacket socket keeps them: one read is one message.
enum class framing { lines, messages };

class framer {
  public:
    framer(framing how, std::size_t max_line) : how_(how), max_line_(max_line) {}

    // Appends to `out` what goes back for `in`: the lines it completes, each with its '\n' (or,
    // for messages, `in` itself). An unfinished line waits inside for its '\n'. Returns false
    // when a line (or message) is longer than max_line: the caller refuses it and feeds no more.
    [[nodiscard]] bool feed(std::string_view in, std::string& out);

    // At end of stream: the unfinished line, even without its '\n', as ReadBytes returns it
    // along with io.EOF ("" if there is none).
    [[nodiscard]] std::string finish();

    [[nodiscard]] bool mid_line() const { return !pending_.empty(); }  // a line is half read
    [[nodiscard]] std::uint64_t units() const { return units_; }       // lines or messages so far
    [[nodiscard]] std::string_view unit_name() const {
        return how_ == framing::lines ? "lines" : "messages";
    }
    [[nodiscard]] std::string_view too_long_name() const {
        return how_ == framing::lines ? "line" : "message";
    }

  private:
    framing how_;
    std::size_t max_line_;
    std::string pending_;      // the unfinished line, without its '\n' yet; at most max_line_
    std::uint64_t units_ = 0;  // lines (or messages) handed back
};

}  // namespace echo
