// Pieces of the HTTP/1 parser that the connection handler shares with the
// pure head parser. Not part of the protocol interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace sonde::protocols::http1::internal {

// parse_head's error when no complete head fits in Limits::max_head_bytes;
// the handler compares against it to count oversized heads apart from junk.
inline constexpr std::string_view kErrHeadTooLarge = "head exceeds max_head_bytes";

// RFC 9110 section 5.6.2 token characters.
bool is_tchar(uint8_t c);

// Index of the first byte at or after `i` below 0x20 or equal to 0x7f (tabs
// and line ends included), or text.size(): where a field value ends or turns
// out invalid. Sixteen bytes at a time on SSE2, eight elsewhere.
size_t find_control_byte(std::string_view text, size_t i);

// False when the first bytes of a start line that has not yet ended cannot
// begin a valid one. Looks at no more than 16 bytes, so calling it each time
// a few more bytes of a slowly arriving head show up stays cheap.
bool start_line_prefix_ok(std::span<const uint8_t> bytes, bool is_request);

// Finds the empty line that ends a header block (a head or a chunked
// trailer section) while the block arrives in arbitrarily small parts, with
// constant state. A line ends at LF; an optional CR before it is not content.
class HeaderBlockScanner {
public:
    void reset() { *this = HeaderBlockScanner{}; }

    // Returns how many leading bytes of `bytes` belong to the block (up to and
    // including its final LF) once the block's end is among them.
    std::optional<size_t> feed(std::span<const uint8_t> bytes);

    // Non-empty lines completed so far.
    size_t complete_lines() const { return complete_lines_; }

private:
    size_t line_length_ = 0;
    bool line_starts_with_cr_ = false;
    size_t complete_lines_ = 0;
};

}  // namespace sonde::protocols::http1::internal
