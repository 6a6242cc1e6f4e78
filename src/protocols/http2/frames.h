// HTTP/2 frame layout (RFC 9113 section 4 and 6): the 9-byte frame header and
// the per-type payload fields the connection handler reads. Pure functions
// over bytes; nothing here keeps state or allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace sonde::protocols::http2 {

inline constexpr size_t kFrameHeaderBytes = 9;
// The 24-bit length field cannot say more; SETTINGS_MAX_FRAME_SIZE tops out here too.
inline constexpr uint32_t kMaxFrameLength = (1u << 24) - 1;
// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".
inline constexpr size_t kPrefaceBytes = 24;
std::span<const uint8_t> client_preface();

enum class FrameType : uint8_t {
    Data = 0x0,
    Headers = 0x1,
    Priority = 0x2,
    RstStream = 0x3,
    Settings = 0x4,
    PushPromise = 0x5,
    Ping = 0x6,
    GoAway = 0x7,
    WindowUpdate = 0x8,
    Continuation = 0x9,
};

// Types above this one are extensions (ALTSVC, ORIGIN, PRIORITY_UPDATE, ...),
// which a receiver must skip.
inline constexpr uint8_t kLastKnownFrameType = 0x9;

namespace flags {
inline constexpr uint8_t kEndStream = 0x01;   // DATA, HEADERS
inline constexpr uint8_t kAck = 0x01;         // SETTINGS, PING
inline constexpr uint8_t kEndHeaders = 0x04;  // HEADERS, PUSH_PROMISE, CONTINUATION
inline constexpr uint8_t kPadded = 0x08;      // DATA, HEADERS, PUSH_PROMISE
inline constexpr uint8_t kPriority = 0x20;    // HEADERS
}  // namespace flags

// Error codes (RFC 9113 section 7) that change what Sonde reports.
namespace error_code {
inline constexpr uint32_t kNoError = 0x0;
inline constexpr uint32_t kProtocolError = 0x1;
inline constexpr uint32_t kInternalError = 0x2;
inline constexpr uint32_t kRefusedStream = 0x7;
inline constexpr uint32_t kCancel = 0x8;
inline constexpr uint32_t kEnhanceYourCalm = 0xb;
inline constexpr uint32_t kInadequateSecurity = 0xc;
}  // namespace error_code

// SETTINGS parameters Sonde reads.
namespace setting {
inline constexpr uint16_t kHeaderTableSize = 0x1;
inline constexpr uint16_t kMaxFrameSize = 0x5;
}  // namespace setting

struct FrameHeader {
    uint32_t length = 0;  // payload bytes after the 9-byte header
    uint8_t type = 0;     // a FrameType value, or an extension type
    uint8_t flags = 0;
    uint32_t stream_id = 0;  // reserved bit cleared
    bool reserved_bit = false;

    bool has(uint8_t flag) const { return (flags & flag) != 0; }
    bool is(FrameType t) const { return type == static_cast<uint8_t>(t); }
    bool known_type() const { return type <= kLastKnownFrameType; }
};

// Reads the first kFrameHeaderBytes of `bytes`; nullopt when fewer are there.
std::optional<FrameHeader> parse_frame_header(std::span<const uint8_t> bytes);

// Why a frame header cannot belong to a valid connection, judged from the
// header alone (RFC 9113 section 6: the stream-id and fixed-length rules a
// receiver treats as connection errors). Empty when it is acceptable. Unknown
// types are acceptable whatever they carry.
std::string_view frame_header_error(const FrameHeader& header);

// The header-block fragment of a HEADERS payload without its padding and
// priority fields; nullopt when those fields do not fit in the payload.
std::optional<std::span<const uint8_t>> headers_fragment(const FrameHeader& header,
                                                         std::span<const uint8_t> payload);

struct PushPromise {
    uint32_t promised_stream_id = 0;
    std::span<const uint8_t> fragment;
};
// PUSH_PROMISE: the promised stream and the fragment without padding.
std::optional<PushPromise> push_promise_payload(const FrameHeader& header,
                                                std::span<const uint8_t> payload);

// Bytes of a DATA (or any PADDED) payload that are padding overhead: the
// Pad Length byte plus the padding itself, given the payload's first byte.
// nullopt when the padding would not fit in the frame.
std::optional<uint32_t> padding_overhead(const FrameHeader& header, uint8_t pad_length);

struct Settings {
    std::optional<uint32_t> header_table_size;
    std::optional<uint32_t> max_frame_size;
    uint32_t entries = 0;
};
// SETTINGS entries, later ones overriding earlier ones; false when the
// payload is not a whole number of 6-byte entries.
bool parse_settings(std::span<const uint8_t> payload, Settings& out);

// RST_STREAM's error code; nullopt unless the payload is exactly 4 bytes.
std::optional<uint32_t> rst_stream_error(std::span<const uint8_t> payload);

struct GoAway {
    uint32_t last_stream_id = 0;
    uint32_t error_code = 0;
};
// GOAWAY's fixed fields; the debug data after them is ignored. Needs 8 bytes.
std::optional<GoAway> parse_goaway(std::span<const uint8_t> payload);

// WINDOW_UPDATE's increment; nullopt unless the payload is exactly 4 bytes.
std::optional<uint32_t> window_update_increment(std::span<const uint8_t> payload);

}  // namespace sonde::protocols::http2
