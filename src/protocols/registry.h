// The list of application protocols Sonde understands. Adding a protocol is
// one folder under src/protocols/ plus one line in registry.cpp.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "protocols/protocol.h"

namespace sonde::protocols {

struct Detection {
    std::unique_ptr<ProtocolHandler> handler;
    std::string_view protocol;  // "http1"
};

// Tries every registered protocol on the first captured bytes seen in
// `direction` of a connection whose role may already be known (from
// accept/connect). Returns a handler that has not yet seen these bytes.
Detection detect_protocol(Direction direction, std::span<const uint8_t> first_bytes,
                          Role known_role);

}  // namespace sonde::protocols
