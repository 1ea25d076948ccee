// pipes/stages.cpp: see stages.hpp.
#include "stages.hpp"

namespace stages {

std::vector<words> split(const words& all) {
    std::vector<words> out(1);
    for (const std::string& word : all) {
        if (word == "|") {
            out.emplace_back();
        } else {
            out.back().push_back(word);
        }
    }
    return out;
}

std::size_t first_empty(const std::vector<words>& stages) {
    for (std::size_t i = 0; i < stages.size(); ++i) {
        if (stages[i].empty()) return i + 1;
    }
    return 0;
}

}  // namespace stages
