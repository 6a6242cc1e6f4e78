// Arbitrary bytes through the HTTP/1 parsers and connection handlers.
//
// Input format (so the corpus stays readable): NUL bytes separate segments;
// even segments are request-direction bytes, odd ones response-direction
// bytes, sent in that order. Each segment is cut into pieces at positions
// derived from a hash of the whole input, and some pieces are only partly
// captured or claim extra uncaptured bytes. The same conversation goes to
// handlers of every role, with default and tiny limits, and with the
// directions swapped. Nothing may crash, read out of bounds, or report an
// exchange that could not have been seen.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "protocols/http1/http1.h"
#include "random_pieces.h"

namespace {

using namespace sonde::protocols;
using namespace sonde::protocols::http1;

using sonde::fuzz::check;
using sonde::fuzz::fnv1a;
using sonde::fuzz::Rng;
namespace fuzz = sonde::fuzz;

// How the conversation is cut into syscalls.
constexpr fuzz::PieceShape kShape{4, 24, 4096, 8};

void check_exchange(const Exchange& ex, const Limits& limits) {
    check(ex.status >= 100 && ex.status <= 599);
    check(ex.status == 101 || ex.status >= 200);
    check(!ex.method.empty() && ex.method.size() < limits.max_head_bytes);
    check(ex.path.size() < limits.max_head_bytes && ex.host.size() < limits.max_head_bytes);
    check(ex.protocol_version == "1.0" || ex.protocol_version.size() == 3);
    check(ex.request_start_ns <= ex.request_end_ns);
    check(ex.response_start_ns <= ex.response_end_ns);
    check(ex.role == Role::Server || ex.role == Role::Client);
}

struct Segment {
    std::span<const uint8_t> bytes;
    bool requests;
};

void run_handler(const std::vector<Segment>& segments, Role role, Direction request_dir,
                 const Limits& limits, uint64_t seed) {
    Rng rng(seed);
    auto handler = make_handler(role, limits);
    std::vector<Exchange> out;
    uint64_t now = 1;
    uint64_t captured_total = 0;
    const Direction response_dir =
        request_dir == Direction::Ingress ? Direction::Egress : Direction::Ingress;
    for (const Segment& seg : segments) {
        size_t pos = 0;
        while (pos < seg.bytes.size()) {
            const fuzz::CutPiece cut = fuzz::cut_piece(rng, seg.bytes, pos, now, kShape);
            const StreamPiece& piece = cut.piece;
            const size_t size = cut.consumed;
            const size_t captured = piece.captured.size();
            captured_total += captured;
            const size_t before = out.size();
            handler->on_data(seg.requests ? request_dir : response_dir, piece, out);
            for (size_t i = before; i < out.size(); ++i) check_exchange(out[i], limits);
            pos += size;
        }
    }
    const size_t before_close = out.size();
    handler->on_close(now, out);
    for (size_t i = before_close; i < out.size(); ++i) check_exchange(out[i], limits);
    check(out.size() <= before_close + 1);
    // Every exchange needs a captured response head ("HTTP/1.1 200\n\n").
    check(out.size() * 14 <= captured_total);
    // A closed connection takes no more data.
    const uint8_t late[] = "GET / HTTP/1.1\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
    const size_t after = out.size();
    handler->on_data(request_dir, {std::span<const uint8_t>(late, 18), 18, now, now}, out);
    handler->on_data(response_dir, {std::span<const uint8_t>(late + 18, 19), 19, now, now}, out);
    check(out.size() == after);
}

bool same_result(const HeadParseResult& a, const HeadParseResult& b) {
    const MessageHead& x = a.head;
    const MessageHead& y = b.head;
    return a.status == b.status && a.consumed == b.consumed && a.error == b.error &&
           x.is_request == y.is_request && x.method == y.method && x.target == y.target &&
           x.status == y.status && x.version_minor == y.version_minor &&
           x.content_length == y.content_length && x.chunked == y.chunked &&
           x.connection_close == y.connection_close && x.upgrade == y.upgrade && x.host == y.host &&
           x.traceparent == y.traceparent && x.tracestate == y.tracestate;
}

void run_pure(std::span<const uint8_t> bytes) {
    Limits small;
    small.max_head_bytes = 256;
    small.max_headers = 4;
    for (bool is_request : {true, false}) {
        looks_like_message_start(bytes, is_request);
        for (const Limits& limits : {Limits{}, small}) {
            const HeadParseResult r = parse_head(bytes, is_request, limits);
            // A result reused across heads, as the connection handler does, must
            // come out exactly as a fresh one: nothing of the last head may stay.
            static HeadParseResult reused;
            parse_head_into(bytes, is_request, limits, reused);
            check(same_result(r, reused));
            if (r.status == ParseStatus::Complete) {
                check(r.consumed > 0 && r.consumed <= bytes.size());
                check(r.consumed <= limits.max_head_bytes);
                check(r.head.is_request == is_request);
                const std::string path(path_of_target(r.head.target));
                check(path.size() <= r.head.target.size() || path == "/");
                body_framing(r.head, "HEAD");
                body_framing(r.head);
            } else if (r.status == ParseStatus::Invalid) {
                check(!r.error.empty());
            }
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> input(data, size);
    run_pure(input);

    std::vector<Segment> segments;
    std::vector<Segment> swapped;
    size_t start = 0;
    bool requests = true;
    for (size_t i = 0; i <= size; ++i) {
        if (i == size || data[i] == 0) {
            segments.push_back({input.subspan(start, i - start), requests});
            swapped.push_back({input.subspan(start, i - start), !requests});
            requests = !requests;
            start = i + 1;
        }
    }

    const uint64_t seed = fnv1a(data, size);
    Limits tiny;
    tiny.max_head_bytes = 64;
    tiny.max_headers = 2;
    tiny.max_pending_requests = 2;
    run_handler(segments, Role::Server, Direction::Ingress, {}, seed);
    run_handler(segments, Role::Client, Direction::Egress, {}, seed + 1);
    run_handler(segments, Role::Unknown, seed & 1 ? Direction::Ingress : Direction::Egress, {},
                seed + 2);
    run_handler(segments, Role::Server, Direction::Ingress, tiny, seed + 3);
    run_handler(swapped, Role::Server, Direction::Ingress, {}, seed + 4);
    run_handler(swapped, Role::Unknown, Direction::Egress, tiny, seed + 5);
    return 0;
}
