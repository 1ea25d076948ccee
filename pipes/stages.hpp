// pipes/stages.hpp: pipeline's command words cut into stages at each "|" word, as a shell cuts
// `ps aux | grep go`. No I/O: a file of its own so that tests/fuzz/fuzz_stages.cpp reaches it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace stages {

using words = std::vector<std::string>;

// The words of each stage, in order, cut at each word that is exactly "|" (there is always one
// stage more than there are "|" words). A word that only contains '|' ("a|b") is an argument,
// as it is when a shell passes it quoted.
[[nodiscard]] std::vector<words> split(const words& all);

// The number (from 1) of the first stage with no command, or 0 if every stage has one.
[[nodiscard]] std::size_t first_empty(const std::vector<words>& stages);

}  // namespace stages
