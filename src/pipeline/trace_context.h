// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` and `tracestate`
// header values a request may carry. Pure functions over string views: no I/O, no allocation
// except where a std::string is returned, nothing thrown.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sonde::pipeline {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

inline constexpr uint8_t kTraceFlagSampled = 0x01;
// Trace Context Level 2: the rightmost 7 bytes of the trace id are random.
inline constexpr uint8_t kTraceFlagRandom = 0x02;

// "00-" 32 hex "-" 16 hex "-" 2 hex
inline constexpr size_t kTraceParentLength = 55;
// The spec asks vendors to propagate at least this much of a combined tracestate; we keep no more.
inline constexpr size_t kTraceStateMaxLength = 512;
inline constexpr size_t kTraceStateMaxMembers = 32;

struct TraceParent {
    TraceId trace_id{};
    SpanId parent_span_id{};
    uint8_t version = 0;
    // Version 00: the byte as received. Later versions: only the sampled bit, as the spec says.
    uint8_t flags = 0;
    bool valid = false;

    bool sampled() const { return valid && (flags & kTraceFlagSampled) != 0; }
};

// Strict parse of a traceparent value. Invalid input gives `valid == false` (the caller then
// starts a new trace and must ignore tracestate). The HTTP layer strips surrounding whitespace.
TraceParent parse_traceparent(std::string_view value) noexcept;

// Version 00 form, exactly kTraceParentLength characters.
std::string format_traceparent(const TraceId& trace_id, const SpanId& span_id, uint8_t flags);
void format_traceparent_to(const TraceId& trace_id, const SpanId& span_id, uint8_t flags,
                           std::array<char, kTraceParentLength>& out) noexcept;

// True when `value` is a well-formed tracestate list: at most 32 non-empty members, unique keys,
// keys and values per the spec's grammar, and no longer than kTraceStateMaxLength.
bool is_valid_tracestate(std::string_view value) noexcept;
// `value` itself when valid, else empty: a tracestate we cannot vouch for is not propagated.
std::string_view sanitize_tracestate(std::string_view value) noexcept;

// Hex helpers (lowercase, as the spec requires on the wire).
bool is_all_zero(const uint8_t* bytes, size_t n) noexcept;
// Decodes exactly 2*n lowercase hex chars into n bytes; false (out untouched) on any other char.
bool hex_decode_lower(std::string_view hex, uint8_t* out, size_t n) noexcept;
void hex_encode(const uint8_t* bytes, size_t n, char* out) noexcept;  // writes 2*n chars
std::string to_hex(const TraceId& id);
std::string to_hex(const SpanId& id);

}  // namespace sonde::pipeline
