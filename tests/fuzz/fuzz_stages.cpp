// fuzz_stages: pipeline's cutting of its command words into stages (pipes/stages.hpp), on any
// bytes read as words separated by '\0' (as argv holds them). Checked: there is one stage more
// than there are "|" words; no stage holds a "|" word; the stages joined by "|" words give back
// exactly the words; first_empty names the first stage with no words, or 0 if there is none.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pipes/stages.hpp"

namespace {
void check(bool ok) {
    if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    stages::words all;
    std::size_t bars = 0;
    while (!rest.empty()) {
        const std::size_t end = rest.find('\0');
        all.emplace_back(rest.substr(0, end));
        if (all.back() == "|") ++bars;
        rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    }

    const std::vector<stages::words> cut = stages::split(all);
    check(cut.size() == bars + 1);
    stages::words joined;
    std::size_t empty = 0;
    for (std::size_t i = 0; i < cut.size(); ++i) {
        if (i > 0) joined.emplace_back("|");
        for (const std::string& word : cut[i]) {
            check(word != "|");
            joined.push_back(word);
        }
        if (cut[i].empty() && empty == 0) empty = i + 1;
    }
    check(joined == all);
    check(stages::first_empty(cut) == empty);
    return 0;
}
