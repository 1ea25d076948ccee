// fuzz_net: the address parsers of common/net, which --listen and --connect go through, on any
// bytes: host:port splitting (parse_host_port), unix paths (parse_unix_addr) and numeric
// resolution for every network (parse_numeric_addr; never a lookup), then addr_string on what
// they made; and addr_string on raw socket address bytes, as a hostile unixgram peer can send
// any sun_path. A bad text must throw std::invalid_argument, nothing else; a good address must
// print, and a printed IP address must parse back to the same one.
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ipc/net.hpp"

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

void fuzz_host_port(std::string_view text) {
    for (const auto zero : {ipc::port_zero::allowed, ipc::port_zero::refused}) {
        try {
            const ipc::host_port hp = ipc::parse_host_port(text, zero);
            check(std::to_string(hp.number) == hp.port || hp.port.starts_with('0'));
            check(zero == ipc::port_zero::allowed || hp.number != 0);
        } catch (const std::invalid_argument&) {}
    }
}

void fuzz_unix(std::string_view text) {
    try {
        const ipc::sock_addr a = ipc::parse_unix_addr(text);
        check(a.family() == AF_UNIX && a.len <= sizeof(a.storage));
        const std::string shown = ipc::addr_string(a);
        // A path prints as given up to its first NUL; an abstract name as given.
        if (text[0] == '@') check(shown == text);
    } catch (const std::invalid_argument&) {}
}

void fuzz_resolve(std::string_view text) {
    for (const ipc::network& net : ipc::networks) {
        for (const auto purpose : {ipc::resolve_for::listen, ipc::resolve_for::dial}) {
            try {
                const auto a = ipc::parse_numeric_addr(net, text, purpose);
                if (!a) continue;
                check(a->len <= sizeof(a->storage));
                const std::string shown = ipc::addr_string(*a);
                if (a->family() != AF_UNIX) {  // "1.2.3.4:80", "[::1]:80" parse back the same
                    const auto again =
                        ipc::parse_numeric_addr(net, shown, ipc::resolve_for::listen);
                    check(again && again->len == a->len &&
                          std::memcmp(&again->storage, &a->storage, a->len) == 0);
                }
            } catch (const std::invalid_argument&) {}
        }
    }
}

// Raw bytes as a socket address of each family, as accept(2) or recvfrom(2) could fill it.
void fuzz_addr_string(std::string_view bytes) {
    for (const int family : {AF_UNIX, AF_INET, AF_INET6}) {
        ipc::sock_addr a;
        const std::size_t n = std::min(bytes.size(), sizeof(a.storage));
        std::memcpy(&a.storage, bytes.data(), n);
        a.storage.ss_family = static_cast<sa_family_t>(family);
        a.len = static_cast<socklen_t>(std::max(n, sizeof(sa_family_t)));
        (void)ipc::addr_string(a);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    fuzz_host_port(text);
    fuzz_unix(text);
    fuzz_resolve(text);
    fuzz_addr_string(text);
    return 0;
}
