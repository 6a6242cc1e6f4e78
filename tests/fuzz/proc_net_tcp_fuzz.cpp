// Arbitrary bytes as /proc/net/tcp and /proc/net/tcp6: every row is either
// parsed or counted as bad, and every parsed address formats sanely.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "discovery/proc_parsers.h"

namespace {

void check_address(const std::array<uint8_t, 16>& addr, bool from_ipv4_row) {
    const std::string text = sonde::discovery::format_ip(addr);
    // "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" is the longest form.
    if (text.empty() || text.size() > 39) {
        std::abort();
    }
    const bool dotted = text.find('.') != std::string::npos;
    if (from_ipv4_row && (!dotted || text.size() > 15)) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    for (const bool ipv6 : {false, true}) {
        size_t bad = 0;
        const auto rows = sonde::discovery::parse_proc_net_tcp(text, ipv6, &bad);
        if (rows.size() + bad > lines) {
            std::abort();
        }
        for (const auto& row : rows) {
            check_address(row.local_addr, !ipv6);
            check_address(row.remote_addr, !ipv6);
        }
    }
    if (size >= 16) {
        std::array<uint8_t, 16> raw{};
        std::copy(data, data + 16, raw.begin());
        check_address(raw, false);
    }
    return 0;
}
