// Arbitrary bytes through the HTTP/2 frame parsers and connection handler.
//
// Input format (frames are binary, so no separator byte would do): a list
// of writes, each a side byte (even: the client, odd: the server), a 16-bit
// big-endian length, then that many bytes (fewer if the input ends). Each
// write is cut into pieces at positions derived from a hash of the whole
// input, and some pieces are only partly captured or claim extra uncaptured
// bytes. The same conversation goes to handlers of every role, attached at
// the connection's start or not, and with the directions swapped. Nothing
// may crash, read out of bounds, or report an exchange that could not have
// been seen.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "protocols/http2/frames.h"
#include "protocols/http2/http2.h"
#include "random_pieces.h"

namespace {

using namespace sonde::protocols;
using namespace sonde::protocols::http2;

using sonde::fuzz::check;
using sonde::fuzz::fnv1a;
using sonde::fuzz::Rng;
namespace fuzz = sonde::fuzz;

// How the conversation is cut into syscalls.
constexpr fuzz::PieceShape kShape{3, 4096, 11, 10};

// The HPACK decoder bounds the values it keeps (2 KiB paths, 512-byte others).
constexpr size_t kMaxField = 2048;

void check_exchange(const Exchange& ex, uint64_t now) {
    check(ex.protocol_version == "2");
    check(ex.role == Role::Server || ex.role == Role::Client);
    // 1xx responses are skipped; a stream reset before any response has none;
    // a nonsense ":status: 006" is reported as sent.
    check(ex.status >= 0 && ex.status <= 999 && (ex.status < 100 || ex.status >= 200));
    check(ex.grpc_status >= -1 && ex.grpc_status <= 999);
    check(ex.method.size() <= kMaxField && ex.path.size() <= kMaxField);
    check(ex.host.size() <= kMaxField && ex.traceparent.size() <= kMaxField);
    check(ex.path.find_first_of("?#") == std::string::npos);
    check(ex.request_start_ns <= ex.request_end_ns && ex.request_end_ns <= now);
    check(ex.response_start_ns <= ex.response_end_ns && ex.response_end_ns <= now);
    check(ex.request_start_ns > 0);
}

struct Write {
    std::span<const uint8_t> bytes;
    bool from_client;
};

void run_handler(const std::vector<Write>& writes, Role role, bool from_start, Direction client_dir,
                 uint64_t seed) {
    Rng rng(seed);
    auto handler = make_handler(role, from_start);
    std::vector<Exchange> out;
    uint64_t now = 1;
    uint64_t captured_total = 0;
    const Direction server_dir =
        client_dir == Direction::Ingress ? Direction::Egress : Direction::Ingress;
    ProtocolStats last = handler->stats();
    for (const Write& w : writes) {
        size_t pos = 0;
        while (pos < w.bytes.size()) {
            const fuzz::CutPiece cut = fuzz::cut_piece(rng, w.bytes, pos, now, kShape);
            const StreamPiece& piece = cut.piece;
            const size_t size = cut.consumed;
            const size_t captured = piece.captured.size();
            captured_total += captured;
            const size_t before = out.size();
            handler->on_data(w.from_client ? client_dir : server_dir, piece, out);
            for (size_t i = before; i < out.size(); ++i) check_exchange(out[i], now);
            // Counters only grow.
            const ProtocolStats& s = handler->stats();
            check(s.parse_errors >= last.parse_errors && s.lost_sync >= last.lost_sync &&
                  s.unpaired_responses >= last.unpaired_responses &&
                  s.dropped_requests >= last.dropped_requests &&
                  s.oversized_heads >= last.oversized_heads &&
                  s.partial_exchanges >= last.partial_exchanges);
            last = s;
            pos += size;
        }
    }
    // An exchange needs at least a captured HEADERS frame header.
    check(out.size() * kFrameHeaderBytes <= captured_total);
    size_t partial = 0;
    for (const Exchange& ex : out) partial += ex.partial;
    check(partial == handler->stats().partial_exchanges);
    // HTTP/2 delimits every message by frames: closing finishes nothing.
    const size_t before_close = out.size();
    handler->on_close(now, out);
    check(out.size() == before_close);
    // A closed connection takes no more data.
    static const uint8_t kLate[] = {0, 0, 1, 1, 5, 0, 0, 0, 1, 0x82};
    handler->on_data(client_dir, {std::span<const uint8_t>(kLate), sizeof kLate, now, now}, out);
    check(out.size() == before_close);
}

void run_pure(std::span<const uint8_t> bytes) {
    starts_with_preface(bytes);
    looks_like_frames(bytes);
    if (const auto h = parse_frame_header(bytes)) {
        const std::span<const uint8_t> payload =
            bytes.subspan(kFrameHeaderBytes, std::min<size_t>(h->length, bytes.size() - 9));
        frame_header_error(*h);
        if (const auto f = headers_fragment(*h, payload)) {
            check(f->data() >= payload.data() && f->size() <= payload.size());
        }
        if (const auto p = push_promise_payload(*h, payload)) {
            check(p->fragment.size() + 4 <= payload.size());
            check(p->promised_stream_id < 0x80000000u);
        }
        if (!payload.empty()) {
            if (const auto overhead = padding_overhead(*h, payload[0]))
                check(*overhead <= h->length);
        }
        Settings settings;
        if (parse_settings(payload, settings)) check(settings.entries * 6 == payload.size());
        rst_stream_error(payload);
        parse_goaway(payload);
        window_update_increment(payload);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> input(data, size);
    run_pure(input);

    std::vector<Write> writes;
    size_t pos = 0;
    while (pos < size) {
        const bool from_client = (data[pos] & 1) == 0;
        size_t length = 0;
        if (pos + 3 <= size) length = (size_t{data[pos + 1]} << 8) | data[pos + 2];
        pos = std::min(size, pos + 3);
        length = std::min(length, size - pos);
        writes.push_back({input.subspan(pos, length), from_client});
        run_pure(input.subspan(pos, length));
        pos += length;
    }

    const uint64_t seed = fnv1a(data, size);
    run_handler(writes, Role::Server, true, Direction::Ingress, seed);
    run_handler(writes, Role::Client, true, Direction::Egress, seed + 1);
    run_handler(writes, Role::Unknown, true, seed & 1 ? Direction::Ingress : Direction::Egress,
                seed + 2);
    run_handler(writes, Role::Server, false, Direction::Ingress, seed + 3);
    run_handler(writes, Role::Unknown, false, seed & 2 ? Direction::Ingress : Direction::Egress,
                seed + 4);
    // The directions swapped: the roles disagree with the bytes.
    run_handler(writes, Role::Server, true, Direction::Egress, seed + 5);
    run_handler(writes, Role::Client, false, Direction::Ingress, seed + 6);
    return 0;
}
