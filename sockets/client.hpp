// sockets/client.hpp: what echoclient needs that teaches no IPC: the lines it sends (its
// arguments, or stdin's lines), the bytes it quotes in a message, and a private directory for
// the socket file a unixgram client binds.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace echo {

// The lines to send: the arguments, or stdin's lines (the last may lack its '\n'). Stdin is read
// as it comes, so lines typed at a terminal go one by one.
class line_source {
  public:
    explicit line_source(const std::vector<std::string>& args)
        : args_(args), from_stdin_(args.empty()) {}

    // The next line without its '\n', or nullopt at the end. A failed read(2) of stdin exits 1.
    [[nodiscard]] std::optional<std::string> next();

  private:
    const std::vector<std::string>& args_;
    bool from_stdin_;
    std::size_t next_arg_ = 0;
    std::string buf_;  // stdin bytes read past the last line handed out
    bool eof_ = false;
};

// The path a unixgram client binds, so that the server can send a reply back: client.sock in a
// private directory made by mkdtemp(3) under $TMPDIR (or /tmp); both are removed when this goes.
class client_socket_path {
  public:
    client_socket_path();
    client_socket_path(const client_socket_path&) = delete;
    client_socket_path& operator=(const client_socket_path&) = delete;
    ~client_socket_path();
    [[nodiscard]] const std::string& path() const { return path_; }

  private:
    std::string dir_;
    std::string path_;
};

}  // namespace echo
