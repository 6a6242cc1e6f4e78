// HPACK (RFC 7541) header-block decoding for one direction of one HTTP/2
// connection, reduced to the fields Sonde reads. Exact decoding is
// libnghttp2's inflater; when the connection's history is unknown (Sonde
// attached after it opened, or the exact decoder failed) a fallback decodes
// what can be decoded without the missing dynamic-table entries and says so.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace sonde::protocols::http2 {

// The header fields Sonde uses; every other field is decoded (to keep the
// dynamic table in step) and dropped. Values are bounded copies.
struct DecodedHeaders {
    std::string method;        // :method
    std::string path;          // :path, raw (may carry a query string; the caller strips it)
    std::string authority;     // :authority, else host
    int status = 0;            // :status, 0 when absent or not three digits
    std::string content_type;  // content-type
    int grpc_status = -1;      // grpc-status, -1 when absent or not a number
    std::string traceparent;
    std::string tracestate;
    // At least one field referred to a dynamic-table entry the decoder does not
    // know: the fields above that are set were decoded exactly, the rest are empty.
    bool partial = false;

    // Back to "nothing decoded"; strings keep their capacity for the next block.
    void clear() {
        method.clear();
        path.clear();
        authority.clear();
        status = 0;
        content_type.clear();
        grpc_status = -1;
        traceparent.clear();
        tracestate.clear();
        partial = false;
    }
};

enum class HpackResult : uint8_t {
    Ok,       // every field decoded
    Partial,  // decoded with unknown dynamic-table references (out.partial is set)
    Error,    // malformed block: out holds what came before the fault
};

class HpackDecoder {
public:
    // `history_known`: the decoder has seen every header block of this
    // direction since the connection opened (the client preface was seen).
    explicit HpackDecoder(bool history_known);
    ~HpackDecoder();
    HpackDecoder(HpackDecoder&&) noexcept;
    HpackDecoder& operator=(HpackDecoder&&) noexcept;
    HpackDecoder(const HpackDecoder&) = delete;
    HpackDecoder& operator=(const HpackDecoder&) = delete;

    // Decodes one complete header block (a HEADERS or PUSH_PROMISE fragment
    // plus its CONTINUATIONs, padding and priority already removed). Must be
    // called for every block of the direction, in order, or the dynamic table
    // drifts. `out` is reset first.
    HpackResult decode(std::span<const uint8_t> block, DecodedHeaders& out);

    // SETTINGS_HEADER_TABLE_SIZE announced by the receiver of these blocks:
    // the largest dynamic-table size the encoder may switch to.
    void set_max_table_size(uint32_t bytes);

    // False once the decoder has fallen back (history unknown or an exact-decoding failure).
    bool exact() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace sonde::protocols::http2
