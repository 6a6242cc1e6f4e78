// HTTP/2 and gRPC (RFC 9113, gRPC over HTTP/2): one connection's frames turned
// into one Exchange per stream. Cleartext (h2c) and TLS plaintext alike.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "protocols/protocol.h"

namespace sonde::protocols::http2 {

// True when `bytes` start with the client connection preface
// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (or are a non-empty prefix of it of at least 16 bytes).
bool starts_with_preface(std::span<const uint8_t> bytes);

// True when `bytes` plausibly start a frame sequence of a connection already
// under way: a well-formed frame header of a known type whose flags, stream id
// and length fit that type (e.g. HEADERS on an odd stream, SETTINGS on stream 0
// with a length that is a multiple of 6). Conservative: HTTP/1.x text and
// TLS records never match.
bool looks_like_frames(std::span<const uint8_t> bytes);

// A handler for one connection. `from_connection_start`: the first bytes it
// will see are the preface (client side) or the first frames of a new
// connection, so HPACK state is exact; otherwise header blocks are decoded
// partially until the history no longer matters. `role` may be Unknown when
// attached mid-connection: the handler settles it from the first request
// headers (:method) it sees.
std::unique_ptr<ProtocolHandler> make_handler(Role role, bool from_connection_start);

}  // namespace sonde::protocols::http2
