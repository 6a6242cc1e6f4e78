// The interface every application protocol implements, and the records it
// emits. A handler sees one TCP connection's two byte streams as pieces (one
// per syscall) and turns them into request/response exchanges. It is pure:
// no clock, no I/O, no globals; timestamps come in with the pieces.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sonde::protocols {

enum class Direction : uint8_t {
    Ingress = 0,  // bytes the process received
    Egress = 1,   // bytes the process sent
};

// Which side of the connection the observed process is.
enum class Role : uint8_t {
    Unknown = 0,  // decided by the handler from the first message it recognises
    Server = 1,   // requests arrive on Ingress
    Client = 2,   // requests leave on Egress
};

// One syscall's worth of stream bytes. `captured` is a prefix of the `length`
// bytes the syscall really moved; the rest (length - captured.size()) was not
// copied out of the kernel and is known only by its count.
struct StreamPiece {
    std::span<const uint8_t> captured;
    uint64_t length = 0;
    uint64_t ts_enter_ns = 0;  // syscall entry, CLOCK_MONOTONIC
    uint64_t ts_exit_ns = 0;   // syscall return, CLOCK_MONOTONIC
    // The last bytes of the piece (at most 16), when they were not captured
    // and the piece ends its syscall; empty otherwise. Lets a handler see
    // that a message ended in this piece even when its framing was hidden.
    std::span<const uint8_t> tail;
};

// One request and its response, as seen by the observed process.
// Times are CLOCK_MONOTONIC ns. A message "starts" at the piece holding its
// first byte and "ends" at the piece holding its last byte. For an Ingress
// piece both its first and last byte are taken at ts_exit_ns (the bytes had
// arrived when the call returned); for an Egress piece the first byte is at
// ts_enter_ns and the last at ts_exit_ns (handed to the kernel on return).
struct Exchange {
    std::string method;            // "GET"; empty if unknown
    std::string path;              // request target without query string or fragment
    std::string protocol_version;  // "1.0", "1.1", "2"
    int status = 0;                // response status code, 0 if none
    uint64_t request_start_ns = 0;
    uint64_t request_end_ns = 0;
    uint64_t response_start_ns = 0;
    uint64_t response_end_ns = 0;
    uint64_t request_body_bytes = 0;
    uint64_t response_body_bytes = 0;
    std::string host;         // Host header value (kept only for naming peers; never exported raw)
    std::string traceparent;  // W3C traceparent header value, if present
    std::string tracestate;   // W3C tracestate header value, if present
    Role role = Role::Unknown;

    // HTTP/2 only (HTTP/1.x leaves the defaults).
    // A gRPC call (request content-type application/grpc...): an RPC, not an HTTP request.
    // `path` is then the RPC method, "/package.Service/Method", and `method` is "POST".
    bool grpc = false;
    // gRPC status: from the grpc-status trailer (or a trailers-only response), else mapped
    // from the RST_STREAM error code as gRPC clients do; -1 when neither was seen.
    int grpc_status = -1;
    // The stream ended with RST_STREAM instead of END_STREAM: the call failed.
    bool reset = false;
    // Some header fields could not be decoded (the connection's HPACK dynamic table
    // predates Sonde): what is set was decoded exactly, the rest is left empty.
    bool partial = false;
};

// Counters a handler keeps about what it could not make sense of. All are
// monotonic; the tracker sums them into the agent's self-metrics.
struct ProtocolStats {
    uint64_t parse_errors = 0;        // bytes that did not parse; stream resynchronised
    uint64_t lost_sync = 0;           // a gap (uncaptured bytes) hid a message boundary
    uint64_t unpaired_responses = 0;  // response with no pending request
    uint64_t dropped_requests = 0;    // pending-request queue overflow or requests never answered
    uint64_t oversized_heads = 0;     // header block larger than the reassembly limit
    uint64_t partial_exchanges = 0;   // exchanges emitted with undecodable header fields

    bool operator==(const ProtocolStats&) const = default;
};

class ProtocolHandler {
public:
    virtual ~ProtocolHandler() = default;
    // Feed one piece; completed exchanges are appended to `out`.
    virtual void on_data(Direction direction, const StreamPiece& piece,
                         std::vector<Exchange>& out) = 0;
    // The connection closed at `ts_ns`: finish messages delimited by close.
    virtual void on_close(uint64_t ts_ns, std::vector<Exchange>& out) = 0;
    // The role the handler settled on (Unknown until it has seen a message).
    virtual Role role() const = 0;
    virtual const ProtocolStats& stats() const = 0;
};

}  // namespace sonde::protocols
