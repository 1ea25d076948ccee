// graceful_http.hpp: the small HTTP/1.1 server under graceful (signals/graceful.cpp). It teaches no
// IPC, so it lives beside the lesson: graceful's lesson is the handover of the listening socket,
// and all it needs from a server is to serve a socket it did not open, to stop accepting without
// touching that socket, and to finish the connections it accepted.
//
// One epoll loop per thread, all accepting on the one listening socket; keep-alive without a cap
// on requests, pipelined requests answered in order, bad requests answered (400, 405, 413, 431,
// 501, 505) and closed, an idle or stalled connection closed after 5 s. GET and HEAD only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ipc/fd.hpp"

namespace http {

struct request {
    std::string_view method;  // "GET" or "HEAD": the server answers any other with 405
    std::string_view path;    // "/sleep"
    std::string_view query;   // "ms=20", without the '?'
    int in_flight = 0;        // the requests this server holds back now (GET /sleep), all loops
};

struct reply {
    int status = 200;
    std::string body;                    // text/plain
    std::chrono::milliseconds delay{0};  // sent this much later: a request in flight meanwhile
};

using handler = std::function<reply(const request&)>;

// The value of `name` in a query string ("ms=20&n=1" -> "20"), or nullopt.
[[nodiscard]] std::optional<std::string_view> query_value(std::string_view query,
                                                          std::string_view name);

inline constexpr std::size_t max_head = 8192;  // request line and headers (431 beyond)
inline constexpr std::size_t max_body = 8192;  // a GET's body is read and ignored (413 beyond)

// The request at the front of `input`, which may hold the start of the next ones (pipelining).
struct parsed {
    enum class state { incomplete, complete, bad };
    state result = state::incomplete;
    int status = 0;          // bad: the status to answer with before closing the connection
    std::size_t length = 0;  // complete: the bytes it takes, head and body
    request req;             // complete: views into `input`
    bool keep_alive = true;  // HTTP/1.1 unless "Connection: close"; 1.0 only with "keep-alive"
    bool http10 = false;
};
[[nodiscard]] parsed parse_request(std::string_view input);

// Serves `listener` (a listening stream socket, borrowed) on `loops` threads (0: one per CPU) until
// stop_accepting(), then until every connection it accepted is finished.
class server {
  public:
    server(int listener, int loops, handler pages);
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server();

    // This process stops calling accept(2); the socket is left open and untouched, as other
    // processes may accept on it. Each connection closes after the answer it owes, which says
    // "Connection: close"; an idle one is closed after 1 s. Any thread may call it.
    void stop_accepting();
    // Closes every connection now (after --drain-timeout). Any thread may call it.
    void close_connections();

    [[nodiscard]] bool accepting() const { return accepting_.load(); }
    [[nodiscard]] int in_flight() const { return in_flight_.load(); }
    // Readable (end of file) once every loop has returned.
    [[nodiscard]] int done_fd() const { return done_read_.get(); }
    // The errno of an accept4(2) failure that stopped this server from accepting, or 0.
    [[nodiscard]] int accept_error() const { return accept_error_.load(); }
    void join();

    class loop;  // one thread's epoll loop (graceful_http.cpp)

  private:
    friend class loop;
    void loop_finished();

    const int listener_;
    const handler pages_;
    std::atomic<bool> accepting_{true};
    std::atomic<bool> closing_{false};
    std::atomic<int> in_flight_{0};
    std::atomic<int> accept_error_{0};
    std::atomic<int> running_{0};  // loops not yet returned; the last one closes done_write_
    ipc::unique_fd done_read_, done_write_;
    std::vector<std::unique_ptr<loop>> loops_;
    std::vector<std::thread> threads_;
};

}  // namespace http
