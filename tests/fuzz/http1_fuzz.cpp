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

namespace {

using namespace sonde::protocols;
using namespace sonde::protocols::http1;

// splitmix64: small, fast, and fully determined by the input's hash.
class Rng {
public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }

private:
    uint64_t state_;
};

uint64_t fnv1a(const uint8_t* data, size_t size) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 0x100000001b3ULL;
    return h;
}

void check(bool condition) {
    if (!condition) std::abort();
}

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
            // Mostly small pieces, sometimes large ones.
            const size_t max_piece = rng.below(4) == 0 ? 4096 : 24;
            const size_t size = std::min<size_t>(seg.bytes.size() - pos, 1 + rng.below(max_piece));
            size_t captured = size;
            uint64_t length = size;
            switch (rng.below(8)) {
                case 0:
                    captured = rng.below(size + 1);  // the tail was not copied
                    break;
                case 1:
                    length += rng.below(70000);  // more bytes than the input holds
                    break;
                case 2:
                    length = rng.below(size + 1);  // inconsistent: fewer than captured
                    break;
                default:
                    break;
            }
            StreamPiece piece;
            piece.captured = seg.bytes.subspan(pos, captured);
            piece.length = length;
            piece.ts_enter_ns = now;
            piece.ts_exit_ns = now + rng.below(5);
            now = piece.ts_exit_ns + 1;
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

void run_pure(std::span<const uint8_t> bytes) {
    Limits small;
    small.max_head_bytes = 256;
    small.max_headers = 4;
    for (bool is_request : {true, false}) {
        looks_like_message_start(bytes, is_request);
        for (const Limits& limits : {Limits{}, small}) {
            const HeadParseResult r = parse_head(bytes, is_request, limits);
            if (r.status == ParseStatus::Complete) {
                check(r.consumed > 0 && r.consumed <= bytes.size());
                check(r.consumed <= limits.max_head_bytes);
                check(r.head.is_request == is_request);
                const std::string path = path_of_target(r.head.target);
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
