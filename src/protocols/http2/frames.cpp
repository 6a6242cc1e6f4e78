// Frame-level parsing for HTTP/2, and the two detection predicates of
// http2.h, which only look at frame headers.
#include "protocols/http2/frames.h"

#include <algorithm>
#include <cstring>

#include "protocols/http2/http2.h"

namespace sonde::protocols::http2 {

namespace {

constexpr uint8_t kPreface[kPrefaceBytes] = {'P',  'R',  'I', ' ', '*',  ' ',  'H',  'T',
                                             'T',  'P',  '/', '2', '.',  '0',  '\r', '\n',
                                             '\r', '\n', 'S', 'M', '\r', '\n', '\r', '\n'};

// A prefix shorter than this ("PRI * HTTP/") could still be an HTTP/1 request
// with the odd method PRI; from here on only HTTP/2 can follow.
constexpr size_t kMinPrefaceMatch = 16;

// Detection refuses lengths above what any deployed peer announces
// (SETTINGS_MAX_FRAME_SIZE is 16 KiB by default; Go servers announce 1 MiB).
// It also keeps TLS records out: their first three bytes (0x14..0x17, 0x03,
// version) read as a frame length of at least 0x140300.
constexpr uint32_t kMaxPlausibleLength = 1u << 20;

uint32_t read_u32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Flags each type defines; others "MUST be ignored" by a receiver, but no
// real sender sets them, so detection treats them as a sign of non-HTTP/2.
uint8_t defined_flags(FrameType type) {
    switch (type) {
        case FrameType::Data:
            return flags::kEndStream | flags::kPadded;
        case FrameType::Headers:
            return flags::kEndStream | flags::kEndHeaders | flags::kPadded | flags::kPriority;
        case FrameType::Settings:
        case FrameType::Ping:
            return flags::kAck;
        case FrameType::PushPromise:
            return flags::kEndHeaders | flags::kPadded;
        case FrameType::Continuation:
            return flags::kEndHeaders;
        case FrameType::Priority:
        case FrameType::RstStream:
        case FrameType::GoAway:
        case FrameType::WindowUpdate:
            return 0;
    }
    return 0;
}

// Stricter than frame_header_error: only what real peers send.
bool plausible_header(const FrameHeader& h) {
    if (!h.known_type() || h.reserved_bit || h.length > kMaxPlausibleLength) return false;
    const auto type = static_cast<FrameType>(h.type);
    if ((h.flags & ~defined_flags(type)) != 0) return false;
    if (!frame_header_error(h).empty()) return false;
    // Both ends open streams of their own parity only and a server sends
    // HEADERS on even streams only after promising them; a HEADERS frame
    // on an odd stream is by far the common case.
    if (type == FrameType::Headers && h.stream_id % 2 == 0) return false;
    return true;
}

}  // namespace

std::span<const uint8_t> client_preface() {
    return kPreface;
}

std::optional<FrameHeader> parse_frame_header(std::span<const uint8_t> bytes) {
    if (bytes.size() < kFrameHeaderBytes) return std::nullopt;
    FrameHeader h;
    h.length = (uint32_t{bytes[0]} << 16) | (uint32_t{bytes[1]} << 8) | bytes[2];
    h.type = bytes[3];
    h.flags = bytes[4];
    const uint32_t id = read_u32(bytes.data() + 5);
    h.reserved_bit = (id & 0x80000000u) != 0;
    h.stream_id = id & 0x7fffffffu;
    return h;
}

std::string_view frame_header_error(const FrameHeader& h) {
    if (!h.known_type()) return {};
    const uint32_t padded = h.has(flags::kPadded) ? 1 : 0;
    switch (static_cast<FrameType>(h.type)) {
        case FrameType::Data:
            if (h.stream_id == 0) return "DATA on stream 0";
            if (h.length < padded) return "DATA too short for its Pad Length";
            return {};
        case FrameType::Headers:
            if (h.stream_id == 0) return "HEADERS on stream 0";
            if (h.length < padded + (h.has(flags::kPriority) ? 5 : 0)) {
                return "HEADERS too short for its padding and priority fields";
            }
            return {};
        case FrameType::Priority:
            if (h.stream_id == 0) return "PRIORITY on stream 0";
            if (h.length != 5) return "PRIORITY length is not 5";
            return {};
        case FrameType::RstStream:
            if (h.stream_id == 0) return "RST_STREAM on stream 0";
            if (h.length != 4) return "RST_STREAM length is not 4";
            return {};
        case FrameType::Settings:
            if (h.stream_id != 0) return "SETTINGS on a stream";
            if (h.length % 6 != 0) return "SETTINGS length is not a multiple of 6";
            if (h.has(flags::kAck) && h.length != 0) return "SETTINGS ACK with a payload";
            return {};
        case FrameType::PushPromise:
            if (h.stream_id == 0) return "PUSH_PROMISE on stream 0";
            if (h.length < padded + 4) return "PUSH_PROMISE too short for its promised stream";
            return {};
        case FrameType::Ping:
            if (h.stream_id != 0) return "PING on a stream";
            if (h.length != 8) return "PING length is not 8";
            return {};
        case FrameType::GoAway:
            if (h.stream_id != 0) return "GOAWAY on a stream";
            if (h.length < 8) return "GOAWAY shorter than 8";
            return {};
        case FrameType::WindowUpdate:
            if (h.length != 4) return "WINDOW_UPDATE length is not 4";
            return {};
        case FrameType::Continuation:
            if (h.stream_id == 0) return "CONTINUATION on stream 0";
            return {};
    }
    return {};
}

std::optional<uint32_t> padding_overhead(const FrameHeader& header, uint8_t pad_length) {
    if (!header.has(flags::kPadded)) return 0u;
    const uint32_t overhead = 1u + pad_length;
    if (overhead > header.length) return std::nullopt;
    return overhead;
}

namespace {

// Where a PADDED frame's content starts (after the Pad Length byte) and how
// many padding bytes end it; nullopt when the Pad Length byte is missing.
struct Padding {
    size_t begin = 0;
    size_t pad = 0;
};

std::optional<Padding> padding_of(const FrameHeader& header, std::span<const uint8_t> payload) {
    if (!header.has(flags::kPadded)) return Padding{};
    if (payload.empty()) return std::nullopt;
    return Padding{1, payload[0]};
}

}  // namespace

std::optional<std::span<const uint8_t>> headers_fragment(const FrameHeader& header,
                                                         std::span<const uint8_t> payload) {
    std::optional<Padding> padding = padding_of(header, payload);
    if (!padding) return std::nullopt;
    auto [begin, pad] = *padding;
    // Stream dependency (4) and weight (1): only a sender's scheduling hint.
    if (header.has(flags::kPriority)) begin += 5;
    if (begin + pad > payload.size()) return std::nullopt;
    return payload.subspan(begin, payload.size() - begin - pad);
}

std::optional<PushPromise> push_promise_payload(const FrameHeader& header,
                                                std::span<const uint8_t> payload) {
    std::optional<Padding> padding = padding_of(header, payload);
    if (!padding) return std::nullopt;
    auto [begin, pad] = *padding;
    if (begin + 4 + pad > payload.size()) return std::nullopt;
    PushPromise out;
    out.promised_stream_id = read_u32(payload.data() + begin) & 0x7fffffffu;
    begin += 4;
    out.fragment = payload.subspan(begin, payload.size() - begin - pad);
    return out;
}

bool parse_settings(std::span<const uint8_t> payload, Settings& out) {
    if (payload.size() % 6 != 0) return false;
    for (size_t i = 0; i < payload.size(); i += 6) {
        const uint16_t id = static_cast<uint16_t>((payload[i] << 8) | payload[i + 1]);
        const uint32_t value = read_u32(payload.data() + i + 2);
        switch (id) {
            case setting::kHeaderTableSize:
                out.header_table_size = value;
                break;
            case setting::kMaxFrameSize:
                out.max_frame_size = value;
                break;
            default:
                break;  // unknown settings must be ignored
        }
        ++out.entries;
    }
    return true;
}

std::optional<uint32_t> rst_stream_error(std::span<const uint8_t> payload) {
    if (payload.size() != 4) return std::nullopt;
    return read_u32(payload.data());
}

std::optional<GoAway> parse_goaway(std::span<const uint8_t> payload) {
    if (payload.size() < 8) return std::nullopt;
    return GoAway{read_u32(payload.data()) & 0x7fffffffu, read_u32(payload.data() + 4)};
}

std::optional<uint32_t> window_update_increment(std::span<const uint8_t> payload) {
    if (payload.size() != 4) return std::nullopt;
    return read_u32(payload.data()) & 0x7fffffffu;
}

bool starts_with_preface(std::span<const uint8_t> bytes) {
    const size_t n = std::min(bytes.size(), kPrefaceBytes);
    return n >= kMinPrefaceMatch && std::memcmp(bytes.data(), kPreface, n) == 0;
}

bool looks_like_frames(std::span<const uint8_t> bytes) {
    // Every frame header that lies wholly in `bytes` must be plausible, so a
    // longer capture is a stronger test than the first nine bytes alone.
    size_t pos = 0;
    size_t frames = 0;
    bool in_block = false;  // a header block is open: only its CONTINUATION may follow
    uint32_t block_stream = 0;
    while (bytes.size() - pos >= kFrameHeaderBytes) {
        const FrameHeader h = *parse_frame_header(bytes.subspan(pos));
        if (!plausible_header(h)) return false;
        const bool continuation = h.is(FrameType::Continuation);
        // A CONTINUATION means nothing without the HEADERS before it, so no
        // frame sequence we can follow starts with one.
        if (continuation != in_block) return false;
        if (continuation && h.stream_id != block_stream) return false;
        if (h.is(FrameType::Headers) || h.is(FrameType::PushPromise) || continuation) {
            in_block = !h.has(flags::kEndHeaders);
            block_stream = h.stream_id;
        }
        ++frames;
        const size_t payload_begin = pos + kFrameHeaderBytes;
        if (bytes.size() - payload_begin < h.length) break;  // payload runs past the capture
        const std::span<const uint8_t> payload = bytes.subspan(payload_begin, h.length);
        if (h.is(FrameType::Headers) && !headers_fragment(h, payload)) return false;
        if (h.is(FrameType::PushPromise) && !push_promise_payload(h, payload)) return false;
        if (h.is(FrameType::Data) && h.has(flags::kPadded) && !padding_overhead(h, payload[0])) {
            return false;
        }
        pos = payload_begin + h.length;
    }
    return frames > 0;
}

}  // namespace sonde::protocols::http2
