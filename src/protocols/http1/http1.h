// HTTP/1.0 and HTTP/1.1: pure parsers over bytes, and the connection handler
// that pairs requests with responses.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "protocols/protocol.h"

namespace sonde::protocols::http1 {

enum class ParseStatus : uint8_t { Complete, NeedMore, Invalid };

// How the message body is delimited (RFC 9112 section 6).
enum class BodyFraming : uint8_t { None, ContentLength, Chunked, UntilClose };

struct MessageHead {
    bool is_request = false;
    std::string method;     // requests
    std::string target;     // requests, raw request-target
    int status = 0;         // responses
    int version_minor = 1;  // HTTP/1.<minor>
    std::optional<uint64_t> content_length;
    bool chunked = false;
    bool connection_close = false;  // "Connection: close", or HTTP/1.0 without keep-alive
    bool upgrade = false;           // "Connection: upgrade" present
    std::string host;
    std::string traceparent;
    std::string tracestate;

    // Back to a default-constructed head, keeping the strings' storage.
    void clear();
};

struct HeadParseResult {
    ParseStatus status = ParseStatus::NeedMore;
    size_t consumed = 0;  // bytes of the head including the final CRLFCRLF, when Complete
    MessageHead head;
    std::string_view error;  // static text when Invalid
};

// Limits that bound memory and work on hostile input.
struct Limits {
    size_t max_head_bytes = 16 * 1024;  // request/status line plus headers
    size_t max_headers = 128;
    size_t max_pending_requests = 64;  // pipelined requests awaiting a response
};

// Parse a request head (is_request) or a status-line head from the start of
// `bytes`. Accepts bare LF line endings; rejects anything that is not HTTP/1.x.
HeadParseResult parse_head(std::span<const uint8_t> bytes, bool is_request,
                           const Limits& limits = {});

// The same, into `result`, whose strings keep their storage from one call to
// the next: the connection handler parses every head of a connection into
// one result, so a steady stream of requests does not allocate.
void parse_head_into(std::span<const uint8_t> bytes, bool is_request, const Limits& limits,
                     HeadParseResult& result);

// True when `bytes` plausibly start an HTTP/1 request ("GET /", "POST /", ...)
// or, with is_request=false, a response ("HTTP/1."). Used for protocol
// detection and to resynchronise after a gap. Needs at most 16 bytes.
bool looks_like_message_start(std::span<const uint8_t> bytes, bool is_request);

// Body framing of a parsed head. For responses, `request_method` is the
// method of the request it answers (HEAD responses have no body) .
BodyFraming body_framing(const MessageHead& head, std::string_view request_method = {});

// Strip "?query" and "#fragment"; absolute-form targets keep only the path.
// The result views `target` (or a static "/").
std::string_view path_of_target(std::string_view target);

std::unique_ptr<ProtocolHandler> make_handler(Role role, const Limits& limits = {});

}  // namespace sonde::protocols::http1
