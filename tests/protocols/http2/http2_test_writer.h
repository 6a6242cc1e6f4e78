// What the HTTP/2 tests and benchmarks write conversations with: a real HPACK
// encoder (libnghttp2's deflater, so blocks carry genuine dynamic-table
// insertions and references) and the 9-byte frame header.
#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "protocols/http2/frames.h"

namespace sonde::protocols::test {

using Bytes = std::vector<uint8_t>;
using Fields = std::vector<std::pair<std::string, std::string>>;

// One side's HPACK encoder for the life of a connection.
class HpackEncoder {
public:
    explicit HpackEncoder(size_t max_table = 4096) {
        nghttp2_hd_deflate_new(&deflater_, max_table);
    }
    ~HpackEncoder() { nghttp2_hd_deflate_del(deflater_); }
    HpackEncoder(const HpackEncoder&) = delete;
    HpackEncoder& operator=(const HpackEncoder&) = delete;

    // `never_index`: every field as a literal that neither uses nor adds
    // dynamic-table entries (names still come from the static table). An
    // encoding failure yields an empty block and sets failed().
    Bytes encode(const Fields& fields, bool never_index = false) {
        std::vector<nghttp2_nv> nva;
        for (const auto& [name, value] : fields) {
            nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                           reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                           value.size(),
                           static_cast<uint8_t>(never_index ? NGHTTP2_NV_FLAG_NO_INDEX
                                                            : NGHTTP2_NV_FLAG_NONE)});
        }
        Bytes out(nghttp2_hd_deflate_bound(deflater_, nva.data(), nva.size()));
        const ssize_t n =
            nghttp2_hd_deflate_hd(deflater_, out.data(), out.size(), nva.data(), nva.size());
        failed_ = failed_ || n < 0;
        out.resize(static_cast<size_t>(std::max<ssize_t>(n, 0)));
        return out;
    }

    void change_table_size(size_t bytes) { nghttp2_hd_deflate_change_table_size(deflater_, bytes); }

    bool failed() const { return failed_; }

private:
    nghttp2_hd_deflater* deflater_ = nullptr;
    bool failed_ = false;
};

// Appends the frame header of a `length`-byte payload.
inline void append_frame_header(Bytes& out, http2::FrameType type, uint8_t flag_bits,
                                uint32_t stream, uint32_t length) {
    const uint8_t header[http2::kFrameHeaderBytes] = {static_cast<uint8_t>(length >> 16),
                                                      static_cast<uint8_t>(length >> 8),
                                                      static_cast<uint8_t>(length),
                                                      static_cast<uint8_t>(type),
                                                      flag_bits,
                                                      static_cast<uint8_t>(stream >> 24),
                                                      static_cast<uint8_t>(stream >> 16),
                                                      static_cast<uint8_t>(stream >> 8),
                                                      static_cast<uint8_t>(stream)};
    out.insert(out.end(), header, header + http2::kFrameHeaderBytes);
}

}  // namespace sonde::protocols::test
