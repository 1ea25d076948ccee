// fdpass.hpp: what the files of fdpass share: fdpass.cpp (passing a descriptor, the command
// line), fdpass_file.cpp (a file), fdpass_handover.cpp (a listener), fdpass_demo.cpp (both).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/clock.hpp"
#include "ipc/fd.hpp"
#include "ipc/net.hpp"

namespace fdpass {

enum class command { send, receive, serve_listener, take_listener, demo };

struct options {
    command cmd = command::demo;
    std::string socket_path;             // --socket: the unix socket the two processes meet on
    std::string file;                    // send: the file to open and pass
    std::uint64_t offset = 0;            // send: lseek there before passing it
    std::string listen = "127.0.0.1:0";  // serve-listener: the TCP address to serve on
    std::uint64_t count = 0;             // serve-/take-listener: exit after N connections (0: no)
    // serve-/take-listener: how long either side of a handover waits for the other
    std::chrono::nanoseconds handover_timeout{std::chrono::seconds(10)};
};

// One line that came over the unix socket, with what the kernel attached to it.
struct message {
    std::string line;                 // without its '\n'
    std::vector<ipc::unique_fd> fds;  // SCM_RIGHTS: new descriptors, ours to close
    std::optional<ucred> sender;      // SCM_CREDENTIALS: the sender's pid, uid, gid
};

// Sends `line` (ending in '\n') with a copy of `fd` attached (SCM_RIGHTS). Returns 0, or the
// errno value (EPIPE: the peer has gone) for the caller to judge.
[[nodiscard]] int send_descriptor(int sock, int fd, std::string_view line);

// Reads one line with recvmsg(2) and the descriptors and credentials that come with it. The
// protocol is one line each way in turn (bytes after the '\n' are dropped). nullopt,
// with `why` saying why, if the peer closed the connection or broke the protocol (closed: said
// on stderr), or if `stop` (a signalfd, or -1) fired or the deadline passed while waiting.
enum class woke { ready, closed, stopped, timed_out };
[[nodiscard]] std::optional<message> receive_message(int sock, int stop,
                                                     ipc::steady::time_point deadline,
                                                     woke* why = nullptr);

// poll(2) until `fd` is readable, `stop` (-1: none) is readable (a signalfd: a signal came; a
// pidfd, in the demo: the child ended), or the deadline passes.
[[nodiscard]] woke wait_readable(int fd, int stop, ipc::steady::time_point deadline);

// SIGINT, SIGTERM and SIGHUP blocked and readable from the returned signalfd: a process that
// waits in poll(2) then ends by its normal path. Call it after any wait outside poll (opening
// a FIFO, a connect), which these signals could no longer end.
[[nodiscard]] ipc::unique_fd stop_signals();
// Reads the signal from `stop`, says which it was, and returns it.
int read_stop_signal(int stop);

// A unix stream socket listening on `path`; a socket file is recorded in `file` to be removed
// at the end ("@name", Linux's abstract namespace, makes none).
[[nodiscard]] ipc::unique_fd listen_unix(const std::string& path, ipc::socket_file& file);

// connect(2) to `path`, with SO_PASSCRED set first: every message that arrives then carries
// its sender's credentials, as the kernel knows them.
[[nodiscard]] ipc::unique_fd connect_unix(const std::string& path);

// accept4(2), EINTR retried, and who connected (SO_PEERCRED: the peer at connect time).
// An empty fd, with a warning, if the connection was aborted or SO_PEERCRED failed; exits 1 on
// any other accept error (EMFILE...), which would come back at once, and for ever.
[[nodiscard]] ipc::unique_fd accept_peer(int listener, ucred& peer);

// Writes one line, checked; returns 0 or the errno value.
[[nodiscard]] int send_line(int sock, std::string_view line);

// A server of fdpass_handover.cpp: it greets each client with "served by pid P" and hands its
// listener to a successor that asks on the control socket.
struct server {
    ipc::unique_fd listener;        // TCP, non-blocking; ours until handed over
    ipc::unique_fd control;         // unix: where a successor asks for the listener
    ipc::socket_file control_file;  // its file, removed when the server ends
    ipc::unique_fd stop;            // signalfd for SIGINT, SIGTERM, SIGHUP (none in the demo)
    int successor = -1;             // the demo's: its forked successor's pidfd (not ours to close)
    std::string address;            // what the listener is bound to: "127.0.0.1:43117"
    std::uint64_t served = 0;       // connections greeted
};

// Opens the control socket and says "fdpass: serving on ADDR as pid P" (the readiness line).
void start_serving(server& s, const options& opt);
// Serves until a stop signal or --count (returns 0), a successor took the listener (0),
// accept failed (1), or the demo's successor (s.successor) ended (1: the demo says how).
int serve(server& s, const options& opt);

// fdpass_handover.cpp: the commands serve-listener and take-listener. fdpass_demo.cpp: demo.
int serve_listener(const options& opt);
int take_listener(const options& opt);
int demo();

// fdpass_file.cpp: the commands send and receive; the demo runs the holder's side, pass_file,
// with a file of its own.
int send_file(const options& opt);
int pass_file(int listener, int stop, int file, const options& opt);
int receive_file(const options& opt);

}  // namespace fdpass
