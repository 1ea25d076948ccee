// ipc/posix_name.hpp: the name of a POSIX IPC object (shm_open, sem_open, mq_open).
//
//   ipc::posix_ipc_name("note")    -> "/note"   (what shm_open wants; the file is /dev/shm/note)
//   ipc::posix_ipc_name("/note")   -> "/note"
//   ipc::posix_ipc_name("a/b")     throws std::invalid_argument naming the text
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ipc {

// "/" and one file name: what shm_open(3), sem_open(3) and mq_open(3) accept portably. The
// leading '/' may be given or not. `max_length` counts the name without its '/': 255 (NAME_MAX)
// for shared memory and message queues, 251 for semaphores (glibc files them as "sem.NAME").
// Throws std::invalid_argument for an empty name, ".", "..", a '/' inside, a NUL byte, or one
// too long.
[[nodiscard]] std::string posix_ipc_name(std::string_view text, std::size_t max_length = 255);

}  // namespace ipc
