#include "framer.hpp"

#include <utility>

namespace echo {

bool framer::feed(std::string_view in, std::string& out) {
    if (how_ == framing::messages) {
        if (in.size() > max_line_) return false;
        out.append(in);
        ++units_;
        return true;
    }
    while (!in.empty()) {
        const std::size_t nl = in.find('\n');
        if (nl == std::string_view::npos) {
            if (pending_.size() + in.size() > max_line_) return false;
            pending_.append(in);
            return true;
        }
        if (pending_.size() + nl > max_line_) return false;  // max_line counts no '\n'
        out.append(pending_).append(in.substr(0, nl + 1));
        pending_.clear();
        ++units_;
        in.remove_prefix(nl + 1);
    }
    return true;
}

std::string framer::finish() {
    if (!pending_.empty()) ++units_;
    return std::exchange(pending_, {});
}

}  // namespace echo
