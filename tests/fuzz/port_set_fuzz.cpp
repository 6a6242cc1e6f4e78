// Arbitrary bytes as a port list: errors are short messages, and every
// accepted set survives a round trip through its canonical text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "discovery/port_set.h"

using sonde::discovery::PortSet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto parsed = PortSet::parse(text);
    if (const auto* error = std::get_if<std::string>(&parsed)) {
        if (error->empty() || error->size() > 200) {
            std::abort();
        }
        return 0;
    }
    const PortSet& set = std::get<PortSet>(parsed);
    if (set.contains(0)) {
        std::abort();
    }
    const std::string canonical = set.to_string();
    const auto again = PortSet::parse(canonical);
    const auto* reparsed = std::get_if<PortSet>(&again);
    if (reparsed == nullptr || reparsed->to_string() != canonical) {
        std::abort();
    }
    for (uint32_t port = 1; port <= 65535; ++port) {
        if (set.contains(static_cast<uint16_t>(port)) !=
            reparsed->contains(static_cast<uint16_t>(port))) {
            std::abort();
        }
    }
    return 0;
}
