// The HTTP/2 connection handler: reads each direction of one connection as a
// sequence of frames, whatever the syscall boundaries, decodes every header
// block in order so HPACK state stays in step, and reports one exchange per
// stream (request headers, DATA bytes, response headers, trailers or reset).
#include <algorithm>
#include <cassert>
#include <cstring>
#include <deque>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/http1/http1.h"
#include "protocols/http2/frames.h"
#include "protocols/http2/hpack.h"
#include "protocols/http2/http2.h"

namespace sonde::protocols::http2 {

namespace {

// A header block (HEADERS or PUSH_PROMISE plus CONTINUATIONs, as sent) larger
// than this is skipped: real ones are a few hundred bytes, and the buffer is
// the only per-connection memory a peer controls.
constexpr uint32_t kMaxHeaderBlockBytes = 64 * 1024;
// Streams tracked at once; SETTINGS_MAX_CONCURRENT_STREAMS is commonly 100-250.
constexpr size_t kMaxOpenStreams = 512;
// SETTINGS entries read per frame; a peer has fewer than ten to send.
constexpr uint32_t kMaxSettingsPayload = 64 * 6;
// RFC 7541 section 4.2: the table size before any SETTINGS.
constexpr uint32_t kDefaultTableSize = 4096;

constexpr size_t index_of(Direction d) {
    return static_cast<size_t>(d);
}

constexpr Direction other(Direction d) {
    return d == Direction::Ingress ? Direction::Egress : Direction::Ingress;
}

// gRPC's mapping of HTTP/2 error codes for a stream reset before it had a
// grpc-status (grpc/doc/PROTOCOL-HTTP2.md, "Errors").
int grpc_status_of_reset(uint32_t error) {
    switch (error) {
        case error_code::kRefusedStream:
            return 14;  // UNAVAILABLE: the call was never processed, a retry is safe
        case error_code::kCancel:
            return 1;  // CANCELLED
        case error_code::kEnhanceYourCalm:
            return 8;  // RESOURCE_EXHAUSTED
        case error_code::kInadequateSecurity:
            return 7;  // PERMISSION_DENIED
        default:
            return 13;  // INTERNAL
    }
}

// What one direction of one stream has shown: a request or a response.
struct Message {
    bool open = false;   // its leading (non-1xx) header block was seen, or lost
    bool ended = false;  // END_STREAM
    bool partial = false;
    uint64_t start_ns = 0;
    uint64_t end_ns = 0;  // the last piece holding its bytes so far
    uint64_t body_bytes = 0;
    int trailer_grpc_status = -1;  // trailers, or a trailers-only response
    DecodedHeaders head;

    void reset() {
        open = ended = partial = false;
        start_ns = end_ns = body_bytes = 0;
        trailer_grpc_status = -1;
        // Strings are cleared, not freed: the slot's next stream reuses them.
        head.clear();
    }
};

struct StreamState {
    uint32_t id = 0;
    Message by_direction[2];  // indexed by Direction: the role may not be known yet
    bool reset = false;
    uint32_t reset_error = 0;
    uint64_t reset_start_ns = 0;
    uint64_t reset_end_ns = 0;
    // A client's response seen before its request: the request's record may still
    // come (a client writing and reading on different threads; docs/architecture.md,
    // "Record order").
    bool response_first = false;

    Message& in(Direction d) { return by_direction[index_of(d)]; }
};

// Open streams by id. Slots are reused, so a busy connection does not
// allocate per stream; lookups are a binary search over at most
// kMaxOpenStreams ids, kept sorted (client stream ids only grow, so inserts
// land at the end).
class StreamTable {
public:
    StreamState* find(uint32_t id) {
        auto it = lower(id);
        return it != index_.end() && it->id == id ? &slots_[it->slot] : nullptr;
    }

    bool full() const { return index_.size() >= kMaxOpenStreams; }
    bool empty() const { return index_.empty(); }
    size_t size() const { return index_.size(); }

    // The stream with the lowest id: the oldest a client opened.
    StreamState& oldest() {
        assert(!index_.empty());
        return slots_[index_.front().slot];
    }

    StreamState& insert(uint32_t id) {
        assert(!full() && find(id) == nullptr);
        uint32_t slot;
        if (!free_.empty()) {
            slot = free_.back();
            free_.pop_back();
        } else {
            slot = static_cast<uint32_t>(slots_.size());
            slots_.emplace_back();  // a deque: existing slots do not move
        }
        index_.insert(lower(id), Entry{id, slot});
        StreamState& s = slots_[slot];
        s.id = id;
        s.by_direction[0].reset();
        s.by_direction[1].reset();
        s.reset = false;
        s.reset_error = 0;
        s.reset_start_ns = s.reset_end_ns = 0;
        s.response_first = false;
        return s;
    }

    void erase(uint32_t id) {
        auto it = lower(id);
        if (it == index_.end() || it->id != id) return;
        free_.push_back(it->slot);
        index_.erase(it);
    }

    // Ids of the open streams, oldest first, into `ids` (reused by the caller),
    // so the caller may erase while it walks them.
    void ids(std::vector<uint32_t>& ids) const {
        ids.clear();
        for (const Entry& e : index_) ids.push_back(e.id);
    }

    void clear() {
        for (const Entry& e : index_) free_.push_back(e.slot);
        index_.clear();
    }

private:
    struct Entry {
        uint32_t id;
        uint32_t slot;
    };

    std::vector<Entry>::iterator lower(uint32_t id) {
        return std::lower_bound(index_.begin(), index_.end(), id,
                                [](const Entry& e, uint32_t v) { return e.id < v; });
    }

    std::deque<StreamState> slots_;
    std::vector<uint32_t> free_;
    std::vector<Entry> index_;
};

enum class Phase : uint8_t {
    Start,        // nothing seen in this direction yet
    Preface,      // inside the client connection preface
    FrameHeader,  // at or inside a 9-byte frame header
    Payload,      // inside a frame's payload
    Seeking,      // out of sync: waiting for a piece that starts with frames
};

// Reading state of one direction.
struct Reader {
    explicit Reader(bool history_known) : decoder(history_known) {}

    Phase phase = Phase::Start;
    size_t preface_matched = 0;

    uint8_t header_bytes[kFrameHeaderBytes] = {};
    size_t header_have = 0;
    FrameHeader frame;
    uint64_t frame_start_ns = 0;  // the piece holding the frame's first byte
    uint32_t payload_done = 0;
    uint32_t need = 0;               // leading payload bytes the frame's handling reads
    std::vector<uint8_t> collected;  // those bytes, when the payload spans pieces
    bool need_lost = false;          // some of them were not captured
    uint32_t data_padding = 0;       // DATA: trailing padding bytes, once the Pad Length is read

    // The header block being assembled; CONTINUATIONs must follow without a
    // frame of another kind in between (RFC 9113 section 6.10).
    bool in_block = false;
    uint32_t block_stream = 0;
    bool block_end_stream = false;
    bool block_push = false;
    bool block_lost = false;  // a fragment was not captured or the block outgrew the bound
    uint32_t block_wire_bytes = 0;
    uint64_t block_start_ns = 0;
    std::vector<uint8_t> block;

    HpackDecoder decoder;
    // The largest SETTINGS_HEADER_TABLE_SIZE the receiver of this direction announced.
    uint32_t table_size = kDefaultTableSize;
};

// The piece being read, with what follows from it.
struct PieceContext {
    Direction direction;
    const StreamPiece& piece;
    uint64_t first_byte_ns;  // when a message starting in this piece starts
    std::vector<Exchange>& out;
};

enum class Failure : uint8_t { ParseError, LostSync };

class Http2ConnectionHandler final : public ProtocolHandler {
public:
    Http2ConnectionHandler(Role role, bool from_connection_start)
        : role_(role),
          from_start_(from_connection_start),
          readers_{Reader(from_connection_start), Reader(from_connection_start)} {
        if (role != Role::Unknown) settle_role(role);
    }

    void on_data(Direction direction, const StreamPiece& piece,
                 std::vector<Exchange>& out) override;

    void on_close(uint64_t ts_ns, std::vector<Exchange>& out) override {
        (void)ts_ns;  // HTTP/2 delimits every message by frames, never by close
        (void)out;
        if (closed_) return;
        closed_ = true;
        streams_.ids(scratch_ids_);
        for (uint32_t id : scratch_ids_) drop_stream(*streams_.find(id));
        streams_.clear();
    }

    Role role() const override { return role_; }
    const ProtocolStats& stats() const override { return stats_; }

private:
    Reader& reader(Direction d) { return readers_[index_of(d)]; }

    void begin_direction(Reader& r, const PieceContext& ctx);
    void end_preface(Reader& r, Direction d);
    bool read_captured(Reader& r, const uint8_t* p, size_t available, uint64_t& pos,
                       const PieceContext& ctx);
    bool read_uncaptured(Reader& r, uint64_t count, uint64_t& pos, const PieceContext& ctx);
    bool on_frame_header(Reader& r, const PieceContext& ctx);
    bool on_payload(Reader& r, const uint8_t* p, uint32_t n, const PieceContext& ctx);
    bool count_data(Reader& r, const uint8_t* p, uint32_t offset, uint32_t n,
                    const PieceContext& ctx);
    bool on_frame_complete(Reader& r, std::span<const uint8_t> payload, const PieceContext& ctx);
    bool on_fragment(Reader& r, std::span<const uint8_t> payload, const PieceContext& ctx);
    void on_block_complete(Reader& r, std::span<const uint8_t> in_place, const PieceContext& ctx);
    void on_header_block(const DecodedHeaders& h, uint32_t stream_id, bool end_stream,
                         uint64_t start_ns, const PieceContext& ctx);
    void on_settings(Direction d, std::span<const uint8_t> payload);
    void on_reset(uint32_t stream_id, uint32_t error, const Reader& r, const PieceContext& ctx);
    void on_goaway(Direction d, uint32_t last_stream_id);

    StreamState& open_stream(uint32_t id);
    void settle_role(Role role);
    void finish_if_done(StreamState& s, std::vector<Exchange>& out);
    void finish_all_done(std::vector<Exchange>& out);
    void emit(StreamState& s, std::vector<Exchange>& out);
    void drop_stream(StreamState& s);
    // Held responses (response_first) of streams below `stream_id` whose request never came.
    void unpair_responses_below(uint32_t stream_id);
    void remember_reset(uint32_t id) {
        recent_resets_[next_reset_slot_] = id;
        next_reset_slot_ = (next_reset_slot_ + 1) % std::size(recent_resets_);
    }
    bool recently_reset(uint32_t id) const {
        return std::find(std::begin(recent_resets_), std::end(recent_resets_), id) !=
               std::end(recent_resets_);
    }
    void fail(Reader& r, Failure failure);
    void replace_decoder(Reader& r, bool history_known);

    Role role_;
    const bool from_start_;
    Direction request_dir_ = Direction::Ingress;  // meaningful once role_ is known
    Reader readers_[2];                           // by Direction
    StreamTable streams_;
    // The highest client stream id any frame has named: a new stream's HEADERS goes above it.
    uint32_t highest_stream_seen_ = 0;
    // The highest stream id whose request head was seen.
    uint32_t highest_request_stream_ = 0;
    DecodedHeaders scratch_headers_;
    std::vector<uint32_t> scratch_ids_;
    // Streams lately reported as reset: frames the peer had already sent for
    // them still arrive and are not unpaired responses. Stream 0 is never one.
    uint32_t recent_resets_[16] = {};
    size_t next_reset_slot_ = 0;
    bool closed_ = false;
    ProtocolStats stats_;
};

void Http2ConnectionHandler::on_data(Direction direction, const StreamPiece& piece,
                                     std::vector<Exchange>& out) {
    if (closed_) return;
    const size_t captured = piece.captured.size();
    // A piece claiming fewer bytes than it carries is inconsistent; trust the bytes.
    const uint64_t total = std::max<uint64_t>(piece.length, captured);
    if (total == 0) return;
    const PieceContext ctx{direction, piece,
                           direction == Direction::Ingress ? piece.ts_exit_ns : piece.ts_enter_ns,
                           out};
    Reader& r = reader(direction);
    if (r.phase == Phase::Start) begin_direction(r, ctx);
    if (r.phase == Phase::Seeking) {
        // Frames and syscalls usually line up, so a later piece will start a frame.
        if (!looks_like_frames(piece.captured)) return;
        r.phase = Phase::FrameHeader;
        r.header_have = 0;
    }
    uint64_t pos = 0;
    while (pos < total) {
        const bool more =
            pos < captured ? read_captured(r, piece.captured.data() + pos, captured - pos, pos, ctx)
                           : read_uncaptured(r, total - pos, pos, ctx);
        if (!more) return;
    }
}

void Http2ConnectionHandler::begin_direction(Reader& r, const PieceContext& ctx) {
    const std::span<const uint8_t> bytes = ctx.piece.captured;
    const bool may_send_preface = role_ == Role::Unknown || ctx.direction == request_dir_;
    if (from_start_) {
        // The client's bytes must begin with the preface (a mismatch is then
        // a parse error, not frames to guess at). With the role unknown, the
        // server's SETTINGS come first from the other side; their first byte
        // is a length byte of 0, never the preface's 'P'.
        const bool preface_expected =
            may_send_preface && (role_ != Role::Unknown || (!bytes.empty() && bytes[0] == 'P'));
        r.phase = preface_expected ? Phase::Preface : Phase::FrameHeader;
        return;
    }
    if (may_send_preface && starts_with_preface(bytes)) {
        // Attached before the client spoke after all (a server often writes
        // its SETTINGS before reading the preface, so the detector saw those
        // first): this direction's header blocks can be decoded exactly.
        r.phase = Phase::Preface;
        replace_decoder(r, /*history_known=*/true);
        return;
    }
    r.phase = looks_like_frames(bytes) ? Phase::FrameHeader : Phase::Seeking;
}

void Http2ConnectionHandler::end_preface(Reader& r, Direction d) {
    r.phase = Phase::FrameHeader;
    r.header_have = 0;
    // Whoever sends the preface is the client.
    if (role_ == Role::Unknown) settle_role(d == Direction::Egress ? Role::Client : Role::Server);
}

// Consumes captured bytes from `pos`; false when the rest of the piece is dropped.
bool Http2ConnectionHandler::read_captured(Reader& r, const uint8_t* p, size_t available,
                                           uint64_t& pos, const PieceContext& ctx) {
    switch (r.phase) {
        case Phase::Start:
        case Phase::Seeking:
            return false;
        case Phase::Preface: {
            const std::span<const uint8_t> preface = client_preface();
            const size_t n = std::min(available, preface.size() - r.preface_matched);
            if (std::memcmp(p, preface.data() + r.preface_matched, n) != 0) {
                fail(r, Failure::ParseError);
                return false;
            }
            r.preface_matched += n;
            pos += n;
            if (r.preface_matched == preface.size()) end_preface(r, ctx.direction);
            return true;
        }
        case Phase::FrameHeader: {
            if (r.header_have == 0) r.frame_start_ns = ctx.first_byte_ns;
            const uint8_t* header = p;
            if (r.header_have == 0 && available >= kFrameHeaderBytes) {
                pos += kFrameHeaderBytes;  // the usual case: read it where it lies
            } else {
                const size_t n = std::min(available, kFrameHeaderBytes - r.header_have);
                std::memcpy(r.header_bytes + r.header_have, p, n);
                r.header_have += n;
                pos += n;
                if (r.header_have < kFrameHeaderBytes) return true;
                header = r.header_bytes;
            }
            r.header_have = 0;
            r.frame = *parse_frame_header({header, kFrameHeaderBytes});
            return on_frame_header(r, ctx);
        }
        case Phase::Payload: {
            const uint32_t n = static_cast<uint32_t>(
                std::min<uint64_t>(available, r.frame.length - r.payload_done));
            pos += n;
            return on_payload(r, p, n, ctx);
        }
    }
    return false;
}

// Consumes `count` bytes known only by their number.
bool Http2ConnectionHandler::read_uncaptured(Reader& r, uint64_t count, uint64_t& pos,
                                             const PieceContext& ctx) {
    switch (r.phase) {
        case Phase::Start:
        case Phase::Seeking:
            return false;
        case Phase::Preface: {
            // The preface is fixed text: bytes of it need not be seen.
            const uint64_t n = std::min<uint64_t>(count, kPrefaceBytes - r.preface_matched);
            r.preface_matched += static_cast<size_t>(n);
            pos += n;
            if (r.preface_matched == kPrefaceBytes) end_preface(r, ctx.direction);
            return true;
        }
        case Phase::FrameHeader:
            // Where the next frame starts is unknown from here on.
            fail(r, Failure::LostSync);
            return false;
        case Phase::Payload: {
            const uint32_t n =
                static_cast<uint32_t>(std::min<uint64_t>(count, r.frame.length - r.payload_done));
            pos += n;
            return on_payload(r, nullptr, n, ctx);
        }
    }
    return false;
}

bool Http2ConnectionHandler::on_frame_header(Reader& r, const PieceContext& ctx) {
    const FrameHeader& h = r.frame;
    if (!frame_header_error(h).empty()) {
        fail(r, Failure::ParseError);
        return false;
    }
    const bool continuation = h.is(FrameType::Continuation);
    // RFC 9113 section 6.10: a header block is one uninterrupted frame sequence.
    if (continuation != r.in_block || (continuation && h.stream_id != r.block_stream)) {
        fail(r, Failure::ParseError);
        return false;
    }
    r.payload_done = 0;
    r.need = 0;
    r.need_lost = false;
    // A large header frame split across pieces should not pin its copy.
    if (r.collected.capacity() > 16 * 1024) {
        std::vector<uint8_t>().swap(r.collected);
    } else {
        r.collected.clear();
    }
    r.data_padding = 0;
    // PRIORITY may name streams not yet opened; header blocks are judged when complete.
    if (h.stream_id % 2 == 1 && !h.is(FrameType::Priority) && !h.is(FrameType::Headers) &&
        !continuation) {
        highest_stream_seen_ = std::max(highest_stream_seen_, h.stream_id);
    }
    const FrameType type =
        h.known_type() ? static_cast<FrameType>(h.type) : FrameType::Ping;  // extensions: skipped
    switch (type) {
        case FrameType::Data:
            r.need = h.has(flags::kPadded) ? 1 : 0;
            break;
        case FrameType::Headers:
        case FrameType::PushPromise:
            r.in_block = true;
            r.block_stream = h.stream_id;
            r.block_end_stream = h.is(FrameType::Headers) && h.has(flags::kEndStream);
            r.block_push = h.is(FrameType::PushPromise);
            r.block_lost = false;
            r.block_wire_bytes = 0;
            r.block_start_ns = r.frame_start_ns;
            r.block.clear();
            [[fallthrough]];
        case FrameType::Continuation:
            if (!r.block_lost && h.length > kMaxHeaderBlockBytes - r.block_wire_bytes) {
                // Skipped, not buffered; the decoder will miss its table updates.
                r.block_lost = true;
                ++stats_.oversized_heads;
            }
            if (!r.block_lost) {
                r.block_wire_bytes += h.length;
                r.need = h.length;
            }
            break;
        case FrameType::Settings:
            if (!h.has(flags::kAck)) r.need = std::min(h.length, kMaxSettingsPayload);
            break;
        case FrameType::RstStream:
            r.need = 4;
            break;
        case FrameType::GoAway:
            r.need = 8;
            break;
        case FrameType::Priority:
        case FrameType::Ping:
        case FrameType::WindowUpdate:
            break;  // nothing in them changes what Sonde reports
    }
    r.phase = Phase::Payload;
    if (h.length == 0) return on_frame_complete(r, {}, ctx);
    return true;
}

bool Http2ConnectionHandler::on_payload(Reader& r, const uint8_t* p, uint32_t n,
                                        const PieceContext& ctx) {
    const uint32_t offset = r.payload_done;
    // The whole payload is in this piece: its handling reads it in place.
    const bool in_place = p != nullptr && offset == 0 && n == r.frame.length;
    if (!in_place && offset < r.need) {
        const uint32_t take = std::min(n, r.need - offset);
        if (p != nullptr) {
            r.collected.insert(r.collected.end(), p, p + take);
        } else {
            r.need_lost = true;
        }
    }
    if (r.frame.is(FrameType::Data) && !count_data(r, p, offset, n, ctx)) return false;
    r.payload_done += n;
    if (r.payload_done < r.frame.length) return true;
    return on_frame_complete(r, in_place ? std::span<const uint8_t>(p, n) : r.collected, ctx);
}

// Adds the data bytes (payload minus padding) among payload bytes
// [offset, offset + n) to the stream's message; their content never matters.
bool Http2ConnectionHandler::count_data(Reader& r, const uint8_t* p, uint32_t offset, uint32_t n,
                                        const PieceContext& ctx) {
    const FrameHeader& h = r.frame;
    uint32_t data_begin = 0;
    if (h.has(flags::kPadded)) {
        data_begin = 1;
        if (offset == 0 && n > 0 && p != nullptr) {
            const std::optional<uint32_t> overhead = padding_overhead(h, p[0]);
            if (!overhead) {
                fail(r, Failure::ParseError);
                return false;
            }
            r.data_padding = *overhead - 1;
        }
        // An uncaptured Pad Length leaves the padding counted as data: a few
        // bytes too many rather than a lost stream.
    }
    const uint32_t data_end = h.length - r.data_padding;
    const uint32_t lo = std::max(offset, data_begin);
    const uint32_t hi = std::min(offset + n, data_end);
    StreamState* s = streams_.find(h.stream_id);
    if (s == nullptr) return true;
    Message& m = s->in(ctx.direction);
    if (hi > lo) m.body_bytes += hi - lo;
    m.end_ns = ctx.piece.ts_exit_ns;
    return true;
}

bool Http2ConnectionHandler::on_frame_complete(Reader& r, std::span<const uint8_t> payload,
                                               const PieceContext& ctx) {
    const FrameHeader& h = r.frame;
    r.phase = Phase::FrameHeader;
    r.header_have = 0;
    // `payload` may be `collected`, read below; the buffer is trimmed at the next frame.
    if (!h.known_type()) return true;  // RFC 9113 section 5.5: extensions are skipped
    switch (static_cast<FrameType>(h.type)) {
        case FrameType::Data:
            if (h.has(flags::kEndStream)) {
                if (StreamState* s = streams_.find(h.stream_id)) {
                    Message& m = s->in(ctx.direction);
                    m.ended = true;
                    m.end_ns = ctx.piece.ts_exit_ns;
                    finish_if_done(*s, ctx.out);
                }
            }
            return true;
        case FrameType::Headers:
        case FrameType::PushPromise:
        case FrameType::Continuation:
            return on_fragment(r, payload, ctx);
        case FrameType::Settings:
            if (!h.has(flags::kAck)) on_settings(ctx.direction, payload);
            return true;
        case FrameType::RstStream:
            if (const auto error = rst_stream_error(payload)) {
                on_reset(h.stream_id, *error, r, ctx);
            }
            return true;
        case FrameType::GoAway:
            if (const auto goaway = parse_goaway(payload)) {
                on_goaway(ctx.direction, goaway->last_stream_id);
            }
            return true;
        case FrameType::Priority:
        case FrameType::Ping:
        case FrameType::WindowUpdate:
            return true;
    }
    return true;
}

bool Http2ConnectionHandler::on_fragment(Reader& r, std::span<const uint8_t> payload,
                                         const PieceContext& ctx) {
    const FrameHeader& h = r.frame;
    std::span<const uint8_t> fragment;
    if (!r.block_lost && r.need_lost) {
        // Part of the block went by uncaptured: the frame boundaries are
        // still known, but the block, and with it the HPACK state, is not.
        r.block_lost = true;
        ++stats_.lost_sync;
    }
    if (!r.block_lost) {
        if (h.is(FrameType::Headers)) {
            const auto f = headers_fragment(h, payload);
            if (!f) {
                fail(r, Failure::ParseError);
                return false;
            }
            fragment = *f;
        } else if (h.is(FrameType::PushPromise)) {
            const auto promise = push_promise_payload(h, payload);
            if (!promise) {
                fail(r, Failure::ParseError);
                return false;
            }
            fragment = promise->fragment;
        } else {
            fragment = payload;
        }
    }
    if (!h.has(flags::kEndHeaders)) {
        if (!r.block_lost) r.block.insert(r.block.end(), fragment.begin(), fragment.end());
        return true;
    }
    if (!r.block_lost && !r.block.empty()) {
        r.block.insert(r.block.end(), fragment.begin(), fragment.end());
        fragment = r.block;
    }
    on_block_complete(r, fragment, ctx);
    return true;
}

void Http2ConnectionHandler::on_block_complete(Reader& r, std::span<const uint8_t> block,
                                               const PieceContext& ctx) {
    r.in_block = false;
    DecodedHeaders& h = scratch_headers_;
    if (r.block_lost) {
        // The block's table updates are gone: decode what later blocks allow.
        replace_decoder(r, /*history_known=*/false);
        h = DecodedHeaders{};
        h.partial = true;
    } else if (r.decoder.decode(block, h) == HpackResult::Error) {
        // The decoder has fallen back by itself; the fields before the fault stand.
        ++stats_.parse_errors;
        h.partial = true;
    }
    // A block of the 64 KiB bound should not pin its buffer for the connection's life.
    if (r.block.capacity() > 16 * 1024) {
        std::vector<uint8_t>().swap(r.block);
    } else {
        r.block.clear();
    }
    if (r.block_push) return;  // the table is in step; pushed streams are not requests we saw
    on_header_block(h, r.block_stream, r.block_end_stream, r.block_start_ns, ctx);
}

void Http2ConnectionHandler::on_header_block(const DecodedHeaders& h, uint32_t stream_id,
                                             bool end_stream, uint64_t start_ns,
                                             const PieceContext& ctx) {
    const Direction d = ctx.direction;
    const bool was_unknown = role_ == Role::Unknown;
    if (was_unknown) {
        if (!h.method.empty()) {
            settle_role(d == Direction::Ingress ? Role::Server : Role::Client);
        } else if (h.status != 0) {
            settle_role(d == Direction::Ingress ? Role::Client : Role::Server);
        }
    }
    const bool informational = h.status >= 100 && h.status < 200;
    StreamState* s = streams_.find(stream_id);
    const uint32_t seen_before = highest_stream_seen_;
    if (stream_id % 2 == 1) highest_stream_seen_ = std::max(highest_stream_seen_, stream_id);
    if (role_ != Role::Unknown && d == request_dir_ && stream_id % 2 == 1) {
        // Requests come in stream id order: a response held for a lower id will not
        // see its request now.
        if (stream_id > highest_request_stream_ + 2) unpair_responses_below(stream_id);
        highest_request_stream_ = std::max(highest_request_stream_, stream_id);
    }
    if (s == nullptr) {
        // Even streams are the server's: pushed responses answer no request seen.
        if (stream_id % 2 == 0) return;
        if (role_ != Role::Unknown && d != request_dir_) {
            if (role_ == Role::Client && stream_id > highest_request_stream_ && h.status >= 200) {
                // A client's response above every request seen: its request's record
                // may still come.
                s = &open_stream(stream_id);
                s->response_first = true;
            } else {
                // A response whose request we did not see (sent before Sonde
                // attached, or dropped). Trailers and undecodable heads carry no
                // :status, so each response is counted once at most; one already
                // on its way when the stream was reset is no surprise.
                if (h.status >= 200 && !recently_reset(stream_id)) ++stats_.unpaired_responses;
                return;
            }
        } else {
            if (h.status != 0) return;  // a status on the request direction: not ours to pair
            // Without :method this is either an undecodable request head or the
            // trailers of a stream we do not track. Trailers end their stream, and
            // a new stream's id is above that of every frame sent before it.
            if (h.method.empty() && end_stream && stream_id <= seen_before) return;
            s = &open_stream(stream_id);
        }
    }
    Message& m = s->in(d);
    m.partial |= h.partial;
    if (!m.open) {
        if (informational) return;  // 1xx: the final response is still to come
        m.open = true;
        m.start_ns = start_ns;
        m.head = h;
        if (end_stream) m.trailer_grpc_status = h.grpc_status;  // trailers-only
    } else if (h.grpc_status >= 0) {
        m.trailer_grpc_status = h.grpc_status;
    }
    m.end_ns = ctx.piece.ts_exit_ns;
    if (end_stream) m.ended = true;
    finish_if_done(*s, ctx.out);
    if (was_unknown && role_ != Role::Unknown) finish_all_done(ctx.out);
}

void Http2ConnectionHandler::on_settings(Direction d, std::span<const uint8_t> payload) {
    Settings settings;
    // Whole entries only: a truncated capture still yields the ones it holds.
    if (!parse_settings(payload.first(payload.size() - payload.size() % 6), settings)) return;
    if (!settings.header_table_size) return;
    // The sender of SETTINGS decodes the blocks the other direction carries.
    // Lenient: keep the largest announced, since the encoder may switch to it
    // before we see the ACK and a smaller one only shrinks what it uses.
    Reader& peer = reader(other(d));
    if (*settings.header_table_size <= peer.table_size) return;
    peer.table_size = *settings.header_table_size;
    peer.decoder.set_max_table_size(peer.table_size);
}

void Http2ConnectionHandler::on_reset(uint32_t stream_id, uint32_t error, const Reader& r,
                                      const PieceContext& ctx) {
    StreamState* s = streams_.find(stream_id);
    if (s == nullptr) return;
    s->reset = true;
    s->reset_error = error;
    s->reset_start_ns = r.frame_start_ns;
    s->reset_end_ns = ctx.piece.ts_exit_ns;
    finish_if_done(*s, ctx.out);
}

void Http2ConnectionHandler::on_goaway(Direction d, uint32_t last_stream_id) {
    // last_stream_id names the highest stream the sender will process among
    // those its peer opened. Only a server's GOAWAY concerns the client
    // streams tracked here; the ones above it were never processed and the
    // client retries them elsewhere, so they are not lost requests.
    if (role_ == Role::Unknown || d == request_dir_) return;
    streams_.ids(scratch_ids_);
    for (uint32_t id : scratch_ids_) {
        if (id > last_stream_id) streams_.erase(id);
    }
}

StreamState& Http2ConnectionHandler::open_stream(uint32_t id) {
    if (streams_.full()) {
        StreamState& oldest = streams_.oldest();
        drop_stream(oldest);
        streams_.erase(oldest.id);
    }
    return streams_.insert(id);
}

void Http2ConnectionHandler::settle_role(Role role) {
    role_ = role;
    request_dir_ = role == Role::Client ? Direction::Egress : Direction::Ingress;
}

void Http2ConnectionHandler::finish_if_done(StreamState& s, std::vector<Exchange>& out) {
    if (role_ == Role::Unknown) return;  // which message is the response is not known yet
    const Message& request = s.in(request_dir_);
    const Message& response = s.in(other(request_dir_));
    if (!s.reset && !response.ended) return;
    if (request.open) {
        emit(s, out);
    } else if (response.open) {
        if (s.response_first && !s.reset) return;  // its request may still come
        ++stats_.unpaired_responses;
    }
    if (s.reset) remember_reset(s.id);
    streams_.erase(s.id);
}

void Http2ConnectionHandler::finish_all_done(std::vector<Exchange>& out) {
    streams_.ids(scratch_ids_);
    for (uint32_t id : scratch_ids_) {
        if (StreamState* s = streams_.find(id)) finish_if_done(*s, out);
    }
}

void Http2ConnectionHandler::emit(StreamState& s, std::vector<Exchange>& out) {
    Message& request = s.in(request_dir_);
    Message& response = s.in(other(request_dir_));
    Exchange& ex = out.emplace_back();
    ex.method = std::move(request.head.method);
    // The path alone, as HTTP/1 has it: :path should be origin-form, but a client can send
    // an absolute form whose authority holds credentials ("http://user:pw@host/x"), and
    // query strings and fragments never leave the agent.
    ex.path = http1::path_of_target(request.head.path);
    ex.protocol_version = "2";
    ex.status = response.open ? response.head.status : 0;
    ex.request_start_ns = request.start_ns;
    // A response may end before its request does (an early error, a server
    // that answers before reading the body): the request as far as it got.
    ex.request_end_ns = request.end_ns;
    if (response.open) {
        ex.response_start_ns = response.start_ns;
        ex.response_end_ns =
            response.ended ? response.end_ns : std::max(response.end_ns, s.reset_end_ns);
    } else {
        // Reset before any response: the RST_STREAM is all the answer there is.
        ex.response_start_ns = s.reset_start_ns;
        ex.response_end_ns = s.reset_end_ns;
    }
    ex.request_body_bytes = request.body_bytes;
    ex.response_body_bytes = response.body_bytes;
    ex.host = std::move(request.head.authority);
    ex.traceparent = std::move(request.head.traceparent);
    ex.tracestate = std::move(request.head.tracestate);
    ex.role = role_;
    // An undecodable request content-type leaves the response's to tell.
    const std::string_view content_type =
        !request.head.content_type.empty() ? request.head.content_type : response.head.content_type;
    ex.grpc = content_type.starts_with("application/grpc");
    ex.grpc_status = response.trailer_grpc_status;
    if (ex.grpc_status < 0 && s.reset && ex.grpc) {
        ex.grpc_status = grpc_status_of_reset(s.reset_error);
    }
    ex.reset = s.reset;
    ex.partial = request.partial || response.partial;
    if (ex.partial) ++stats_.partial_exchanges;
}

// A stream that will never be reported: count the request it leaves unanswered.
void Http2ConnectionHandler::drop_stream(StreamState& s) {
    const bool request_seen = role_ == Role::Unknown
                                  ? s.by_direction[0].open || s.by_direction[1].open
                                  : s.in(request_dir_).open;
    if (request_seen) {
        ++stats_.dropped_requests;
    } else if (s.response_first) {
        ++stats_.unpaired_responses;
    }
}

void Http2ConnectionHandler::unpair_responses_below(uint32_t stream_id) {
    streams_.ids(scratch_ids_);
    for (uint32_t id : scratch_ids_) {
        if (id >= stream_id) break;  // ids are sorted
        StreamState& s = *streams_.find(id);
        if (s.response_first && !s.in(request_dir_).open) {
            ++stats_.unpaired_responses;
            streams_.erase(id);
        }
    }
}

void Http2ConnectionHandler::fail(Reader& r, Failure failure) {
    switch (failure) {
        case Failure::ParseError:
            ++stats_.parse_errors;
            break;
        case Failure::LostSync:
            ++stats_.lost_sync;
            break;
    }
    r.phase = Phase::Seeking;
    r.header_have = 0;
    r.in_block = false;
    r.block.clear();
    r.collected.clear();
    // Whatever went by unread may have held header blocks.
    replace_decoder(r, /*history_known=*/false);
}

void Http2ConnectionHandler::replace_decoder(Reader& r, bool history_known) {
    r.decoder = HpackDecoder(history_known);
    if (r.table_size != kDefaultTableSize) r.decoder.set_max_table_size(r.table_size);
}

}  // namespace

std::unique_ptr<ProtocolHandler> make_handler(Role role, bool from_connection_start) {
    return std::make_unique<Http2ConnectionHandler>(role, from_connection_start);
}

}  // namespace sonde::protocols::http2
