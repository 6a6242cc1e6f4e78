// Arbitrary header blocks through the HPACK decoder in both modes.
//
// Input format (so RFC vectors make readable seeds): two bytes, big-endian,
// give the announced table size in units of 4 bytes (so up to 256 KiB, past
// the 64 KiB cap); then records, each a big-endian 16-bit word W:
//   - W < 0x8000: a header block of W bytes follows (cut short at the end of
//     the input);
//   - W >= 0x8000: SETTINGS_HEADER_TABLE_SIZE = (W & 0x7fff) * 4, no bytes.
// Every block goes to an exact decoder, a fallback decoder that started with
// the connection, and a fallback decoder that started after the first block.
// Besides never crashing or leaking:
//   - every value respects its bound, numbers their ranges;
//   - Partial and only Partial comes with out.partial; the exact decoder
//     never says Partial and never returns to exact mode;
//   - while libnghttp2 has accepted every block so far, the fallback that
//     started with the connection decodes the same fields without a fault or
//     an unknown reference, and the late fallback, whenever it reports Ok,
//     decodes the same fields too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>

#include "protocols/http2/hpack.h"

namespace {

using namespace sonde::protocols::http2;

void check(bool condition) {
    if (!condition) std::abort();
}

void check_bounds(HpackResult r, const DecodedHeaders& h) {
    check(h.path.size() <= 2048);
    check(h.method.size() <= 512 && h.authority.size() <= 512 && h.content_type.size() <= 512);
    check(h.traceparent.size() <= 512 && h.tracestate.size() <= 512);
    check(h.status >= 0 && h.status <= 999);
    check(h.grpc_status >= -1 && h.grpc_status <= 999);
    if (r != HpackResult::Error) check(h.partial == (r == HpackResult::Partial));
}

bool same_fields(const DecodedHeaders& a, const DecodedHeaders& b) {
    return a.method == b.method && a.path == b.path && a.authority == b.authority &&
           a.status == b.status && a.content_type == b.content_type &&
           a.grpc_status == b.grpc_status && a.traceparent == b.traceparent &&
           a.tracestate == b.tracestate;
}

uint32_t read_be16(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) << 8 | p[1];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    uint32_t announced = read_be16(data) * 4;
    HpackDecoder exact(true);
    HpackDecoder from_start(false);
    std::optional<HpackDecoder> late;
    exact.set_max_table_size(announced);
    from_start.set_max_table_size(announced);

    bool exact_clean = true;  // libnghttp2 accepted every block so far
    bool first_block = true;
    DecodedHeaders a;
    DecodedHeaders b;
    DecodedHeaders c;
    size_t pos = 2;
    while (pos + 2 <= size) {
        const uint32_t word = read_be16(data + pos);
        pos += 2;
        if (word >= 0x8000) {
            announced = (word & 0x7fff) * 4;
            exact.set_max_table_size(announced);
            from_start.set_max_table_size(announced);
            if (late) late->set_max_table_size(announced);
            continue;
        }
        const size_t length = std::min<size_t>(word, size - pos);
        const std::span<const uint8_t> block(data + pos, length);
        pos += length;

        const bool was_exact = exact.exact();
        const HpackResult ra = exact.decode(block, a);
        check_bounds(ra, a);
        if (was_exact) {
            check(ra != HpackResult::Partial);
            check(exact.exact() == (ra == HpackResult::Ok));
        } else {
            check(!exact.exact());
        }
        if (ra != HpackResult::Ok) exact_clean = false;

        const HpackResult rb = from_start.decode(block, b);
        check_bounds(rb, b);
        check(!from_start.exact());
        if (exact_clean) check(rb == HpackResult::Ok && same_fields(a, b));

        if (late) {
            const HpackResult rc = late->decode(block, c);
            check_bounds(rc, c);
            if (exact_clean && rc == HpackResult::Ok) check(same_fields(a, c));
        }
        if (first_block) {
            late.emplace(false);
            late->set_max_table_size(announced);
            first_block = false;
        }
    }
    return 0;
}
