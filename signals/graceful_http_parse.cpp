// The request parser of graceful's HTTP server (graceful_http.hpp), strict where leniency lets a
// request be read two ways (RFC 9112: no space before a header's colon, no folded lines, no
// Transfer-Encoding, one Content-Length, bare CR refused), lenient where it harms nobody (a bare
// LF ends a line, empty lines before a request are skipped). Shared with its unit test.
#include <algorithm>
#include <cctype>

#include "graceful_http.hpp"
#include "ipc/units.hpp"

namespace http {
namespace {

using sv = std::string_view;

// Splits the next line off `rest`, without its "\r\n" or "\n"; nullopt until a '\n' has come.
std::optional<sv> next_line(sv& rest) {
    const auto nl = rest.find('\n');
    if (nl == sv::npos) return std::nullopt;
    sv line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    return line;
}

bool iequals(sv a, sv b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

bool has_token(sv list, sv token) {  // "keep-alive, Upgrade" has "upgrade"
    while (!list.empty()) {
        const auto comma = list.find(',');
        sv item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (iequals(item, token)) return true;
        list = comma == sv::npos ? sv{} : list.substr(comma + 1);
    }
    return false;
}

bool is_token(sv s) {  // RFC 9110's tchar: what a method or a header name is made of
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
               sv{"!#$%&'*+-.^_`|~"}.find(c) != sv::npos;
    });
}

bool has_control(sv s) {  // CR, NUL and the other controls, except a tab
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return (u < 0x20 && c != '\t') || u == 0x7f;
    });
}

parsed bad(int status) {
    parsed p;
    p.result = parsed::state::bad;
    p.status = status;
    p.keep_alive = false;
    return p;
}

// "GET /path?query HTTP/1.1": 0 if good, or the status to answer.
int request_line(sv line, parsed& p) {
    const auto sp1 = line.find(' ');
    const auto sp2 = line.rfind(' ');
    if (sp1 == sv::npos || sp2 == sp1 || has_control(line)) return 400;
    const sv method = line.substr(0, sp1);
    const sv target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const sv version = line.substr(sp2 + 1);
    if (!is_token(method) || !target.starts_with('/') || target.find(' ') != sv::npos) return 400;
    if (version == "HTTP/1.0") {
        p.http10 = true;
        p.keep_alive = false;
    } else if (version != "HTTP/1.1") {
        const bool http = version.size() == 8 && version.starts_with("HTTP/") &&
                          std::isdigit(static_cast<unsigned char>(version[5])) != 0 &&
                          version[6] == '.' && std::isdigit(static_cast<unsigned char>(version[7]));
        return http ? 505 : 400;
    }
    p.req.method = method;
    const auto q = target.find('?');
    p.req.path = target.substr(0, q);
    p.req.query = q == sv::npos ? sv{} : target.substr(q + 1);
    return method == "GET" || method == "HEAD" ? 0 : 405;
}

struct header_state {
    int hosts = 0;
    std::optional<std::size_t> content_length;
};

// "Name: value": 0 if good, or the status to answer.
int header(sv line, parsed& p, header_state& h) {
    const auto colon = line.find(':');
    if (colon == sv::npos || !is_token(line.substr(0, colon)) || has_control(line)) return 400;
    const sv name = line.substr(0, colon);
    sv value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (iequals(name, "Host")) ++h.hosts;
    if (iequals(name, "Transfer-Encoding")) return 501;  // no chunked bodies: answered, closed
    if (iequals(name, "Connection")) {
        if (has_token(value, "close")) p.keep_alive = false;
        if (p.http10 && has_token(value, "keep-alive")) p.keep_alive = true;
    }
    if (iequals(name, "Content-Length")) {
        const auto n = ipc::parse_decimal<std::size_t>(value);
        if (!n) return 400;
        if (h.content_length && *h.content_length != *n) return 400;
        h.content_length = *n;
    }
    return 0;
}

}  // namespace

parsed parse_request(std::string_view input) {
    sv rest = input;
    std::optional<sv> line;
    do {  // RFC 9112 2.2: empty lines before a request line are ignored
        line = next_line(rest);
    } while (line && line->empty() && input.size() - rest.size() <= max_head);
    const auto incomplete = [&] { return input.size() > max_head ? bad(431) : parsed{}; };
    if (!line) return incomplete();
    parsed p;
    if (const int status = request_line(*line, p); status != 0) return bad(status);
    header_state h;
    for (;;) {
        line = next_line(rest);
        if (!line) return incomplete();
        if (line->empty()) break;
        if (line->front() == ' ' || line->front() == '\t') return bad(400);  // obsolete folding
        if (const int status = header(*line, p, h); status != 0) return bad(status);
    }
    if (input.size() - rest.size() > max_head) return bad(431);
    if (!p.http10 && h.hosts != 1) return bad(400);  // HTTP/1.1 requires exactly one Host
    const std::size_t body = h.content_length.value_or(0);
    if (body > max_body) return bad(413);
    if (rest.size() < body) return parsed{};
    p.result = parsed::state::complete;
    p.length = input.size() - rest.size() + body;
    return p;
}

std::optional<std::string_view> query_value(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name)
            return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    }
    return std::nullopt;
}

}  // namespace http
