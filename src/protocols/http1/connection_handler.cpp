// The HTTP/1 connection handler: reads each direction of one TCP connection
// as a sequence of messages, whatever the syscall boundaries and however few
// of the bytes were captured, and pairs responses with requests in order.
#include <algorithm>
#include <cassert>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "protocols/http1/http1.h"
#include "protocols/http1/http1_internal.h"

namespace sonde::protocols::http1 {

namespace {

using internal::HeaderBlockScanner;

// Chunk extensions carry nothing we report; a longer one means we are not
// looking at a chunk-size line at all.
constexpr uint64_t kMaxChunkExtensionBytes = 4096;
// "0\r\n\r\n": the last chunk of a body without trailers.
constexpr uint64_t kLastChunkBytes = 5;

// "1.0" or "1.1", into a string that keeps its storage.
void assign_version(std::string& out, const MessageHead& head) {
    out.assign({'1', '.', static_cast<char>('0' + head.version_minor)});
}

uint64_t saturating_add(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

int hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

enum class Phase : uint8_t {
    Seeking,    // out of sync: ignore pieces until one starts like a message
    Idle,       // at a message boundary
    Head,       // inside the start line and header fields
    FixedBody,  // Content-Length body
    ChunkSize,  // hex digits of a chunk-size line
    ChunkExtension,
    ChunkSizeLf,
    ChunkData,
    ChunkDataCr,  // the CRLF that ends a chunk's data
    ChunkDataLf,
    Trailers,
    UntilClose,
    // A chunked body whose chunk-size lines went by uncaptured: its end is
    // recognised from a piece's tail ending with the last chunk.
    ChunkedBlind,
};

enum class Failure : uint8_t { ParseError, LostSync, Oversized };

struct PendingRequest {
    uint64_t seq = 0;
    // Requests dropped on queue overflow that were sent just before this one;
    // their responses still arrive and must be skipped to keep FIFO pairing.
    uint64_t dropped_before = 0;
    bool complete = false;
    std::string method;
    std::string path;
    std::string version;
    std::string host;
    std::string traceparent;
    std::string tracestate;
    uint64_t start_ns = 0;
    uint64_t end_ns = 0;
    uint64_t body_bytes = 0;
};

// FIFO ring whose storage grows on demand up to the limit and is then reused,
// so a quiet connection costs little and a busy one does not allocate per
// request.
class RequestQueue {
public:
    explicit RequestQueue(size_t capacity) : capacity_(capacity) {}

    bool empty() const { return size_ == 0; }
    bool full() const { return size_ >= capacity_; }
    size_t size() const { return size_; }

    PendingRequest& front() {
        assert(size_ > 0);
        return slots_[head_];
    }

    PendingRequest& push_back() {
        assert(!full());
        if (size_ == slots_.size()) grow();
        PendingRequest& slot = slots_[(head_ + size_) % slots_.size()];
        ++size_;
        return slot;
    }

    void pop_front() {
        assert(size_ > 0);
        head_ = (head_ + 1) % slots_.size();
        --size_;
    }

    // Sequence numbers of queued requests are consecutive, front oldest.
    PendingRequest* find(uint64_t seq) {
        if (size_ == 0) return nullptr;
        const uint64_t first = slots_[head_].seq;
        if (seq < first || seq - first >= size_) return nullptr;
        return &slots_[(head_ + (seq - first)) % slots_.size()];
    }

    void clear() {
        head_ = 0;
        size_ = 0;
    }

private:
    void grow() {
        // One slot first: only pipelining clients ever queue a second request.
        const size_t next = std::min(capacity_, std::max<size_t>(1, slots_.size() * 2));
        std::vector<PendingRequest> bigger(next);
        for (size_t i = 0; i < size_; ++i) {
            bigger[i] = std::move(slots_[(head_ + i) % slots_.size()]);
        }
        slots_ = std::move(bigger);
        head_ = 0;
    }

    size_t capacity_;
    std::vector<PendingRequest> slots_;
    size_t head_ = 0;
    size_t size_ = 0;
};

// Reading state of one direction.
struct Stream {
    explicit Stream(bool requests) : carries_requests(requests) {}

    const bool carries_requests;
    Phase phase = Phase::Idle;

    HeaderBlockScanner scanner;
    std::vector<uint8_t> head_buffer;  // a head split across pieces, never past max_head_bytes
    size_t block_bytes = 0;            // bytes of the current head or trailer section
    bool first_line_checked = false;

    uint64_t remaining = 0;  // of a Content-Length body or of a chunk's data
    uint64_t chunk_size = 0;
    uint32_t chunk_digits = 0;
    uint64_t extension_bytes = 0;

    uint64_t body_bytes = 0;
    uint64_t start_ns = 0;
    uint64_t last_ns = 0;  // ts_exit_ns of the last piece that held bytes of this message

    // The queued request this message is (a request) or answers (a response).
    bool paired = false;
    uint64_t seq = 0;

    // Responses only.
    int status = 0;
    bool interim = false;
    // Nothing was pending when it began, on a client connection: its request may
    // still be on its way (see EarlyResponse).
    bool early = false;
    bool ends_parsing = false;  // 101 or a CONNECT tunnel: the bytes after it are not HTTP/1
};

class Http1ConnectionHandler final : public ProtocolHandler {
public:
    Http1ConnectionHandler(Role role, const Limits& limits)
        : role_(role), limits_(limits), pending_(limits.max_pending_requests) {
        if (role == Role::Unknown) {
            requests_.phase = Phase::Seeking;
            responses_.phase = Phase::Seeking;
        }
        request_direction_ = role == Role::Client ? Direction::Egress : Direction::Ingress;
    }

    void on_data(Direction direction, const StreamPiece& piece,
                 std::vector<Exchange>& out) override {
        if (closed_ || opaque_) return;
        if (role_ == Role::Unknown) {
            if (!looks_like_message_start(piece.captured, /*is_request=*/true)) {
                if (piece.length > 0 || !piece.captured.empty()) {
                    ignored_before_role_[static_cast<size_t>(direction)] = true;
                }
                return;
            }
            // Whoever sends the first request is the client.
            role_ = direction == Direction::Ingress ? Role::Server : Role::Client;
            request_direction_ = direction;
            requests_.phase = Phase::Idle;
            // The other direction is at a message boundary unless some of its
            // bytes went by while the role was undecided.
            const Direction other =
                direction == Direction::Ingress ? Direction::Egress : Direction::Ingress;
            responses_.phase =
                ignored_before_role_[static_cast<size_t>(other)] ? Phase::Seeking : Phase::Idle;
        }
        Stream& stream = direction == request_direction_ ? requests_ : responses_;
        feed(stream, direction, piece, out);
    }

    void on_close(uint64_t ts_ns, std::vector<Exchange>& out) override {
        (void)ts_ns;  // a body delimited by close ends with its last byte, not at close time
        if (closed_) return;
        closed_ = true;
        if (!opaque_ && responses_.phase == Phase::UntilClose) {
            finish_message(responses_, responses_.last_ns, out);
        }
        if (std::exchange(early_, std::nullopt)) ++stats_.unpaired_responses;
        stats_.dropped_requests += pending_.size();
        pending_.clear();
    }

    Role role() const override { return role_; }
    const ProtocolStats& stats() const override { return stats_; }

private:
    void feed(Stream& s, Direction direction, const StreamPiece& piece, std::vector<Exchange>& out);
    static bool ends_with_last_chunk(const StreamPiece& piece);
    bool step_captured(Stream& s, const uint8_t* data, size_t captured, uint64_t& pos,
                       uint64_t first_byte_ns, const StreamPiece& piece,
                       std::vector<Exchange>& out);
    bool step_uncaptured(Stream& s, uint64_t count, uint64_t& pos, const StreamPiece& piece,
                         std::vector<Exchange>& out);
    bool read_head(Stream& s, const uint8_t* data, size_t available, uint64_t& pos,
                   const StreamPiece& piece, std::vector<Exchange>& out);
    bool read_chunk_size(Stream& s, uint8_t c);
    void end_chunk_size_line(Stream& s);
    void enter_chunk_size(Stream& s);

    void on_request_head(Stream& s, MessageHead& head, const StreamPiece& piece,
                         std::vector<Exchange>& out);
    void on_response_head(Stream& s, const MessageHead& head, const StreamPiece& piece,
                          std::vector<Exchange>& out);
    void start_body(Stream& s, BodyFraming framing, const MessageHead& head,
                    const StreamPiece& piece, std::vector<Exchange>& out);
    void finish_message(Stream& s, uint64_t end_ns, std::vector<Exchange>& out);
    void emit_exchange(Stream& response, uint64_t end_ns, std::vector<Exchange>& out);
    void record_request_progress(const Stream& s);
    bool answer_with_early_response(const Stream& s, const MessageHead& head,
                                    const StreamPiece& piece, std::vector<Exchange>& out);
    void discard_oldest_request();
    void fail(Stream& s, Failure failure);

    Role role_;
    Limits limits_;
    Direction request_direction_;
    Stream requests_{true};
    Stream responses_{false};
    RequestQueue pending_;
    uint64_t next_seq_ = 0;
    uint64_t dropped_at_tail_ = 0;  // overflow drops sent after every queued request
    bool ignored_before_role_[2] = {false, false};  // by Direction
    bool opaque_ = false;
    bool closed_ = false;
    ProtocolStats stats_;
    // Every head of the connection is parsed into this one result.
    HeadParseResult parsed_;

    // A client's response that arrived with no request pending. A client that writes
    // and reads a connection on different threads (Go) can have its response's read
    // return, and reach the ring, before the write that sent the request has
    // returned: the request's record comes second. The next request is paired with
    // it when it was sent before the response began; otherwise it was unpaired.
    struct EarlyResponse {
        int status = 0;
        uint64_t start_ns = 0;
        uint64_t end_ns = 0;
        uint64_t body_bytes = 0;
    };
    std::optional<EarlyResponse> early_;
};

void Http1ConnectionHandler::feed(Stream& s, Direction direction, const StreamPiece& piece,
                                  std::vector<Exchange>& out) {
    const uint8_t* data = piece.captured.data();
    const size_t captured = piece.captured.size();
    // A piece claiming fewer bytes than it carries is inconsistent; trust the bytes.
    const uint64_t total = std::max<uint64_t>(piece.length, captured);
    const uint64_t first_byte_ns =
        direction == Direction::Ingress ? piece.ts_exit_ns : piece.ts_enter_ns;

    if (s.phase == Phase::Seeking) {
        if (!looks_like_message_start(piece.captured, s.carries_requests)) return;
        s.phase = Phase::Idle;
    }
    uint64_t pos = 0;
    while (pos < total && !opaque_) {
        if (s.phase == Phase::ChunkedBlind && pos == 0 &&
            looks_like_message_start(piece.captured, s.carries_requests)) {
            // A new message began and no tail ever showed the last chunk:
            // the blind body's end is unknown, so it is lost, not guessed.
            fail(s, Failure::LostSync);
            s.phase = Phase::Idle;
            continue;
        }
        if (s.phase == Phase::ChunkedBlind) {
            // Nothing inside can be read any more; only the piece's end tells.
            s.body_bytes = saturating_add(s.body_bytes, total - pos);
            s.last_ns = piece.ts_exit_ns;
            if (ends_with_last_chunk(piece)) {
                s.body_bytes -= std::min<uint64_t>(s.body_bytes, kLastChunkBytes);
                finish_message(s, piece.ts_exit_ns, out);
            }
            return;
        }
        const bool more = pos < captured
                              ? step_captured(s, data, captured, pos, first_byte_ns, piece, out)
                              : step_uncaptured(s, total - pos, pos, piece, out);
        if (!more) return;
    }
}

bool Http1ConnectionHandler::ends_with_last_chunk(const StreamPiece& piece) {
    static constexpr uint8_t kLastChunk[] = {'0', '\r', '\n', '\r', '\n'};
    const std::span<const uint8_t> end = !piece.tail.empty() ? piece.tail
                                         : piece.captured.size() == piece.length
                                             ? piece.captured
                                             : std::span<const uint8_t>{};
    return end.size() >= sizeof kLastChunk &&
           std::memcmp(end.data() + end.size() - sizeof kLastChunk, kLastChunk,
                       sizeof kLastChunk) == 0;
}

// Consumes captured bytes from `pos`; false when the rest of the piece is dropped.
bool Http1ConnectionHandler::step_captured(Stream& s, const uint8_t* data, size_t captured,
                                           uint64_t& pos, uint64_t first_byte_ns,
                                           const StreamPiece& piece, std::vector<Exchange>& out) {
    const size_t available = captured - static_cast<size_t>(pos);
    const uint8_t* p = data + pos;
    switch (s.phase) {
        case Phase::Seeking:
        case Phase::ChunkedBlind:  // handled in feed()
            return false;
        case Phase::Idle: {
            // Stray CRLFs between messages (RFC 9112 section 2.2) belong to no message.
            size_t skip = 0;
            while (skip < available && (p[skip] == '\r' || p[skip] == '\n')) ++skip;
            pos += skip;
            if (skip == available) return true;
            s.phase = Phase::Head;
            s.scanner.reset();
            s.head_buffer.clear();
            s.block_bytes = 0;
            s.first_line_checked = false;
            s.start_ns = first_byte_ns;
            return true;
        }
        case Phase::Head:
            return read_head(s, p, available, pos, piece, out);
        case Phase::FixedBody:
        case Phase::ChunkData:
        case Phase::UntilClose:
            return step_uncaptured(s, available, pos, piece, out);
        case Phase::ChunkSize:
            ++pos;
            return read_chunk_size(s, *p);
        case Phase::ChunkExtension: {
            const void* lf = std::memchr(p, '\n', available);
            const size_t skipped =
                lf ? static_cast<size_t>(static_cast<const uint8_t*>(lf) - p) : available;
            s.extension_bytes += skipped;
            if (s.extension_bytes > kMaxChunkExtensionBytes) {
                fail(s, Failure::ParseError);
                return false;
            }
            pos += skipped;
            if (lf) {
                ++pos;
                end_chunk_size_line(s);
            }
            return true;
        }
        case Phase::ChunkSizeLf:
            ++pos;
            if (*p != '\n') {
                fail(s, Failure::ParseError);
                return false;
            }
            end_chunk_size_line(s);
            return true;
        case Phase::ChunkDataCr:
        case Phase::ChunkDataLf:
            ++pos;
            if (*p == '\n') {
                enter_chunk_size(s);
            } else if (*p == '\r' && s.phase == Phase::ChunkDataCr) {
                s.phase = Phase::ChunkDataLf;
            } else {
                fail(s, Failure::ParseError);
                return false;
            }
            return true;
        case Phase::Trailers: {
            const std::optional<size_t> end = s.scanner.feed({p, available});
            const size_t take = end.value_or(available);
            s.block_bytes += take;
            if (s.block_bytes > limits_.max_head_bytes) {
                fail(s, Failure::Oversized);
                return false;
            }
            pos += take;
            if (end) finish_message(s, piece.ts_exit_ns, out);
            return true;
        }
    }
    return false;
}

// Consumes `count` bytes known only by count (or body bytes, whose content
// does not matter); false when they hide something we needed to read.
bool Http1ConnectionHandler::step_uncaptured(Stream& s, uint64_t count, uint64_t& pos,
                                             const StreamPiece& piece, std::vector<Exchange>& out) {
    switch (s.phase) {
        case Phase::FixedBody:
        case Phase::ChunkData: {
            const uint64_t n = std::min(s.remaining, count);
            s.remaining -= n;
            pos += n;
            s.last_ns = piece.ts_exit_ns;
            if (s.remaining == 0) {
                if (s.phase == Phase::FixedBody) {
                    finish_message(s, piece.ts_exit_ns, out);
                } else {
                    s.phase = Phase::ChunkDataCr;
                }
            }
            return true;
        }
        case Phase::UntilClose:
            s.body_bytes = saturating_add(s.body_bytes, count);
            pos += count;
            s.last_ns = piece.ts_exit_ns;
            return true;
        case Phase::ChunkDataCr:
        case Phase::ChunkDataLf:
            // Senders end chunk data with CRLF; assume it rather than give up the
            // stream each time a large chunk outgrows the captured prefix.
            if (s.phase == Phase::ChunkDataCr && count == 1) {
                s.phase = Phase::ChunkDataLf;
                pos += 1;
            } else {
                pos += s.phase == Phase::ChunkDataCr ? 2 : 1;
                enter_chunk_size(s);
            }
            return true;
        case Phase::ChunkSize:
            // A large body written in one call commonly ends with the last chunk
            // in the same call: exactly its five bytes left means the body ended.
            if (s.chunk_digits == 0 && count == kLastChunkBytes) {
                pos += count;
                s.last_ns = piece.ts_exit_ns;
                finish_message(s, piece.ts_exit_ns, out);
                return true;
            }
            // The chunk-size line is hidden: keep the message, find its end
            // by the tails of the pieces that follow (this one included).
            if (s.chunk_digits == 0) {
                s.phase = Phase::ChunkedBlind;
                return true;
            }
            fail(s, Failure::LostSync);
            return false;
        case Phase::Trailers:
            // Likewise the empty trailer section's CRLF after a captured "0\r\n".
            if (s.block_bytes == 0 && count == 2) {
                pos += count;
                finish_message(s, piece.ts_exit_ns, out);
                return true;
            }
            fail(s, Failure::LostSync);
            return false;
        case Phase::Seeking:
        case Phase::ChunkedBlind:  // handled in feed()
            return false;
        case Phase::Idle:
        case Phase::Head:
        case Phase::ChunkExtension:
        case Phase::ChunkSizeLf:
            fail(s, Failure::LostSync);
            return false;
    }
    return false;
}

bool Http1ConnectionHandler::read_head(Stream& s, const uint8_t* p, size_t available, uint64_t& pos,
                                       const StreamPiece& piece, std::vector<Exchange>& out) {
    // Usually a whole head arrives in one piece: parse it in one pass, where it
    // lies. Only a head still incomplete here goes through the scanner, which
    // finds its end across pieces, and the buffer.
    if (s.block_bytes == 0 && s.head_buffer.empty()) {
        HeadParseResult& parsed = parsed_;
        parse_head_into({p, available}, s.carries_requests, limits_, parsed);
        if (parsed.status == ParseStatus::Complete) {
            s.block_bytes = parsed.consumed;
            pos += parsed.consumed;
            if (s.carries_requests) {
                on_request_head(s, parsed.head, piece, out);
            } else {
                on_response_head(s, parsed.head, piece, out);
            }
            return true;
        }
        if (parsed.status == ParseStatus::Invalid) {
            fail(s, parsed.error == internal::kErrHeadTooLarge ? Failure::Oversized
                                                               : Failure::ParseError);
            return false;
        }
    }
    const std::optional<size_t> end = s.scanner.feed({p, available});
    const size_t take = end.value_or(available);
    if (s.block_bytes + take > limits_.max_head_bytes) {
        fail(s, Failure::Oversized);
        return false;
    }
    s.block_bytes += take;
    pos += take;

    std::span<const uint8_t> head_bytes;
    if (end && s.head_buffer.empty()) {
        head_bytes = {p, take};  // the whole head is in this piece: parse it in place
    } else {
        s.head_buffer.insert(s.head_buffer.end(), p, p + take);
        head_bytes = s.head_buffer;
    }

    if (!end) {
        // Reject junk early rather than buffer up to max_head_bytes of it.
        // Each check runs at most once per head or looks at 16 bytes, so a
        // head arriving byte by byte still costs linear time.
        bool plausible = true;
        std::string_view error;
        if (s.scanner.complete_lines() == 0) {
            plausible = internal::start_line_prefix_ok(head_bytes, s.carries_requests);
        } else if (!s.first_line_checked) {
            s.first_line_checked = true;
            const HeadParseResult early = parse_head(head_bytes, s.carries_requests, limits_);
            plausible = early.status != ParseStatus::Invalid;
            error = early.error;
        }
        if (!plausible) {
            fail(s, error == internal::kErrHeadTooLarge ? Failure::Oversized : Failure::ParseError);
            return false;
        }
        return true;
    }

    HeadParseResult& parsed = parsed_;
    parse_head_into(head_bytes, s.carries_requests, limits_, parsed);
    s.head_buffer.clear();
    if (parsed.status != ParseStatus::Complete || parsed.consumed != head_bytes.size()) {
        // The scanner and parse_head agree on where a head ends, so anything
        // but Complete here is a head that did not parse.
        assert(parsed.status != ParseStatus::NeedMore);
        fail(s,
             parsed.error == internal::kErrHeadTooLarge ? Failure::Oversized : Failure::ParseError);
        return false;
    }
    if (s.carries_requests) {
        on_request_head(s, parsed.head, piece, out);
    } else {
        on_response_head(s, parsed.head, piece, out);
    }
    return true;
}

bool Http1ConnectionHandler::read_chunk_size(Stream& s, uint8_t c) {
    const int digit = hex_value(c);
    if (digit >= 0) {
        if (s.chunk_size >> 60) {  // one more digit would overflow 64 bits
            fail(s, Failure::ParseError);
            return false;
        }
        s.chunk_size = (s.chunk_size << 4) | static_cast<uint64_t>(digit);
        ++s.chunk_digits;
        return true;
    }
    if (s.chunk_digits == 0) {
        fail(s, Failure::ParseError);
        return false;
    }
    switch (c) {
        case ';':
        case ' ':
        case '\t':  // BWS before a chunk extension
            s.phase = Phase::ChunkExtension;
            s.extension_bytes = 0;
            return true;
        case '\r':
            s.phase = Phase::ChunkSizeLf;
            return true;
        case '\n':
            end_chunk_size_line(s);
            return true;
        default:
            fail(s, Failure::ParseError);
            return false;
    }
}

void Http1ConnectionHandler::enter_chunk_size(Stream& s) {
    s.phase = Phase::ChunkSize;
    s.chunk_size = 0;
    s.chunk_digits = 0;
}

void Http1ConnectionHandler::end_chunk_size_line(Stream& s) {
    if (s.chunk_size == 0) {
        s.phase = Phase::Trailers;
        s.scanner.reset();
        s.block_bytes = 0;
        return;
    }
    s.body_bytes = saturating_add(s.body_bytes, s.chunk_size);
    s.remaining = s.chunk_size;
    s.phase = Phase::ChunkData;
}

void Http1ConnectionHandler::on_request_head(Stream& s, MessageHead& head, const StreamPiece& piece,
                                             std::vector<Exchange>& out) {
    s.paired = false;
    if (early_ && answer_with_early_response(s, head, piece, out)) {
        // Its body, if any, is read through; nothing is waiting for it.
        start_body(s, body_framing(head), head, piece, out);
        return;
    }
    if (pending_.full()) {
        ++stats_.dropped_requests;
        ++dropped_at_tail_;
    } else {
        PendingRequest& request = pending_.push_back();
        request.seq = next_seq_++;
        request.dropped_before = std::exchange(dropped_at_tail_, 0);
        request.complete = false;
        // Swapped, not moved: the queue slot's old strings become the parse
        // buffers for the next head, so neither side loses its storage.
        request.path.assign(path_of_target(head.target));
        request.method.swap(head.method);
        assign_version(request.version, head);
        request.host.swap(head.host);
        request.traceparent.swap(head.traceparent);
        request.tracestate.swap(head.tracestate);
        request.start_ns = s.start_ns;
        request.end_ns = piece.ts_exit_ns;
        request.body_bytes = 0;
        s.paired = true;
        s.seq = request.seq;
    }
    start_body(s, body_framing(head), head, piece, out);
}

void Http1ConnectionHandler::on_response_head(Stream& s, const MessageHead& head,
                                              const StreamPiece& piece,
                                              std::vector<Exchange>& out) {
    s.status = head.status;
    s.interim = head.status >= 100 && head.status < 200 && head.status != 101;
    s.paired = false;
    s.early = false;
    // The request this answers: the oldest one not yet answered, unless an
    // overflow drop sits before it (then the method is unknown).
    const PendingRequest* request = nullptr;
    if (!pending_.empty() && pending_.front().dropped_before == 0) request = &pending_.front();
    const std::string_view method = request ? std::string_view(request->method) : "";

    if (!s.interim) {
        if (request) {
            s.paired = true;
            s.seq = request->seq;
        } else if (!pending_.empty()) {
            --pending_.front().dropped_before;
        } else if (dropped_at_tail_ > 0) {
            --dropped_at_tail_;
        } else if (role_ == Role::Client) {
            s.early = true;
        } else {
            ++stats_.unpaired_responses;
        }
    }
    s.ends_parsing =
        head.status == 101 || (method == "CONNECT" && head.status >= 200 && head.status < 300);
    start_body(s, body_framing(head, method), head, piece, out);
}

void Http1ConnectionHandler::start_body(Stream& s, BodyFraming framing, const MessageHead& head,
                                        const StreamPiece& piece, std::vector<Exchange>& out) {
    s.body_bytes = 0;
    s.last_ns = piece.ts_exit_ns;
    switch (framing) {
        case BodyFraming::ContentLength:
            s.body_bytes = *head.content_length;
            s.remaining = *head.content_length;
            if (s.remaining > 0) {
                s.phase = Phase::FixedBody;
                return;
            }
            break;
        case BodyFraming::Chunked:
            enter_chunk_size(s);
            return;
        case BodyFraming::UntilClose:
            s.phase = Phase::UntilClose;
            return;
        case BodyFraming::None:
            break;
    }
    finish_message(s, piece.ts_exit_ns, out);
}

void Http1ConnectionHandler::finish_message(Stream& s, uint64_t end_ns,
                                            std::vector<Exchange>& out) {
    s.phase = Phase::Idle;
    if (s.carries_requests) {
        if (s.paired) {
            s.last_ns = end_ns;
            record_request_progress(s);
            if (PendingRequest* request = pending_.find(s.seq)) request->complete = true;
        }
        s.paired = false;
        return;
    }
    if (s.interim) return;
    if (s.paired) {
        emit_exchange(s, end_ns, out);
    } else if (s.early) {
        if (early_) ++stats_.unpaired_responses;  // the one held before never found its request
        early_ = EarlyResponse{s.status, s.start_ns, end_ns, s.body_bytes};
    }
    s.paired = false;
    s.early = false;
    if (s.ends_parsing) opaque_ = true;
}

// True when the request whose head this is was answered by the held early response.
bool Http1ConnectionHandler::answer_with_early_response(const Stream& s, const MessageHead& head,
                                                        const StreamPiece& piece,
                                                        std::vector<Exchange>& out) {
    const EarlyResponse early = *std::exchange(early_, std::nullopt);
    // Sent before the response began, with nothing queued ahead of it.
    if (s.start_ns > early.start_ns || !pending_.empty() || dropped_at_tail_ > 0) {
        ++stats_.unpaired_responses;
        return false;
    }
    Exchange& ex = out.emplace_back();
    ex.method = head.method;
    ex.path.assign(path_of_target(head.target));
    assign_version(ex.protocol_version, head);
    ex.status = early.status;
    ex.request_start_ns = s.start_ns;
    ex.request_end_ns = piece.ts_exit_ns;
    ex.response_start_ns = early.start_ns;
    ex.response_end_ns = early.end_ns;
    ex.request_body_bytes = head.content_length.value_or(0);
    ex.response_body_bytes = early.body_bytes;
    ex.host = head.host;
    ex.traceparent = head.traceparent;
    ex.tracestate = head.tracestate;
    ex.role = role_;
    return true;
}

void Http1ConnectionHandler::emit_exchange(Stream& response, uint64_t end_ns,
                                           std::vector<Exchange>& out) {
    if (pending_.empty() || pending_.front().seq != response.seq) {
        assert(false && "a paired response always answers the front request");
        return;
    }
    PendingRequest& request = pending_.front();
    // A response may finish before its request does (an early error reply):
    // report the request as far as it got.
    if (requests_.paired && requests_.seq == request.seq) record_request_progress(requests_);

    Exchange& ex = out.emplace_back();
    ex.method = std::move(request.method);
    ex.path = std::move(request.path);
    ex.protocol_version = std::move(request.version);
    ex.status = response.status;
    ex.request_start_ns = request.start_ns;
    ex.request_end_ns = request.end_ns;
    ex.response_start_ns = response.start_ns;
    ex.response_end_ns = end_ns;
    ex.request_body_bytes = request.body_bytes;
    ex.response_body_bytes = response.body_bytes;
    ex.host = std::move(request.host);
    ex.traceparent = std::move(request.traceparent);
    ex.tracestate = std::move(request.tracestate);
    ex.role = role_;
    if (requests_.paired && requests_.seq == request.seq) requests_.paired = false;
    pending_.pop_front();
}

void Http1ConnectionHandler::record_request_progress(const Stream& s) {
    PendingRequest* request = pending_.find(s.seq);
    if (!request) return;
    request->end_ns = s.last_ns;
    request->body_bytes = s.body_bytes;
}

void Http1ConnectionHandler::discard_oldest_request() {
    if (pending_.empty()) {
        if (dropped_at_tail_ > 0) --dropped_at_tail_;
        return;
    }
    PendingRequest& front = pending_.front();
    if (front.dropped_before > 0) {
        --front.dropped_before;  // already counted when it was dropped
        return;
    }
    if (requests_.paired && requests_.seq == front.seq) requests_.paired = false;
    pending_.pop_front();
    ++stats_.dropped_requests;
}

void Http1ConnectionHandler::fail(Stream& s, Failure failure) {
    switch (failure) {
        case Failure::ParseError:
            ++stats_.parse_errors;
            break;
        case Failure::LostSync:
            ++stats_.lost_sync;
            break;
        case Failure::Oversized:
            ++stats_.oversized_heads;
            break;
    }
    if (s.carries_requests) {
        // The request stays queued: its response will still come.
        if (s.paired) record_request_progress(s);
    } else {
        // The response we lost answers the oldest request (a lost gap between
        // messages hides the start of the next response). Dropping that request
        // keeps later responses paired with the right ones.
        const bool in_head = s.phase == Phase::Idle || s.phase == Phase::Head;
        if (s.early) {
            ++stats_.unpaired_responses;
        } else if (in_head || s.paired) {
            discard_oldest_request();
        }
    }
    s.paired = false;
    s.early = false;
    s.phase = Phase::Seeking;
    s.head_buffer.clear();
    s.block_bytes = 0;
}

}  // namespace

std::unique_ptr<ProtocolHandler> make_handler(Role role, const Limits& limits) {
    return std::make_unique<Http1ConnectionHandler>(role, limits);
}

}  // namespace sonde::protocols::http1
