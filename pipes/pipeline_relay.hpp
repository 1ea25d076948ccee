// pipes/pipeline_relay.hpp: `pipeline --relay` and `--splice`, the parent between the stages
// copying each link's bytes itself (pipeline_relay.cpp, a lesson of its own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ipc/fd.hpp"

namespace relay {

// The parent's side of one link: it reads what stage i writes and passes it on to stage i+1
// through a buffer of bounded size, so no stage's output is ever held whole.
struct link {
    ipc::unique_fd from;             // read end of stage i's stdout; closed at EOF
    ipc::unique_fd to;               // write end of stage i+1's stdin; closed when the link is done
    std::size_t chunk = 0;           // the most one read() or splice() moves
    std::vector<char> buf;           // read/write: `chunk` bytes; --splice: none
    std::size_t begin = 0, end = 0;  // buf[begin, end) has been read and not yet written
    bool readable = false;           // --splice: poll() said `from` has input (or EOF)
    bool writable = false;           // --splice: poll() said `to` has room
    std::uint64_t relayed = 0;       // bytes written to stage i+1
    std::uint64_t dropped = 0;       // bytes read that stage i+1 was no longer there to take
};

// The link between `from` (stage i's stdout) and `to` (stage i+1's stdin), both made
// non-blocking: one poll() waits for all links, and no read or write may hold it up.
[[nodiscard]] link make_link(ipc::unique_fd from, ipc::unique_fd to, std::size_t chunk,
                             bool splice);

// Copies every link until all are done: with read(2)/write(2), or with splice(2) pipe to pipe.
void run(std::vector<link>& links, bool splice);

}  // namespace relay
