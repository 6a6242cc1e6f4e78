// Pure HTTP/1 head parsing (RFC 9112 sections 2-6) over byte views.
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "protocols/http1/http1.h"
#include "protocols/http1/http1_internal.h"

namespace sonde::protocols::http1 {

namespace internal {

namespace {
// RFC 9110 token characters, as a table: every method and header name byte
// goes through this test.
constexpr std::array<bool, 256> kTchar = [] {
    std::array<bool, 256> table{};
    for (int c = '0'; c <= '9'; ++c) table[static_cast<size_t>(c)] = true;
    for (int c = 'a'; c <= 'z'; ++c) table[static_cast<size_t>(c)] = true;
    for (int c = 'A'; c <= 'Z'; ++c) table[static_cast<size_t>(c)] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<uint8_t>(c)] = true;
    return table;
}();

// Eight bytes handled as one word (SWAR): a byte of ones, the top bit of every byte.
constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHighs = 0x8080808080808080ull;

uint64_t load_word(const char* p) {
    uint64_t x = 0;
    std::memcpy(&x, p, sizeof x);
    return x;
}
}  // namespace

bool is_tchar(uint8_t c) {
    return kTchar[c];
}

size_t find_control_byte(std::string_view text, size_t i) {
    const size_t n = text.size();
#if defined(__SSE2__)
    // Sixteen bytes at a time where the CPU has SSE2 (every x86-64): read as
    // signed, a control byte is one in [0, 0x20) or 0x7f; obs-text (0x80 and
    // up) reads as negative and passes.
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i minus_one = _mm_set1_epi8(-1);
    const __m128i del = _mm_set1_epi8(0x7f);
    for (; i + 16 <= n; i += 16) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
        const __m128i below_space =
            _mm_and_si128(_mm_cmplt_epi8(x, space), _mm_cmpgt_epi8(x, minus_one));
        const int hits = _mm_movemask_epi8(_mm_or_si128(below_space, _mm_cmpeq_epi8(x, del)));
        if (hits != 0)
            return i + static_cast<size_t>(std::countr_zero(static_cast<unsigned>(hits)));
    }
#endif
    for (; i + 8 <= n; i += 8) {
        const uint64_t x = load_word(text.data() + i);
        const uint64_t below_space = (x - kOnes * 0x20) & ~x & kHighs;
        const uint64_t del = x ^ (kOnes * 0x7f);
        const uint64_t has_del = (del - kOnes) & ~del & kHighs;
        if ((below_space | has_del) != 0) break;
    }
    for (; i < n; ++i) {
        const auto c = static_cast<uint8_t>(text[i]);
        if (c < 0x20 || c == 0x7f) return i;
    }
    return n;
}

bool start_line_prefix_ok(std::span<const uint8_t> bytes, bool is_request) {
    const size_t n = std::min<size_t>(bytes.size(), 16);
    if (!is_request) {
        // "HTTP/1.x ddd": '#' stands for a digit.
        constexpr std::string_view kShape = "HTTP/1.# ###";
        for (size_t i = 0; i < n && i < kShape.size(); ++i) {
            const uint8_t c = bytes[i];
            const bool ok = kShape[i] == '#' ? (c >= '0' && c <= '9') : c == kShape[i];
            if (!ok) return false;
        }
        return true;
    }
    size_t i = 0;
    while (i < n && is_tchar(bytes[i])) ++i;
    if (i == n) return true;
    if (i == 0 || bytes[i] != ' ') return false;
    ++i;
    // The request-target must start right after a single space.
    return i == n || (bytes[i] > 0x20 && bytes[i] != 0x7f);
}

std::optional<size_t> HeaderBlockScanner::feed(std::span<const uint8_t> bytes) {
    const uint8_t* data = bytes.data();
    const size_t n = bytes.size();
    size_t i = 0;
    while (i < n) {
        const void* hit = std::memchr(data + i, '\n', n - i);
        const size_t eol = hit ? static_cast<size_t>(static_cast<const uint8_t*>(hit) - data) : n;
        if (eol > i) {
            if (line_length_ == 0) line_starts_with_cr_ = data[i] == '\r';
            line_length_ += eol - i;
        }
        if (!hit) return std::nullopt;
        const bool empty = line_length_ == 0 || (line_length_ == 1 && line_starts_with_cr_);
        line_length_ = 0;
        line_starts_with_cr_ = false;
        i = eol + 1;
        if (empty) return i;
        ++complete_lines_;
    }
    return std::nullopt;
}

}  // namespace internal

namespace {

using internal::find_control_byte;
using internal::is_tchar;
using internal::kErrHeadTooLarge;
using internal::kHighs;
using internal::kOnes;
using internal::load_word;

constexpr std::string_view kErrRequestLine = "malformed request line";
constexpr std::string_view kErrMethod = "method is not a token";
constexpr std::string_view kErrTarget = "malformed request target";
constexpr std::string_view kErrStatusLine = "malformed status line";
constexpr std::string_view kErrStatusCode = "status code out of range";
constexpr std::string_view kErrVersion = "not HTTP/1.x";
constexpr std::string_view kErrNoColon = "header line without colon";
constexpr std::string_view kErrFieldName = "malformed header name";
constexpr std::string_view kErrFieldValue = "control character in header value";
constexpr std::string_view kErrObsFold = "continuation line without a header";
constexpr std::string_view kErrTooManyHeaders = "too many headers";
constexpr std::string_view kErrContentLength = "invalid Content-Length";
constexpr std::string_view kErrConflictingLength = "conflicting Content-Length values";
constexpr std::string_view kErrTransferCoding = "request transfer coding is not chunked";

std::string_view as_chars(std::span<const uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// Eight bytes with their ASCII capitals turned into small letters: a byte
// whose low seven bits lie in 'A'..'Z' and whose top bit is clear gains 0x20.
// The additions stay below 0x100 per byte, so no carry crosses a byte.
uint64_t fold_to_lowercase(uint64_t x) {
    const uint64_t low7 = x & ~kHighs;
    const uint64_t at_least_a = low7 + kOnes * (0x80 - 'A');
    const uint64_t beyond_z = low7 + kOnes * (0x80 - 'Z' - 1);
    const uint64_t capitals = at_least_a & ~beyond_z & ~x & kHighs;
    return x | (capitals >> 2);
}

// `text` equals `lower`, an all-lowercase constant, ignoring ASCII case: only
// `text` needs folding, eight bytes at a time (the last word may overlap the
// one before it).
bool equals_lowercase(std::string_view text, std::string_view lower) {
    const size_t n = text.size();
    if (n != lower.size()) return false;
    if (n < 8) {
        for (size_t i = 0; i < n; ++i) {
            if (ascii_lower(text[i]) != lower[i]) return false;
        }
        return true;
    }
    for (size_t i = 0; i + 8 < n; i += 8) {
        if (fold_to_lowercase(load_word(text.data() + i)) != load_word(lower.data() + i)) {
            return false;
        }
    }
    return fold_to_lowercase(load_word(text.data() + n - 8)) == load_word(lower.data() + n - 8);
}

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

std::string_view strip_cr(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// The first control byte other than a tab at or after `i`, or text.size():
// where a field value ends (at its CR or LF) or turns out invalid.
size_t find_value_stop(std::string_view text, size_t i) {
    while ((i = find_control_byte(text, i)) < text.size() && text[i] == '\t') ++i;
    return i;
}

// field-vchar / SP / HTAB; obs-text (>= 0x80) is tolerated as RFC 9110 allows.
bool is_field_value_text(std::string_view s) {
    return find_value_stop(s, 0) == s.size();
}

bool parse_version(std::string_view v, int& minor) {
    if (v.size() != 8 || v.substr(0, 7) != "HTTP/1." || !is_digit(v[7])) return false;
    minor = v[7] - '0';
    return true;
}

bool parse_decimal(std::string_view s, uint64_t& out) {
    if (s.empty()) return false;
    uint64_t value = 0;
    for (char c : s) {
        if (!is_digit(c)) return false;
        const auto digit = static_cast<uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10) return false;
        value = value * 10 + digit;
    }
    out = value;
    return true;
}

// Calls fn(element) for each comma-separated element of a list-valued field,
// trimmed of OWS. Stops and returns false as soon as fn does.
template <typename Fn>
bool for_each_element(std::string_view value, Fn&& fn) {
    while (true) {
        const size_t comma = value.find(',');
        if (!fn(trim_ows(value.substr(0, comma)))) return false;
        if (comma == std::string_view::npos) return true;
        value.remove_prefix(comma + 1);
    }
}

std::string_view parse_request_line(std::string_view line, MessageHead& head) {
    const size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return kErrRequestLine;
    const std::string_view method = line.substr(0, sp1);
    if (method.empty()) return kErrMethod;
    for (char c : method) {
        if (!is_tchar(static_cast<uint8_t>(c))) return kErrMethod;
    }
    const std::string_view rest = line.substr(sp1 + 1);
    const size_t sp2 = rest.find(' ');
    // A line without a version would be HTTP/0.9, which is not HTTP/1.x.
    if (sp2 == std::string_view::npos) return kErrRequestLine;
    const std::string_view target = rest.substr(0, sp2);
    if (target.empty()) return kErrTarget;
    // No space in it (it ends at the first one): a control byte is all that
    // can make it invalid.
    if (find_control_byte(target, 0) != target.size()) return kErrTarget;
    int minor = 0;
    if (!parse_version(rest.substr(sp2 + 1), minor)) return kErrVersion;
    head.is_request = true;
    head.method.assign(method);
    head.target.assign(target);
    head.version_minor = minor;
    return {};
}

std::string_view parse_status_line(std::string_view line, MessageHead& head) {
    int minor = 0;
    if (line.size() < 8 || !parse_version(line.substr(0, 8), minor)) return kErrVersion;
    // Many servers omit the reason phrase and its leading space: "HTTP/1.1 200".
    if (line.size() < 12 || line[8] != ' ') return kErrStatusLine;
    if (!is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11])) return kErrStatusLine;
    if (line.size() > 12 && (line[12] != ' ' || !is_field_value_text(line.substr(13)))) {
        return kErrStatusLine;
    }
    const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (status < 100 || status > 599) return kErrStatusCode;
    head.is_request = false;
    head.status = status;
    head.version_minor = minor;
    return {};
}

// What the header fields said about framing and connection management; only
// turned into MessageHead flags once all fields are known.
struct FramingFields {
    bool transfer_encoding = false;
    bool last_coding_chunked = false;
    bool close = false;
    bool keep_alive = false;
    bool upgrade = false;
    bool host_seen = false;
    bool traceparent_seen = false;
};

// The fields apply_field acts on.
enum class KnownField : uint8_t {
    Other,
    ContentLength,
    TransferEncoding,
    Connection,
    Host,
    Traceparent,
    Tracestate
};

// A name's length leaves at most two candidates, so most fields of a head
// are told apart by one comparison and known ones by one or two.
KnownField known_field(std::string_view name) {
    switch (name.size()) {
        case 4:
            return equals_lowercase(name, "host") ? KnownField::Host : KnownField::Other;
        case 10:
            if (equals_lowercase(name, "connection")) return KnownField::Connection;
            return equals_lowercase(name, "tracestate") ? KnownField::Tracestate
                                                        : KnownField::Other;
        case 11:
            return equals_lowercase(name, "traceparent") ? KnownField::Traceparent
                                                         : KnownField::Other;
        case 14:
            return equals_lowercase(name, "content-length") ? KnownField::ContentLength
                                                            : KnownField::Other;
        case 17:
            return equals_lowercase(name, "transfer-encoding") ? KnownField::TransferEncoding
                                                               : KnownField::Other;
        default:
            return KnownField::Other;
    }
}

std::string_view apply_field(std::string_view name, std::string_view value, MessageHead& head,
                             FramingFields& fields) {
    const KnownField field = known_field(name);
    if (field == KnownField::Other) return {};
    if (field == KnownField::ContentLength) {
        // A list of identical values ("5, 5") is what proxies produce when
        // merging duplicates; RFC 9110 section 8.6 lets recipients accept it.
        bool ok = for_each_element(value, [&](std::string_view element) {
            uint64_t length = 0;
            if (!parse_decimal(element, length)) return false;
            if (head.content_length && *head.content_length != length) return false;
            head.content_length = length;
            return true;
        });
        if (!ok) {
            uint64_t ignored = 0;
            const bool all_numbers = for_each_element(
                value, [&](std::string_view e) { return parse_decimal(e, ignored); });
            return all_numbers ? kErrConflictingLength : kErrContentLength;
        }
    } else if (field == KnownField::TransferEncoding) {
        fields.transfer_encoding = true;
        for_each_element(value, [&](std::string_view element) {
            if (element.empty()) return true;
            const std::string_view coding = trim_ows(element.substr(0, element.find(';')));
            fields.last_coding_chunked = equals_lowercase(coding, "chunked");
            return true;
        });
    } else if (field == KnownField::Connection) {
        for_each_element(value, [&](std::string_view option) {
            if (equals_lowercase(option, "close")) fields.close = true;
            if (equals_lowercase(option, "keep-alive")) fields.keep_alive = true;
            if (equals_lowercase(option, "upgrade")) fields.upgrade = true;
            return true;
        });
    } else if (field == KnownField::Host) {
        if (!fields.host_seen) head.host.assign(value);
        fields.host_seen = true;
    } else if (field == KnownField::Traceparent) {
        if (!fields.traceparent_seen) head.traceparent.assign(value);
        fields.traceparent_seen = true;
    } else {  // KnownField::Tracestate
        // W3C trace context: several tracestate fields form one list.
        if (!head.tracestate.empty() && !value.empty()) head.tracestate += ',';
        head.tracestate.append(value);
    }
    return {};
}

enum class LineKind : uint8_t { Field, Empty, Fold, Incomplete, Invalid };

// One line of the header section, as scan_header_line found it.
struct HeaderLine {
    LineKind kind = LineKind::Incomplete;
    std::string_view name;   // Field
    std::string_view value;  // Field: OWS-trimmed value; Fold: the continuation, OWS-trimmed
    size_t next = 0;         // offset just past the line's LF
    std::string_view error;  // Invalid
};

// Reads the header line starting at `pos` in one pass: the name is checked
// byte by byte up to its colon, the value is searched for its line end and
// for control bytes at once. Errors and their precedence are those of a
// parser that first finds the line's LF, then checks its size against
// `limit`, then its content: a line whose LF has not arrived yet is
// Incomplete whatever it holds.
HeaderLine scan_header_line(std::string_view text, size_t pos, size_t limit) {
    HeaderLine line;
    const size_t n = text.size();
    // The slow path, for lines that will be rejected and for obs-folds:
    // locate the LF first so that errors keep their precedence.
    const auto whole_line = [&](std::string_view& content) {
        const size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) return false;
        if (eol + 1 > limit) {
            line.kind = LineKind::Invalid;
            line.error = kErrHeadTooLarge;
            return false;
        }
        content = strip_cr(text.substr(pos, eol - pos));
        line.next = eol + 1;
        return true;
    };
    const auto invalid_line = [&](std::string_view error) {
        std::string_view content;
        if (whole_line(content)) {
            line.kind = LineKind::Invalid;
            line.error = error;
        }
        return line;
    };
    const auto malformed_name = [&]() {
        std::string_view content;
        if (!whole_line(content)) return line;
        line.kind = LineKind::Invalid;
        const size_t colon = content.find(':');
        line.error = colon == std::string_view::npos ? kErrNoColon : kErrFieldName;
        return line;
    };

    if (pos >= n) return line;
    const char first = text[pos];
    if (first == '\n' || (first == '\r' && pos + 1 < n && text[pos + 1] == '\n')) {
        line.next = pos + (first == '\n' ? 1 : 2);
        if (line.next > limit) return invalid_line(kErrHeadTooLarge);
        line.kind = LineKind::Empty;
        return line;
    }
    if (is_ows(first)) {
        std::string_view content;
        if (!whole_line(content)) return line;
        line.kind = LineKind::Fold;
        line.value = trim_ows(content);
        return line;
    }

    size_t i = pos;
    // Four bytes a step while they last: one bounds check instead of four.
    const auto tchar_at = [&](size_t k) { return is_tchar(static_cast<uint8_t>(text[k])); };
    while (i + 4 <= n && tchar_at(i) && tchar_at(i + 1) && tchar_at(i + 2) && tchar_at(i + 3)) {
        i += 4;
    }
    while (i < n && tchar_at(i)) ++i;
    if (i == n) return line;
    if (text[i] != ':' || i == pos) return malformed_name();
    line.name = text.substr(pos, i - pos);

    ++i;
    while (i < n && is_ows(text[i])) ++i;
    const size_t value_start = i;
    i = find_value_stop(text, i);
    if (i == n) return line;
    size_t value_end = i;
    if (text[i] == '\r') {
        if (i + 1 == n) return line;
        if (text[i + 1] != '\n') return invalid_line(kErrFieldValue);
        line.next = i + 2;
    } else if (text[i] == '\n') {
        line.next = i + 1;
    } else {
        return invalid_line(kErrFieldValue);
    }
    if (line.next > limit) return invalid_line(kErrHeadTooLarge);
    while (value_end > value_start && is_ows(text[value_end - 1])) --value_end;
    line.value = text.substr(value_start, value_end - value_start);
    line.kind = LineKind::Field;
    return line;
}

}  // namespace

void MessageHead::clear() {
    is_request = false;
    method.clear();
    target.clear();
    status = 0;
    version_minor = 1;
    content_length.reset();
    chunked = false;
    connection_close = false;
    upgrade = false;
    host.clear();
    traceparent.clear();
    tracestate.clear();
}

HeadParseResult parse_head(std::span<const uint8_t> bytes, bool is_request, const Limits& limits) {
    HeadParseResult result;
    parse_head_into(bytes, is_request, limits, result);
    return result;
}

void parse_head_into(std::span<const uint8_t> bytes, bool is_request, const Limits& limits,
                     HeadParseResult& result) {
    result.status = ParseStatus::NeedMore;
    result.consumed = 0;
    result.error = {};
    result.head.clear();
    const std::string_view text = as_chars(bytes);
    const size_t limit = limits.max_head_bytes;
    const auto invalid = [&result](std::string_view error) {
        result.status = ParseStatus::Invalid;
        result.error = error;
        result.consumed = 0;
    };
    const auto need_more = [&]() {
        if (text.size() >= limit) return invalid(kErrHeadTooLarge);
        result.status = ParseStatus::NeedMore;
    };

    // RFC 9112 section 2.2: ignore empty lines received before a start line.
    size_t pos = 0;
    while (pos < text.size() && (text[pos] == '\n' || text.substr(pos, 2) == "\r\n")) {
        pos += text[pos] == '\n' ? 1 : 2;
    }

    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) {
        if (!internal::start_line_prefix_ok(bytes.subspan(pos), is_request)) {
            return invalid(is_request ? kErrRequestLine : kErrStatusLine);
        }
        return need_more();
    }
    if (eol + 1 > limit) return invalid(kErrHeadTooLarge);
    const std::string_view start_line = strip_cr(text.substr(pos, eol - pos));
    const std::string_view start_error = is_request ? parse_request_line(start_line, result.head)
                                                    : parse_status_line(start_line, result.head);
    if (!start_error.empty()) return invalid(start_error);
    pos = eol + 1;

    FramingFields fields;
    size_t field_count = 0;
    // A field is applied only when the next line shows it has no obs-fold
    // continuation; `folded` holds its value once continuations are joined.
    std::string_view field_name;
    std::string_view field_value;
    std::string folded;
    bool have_field = false;
    bool value_is_folded = false;
    while (true) {
        const HeaderLine line = scan_header_line(text, pos, limit);
        if (line.kind == LineKind::Incomplete) return need_more();
        if (line.kind == LineKind::Invalid) return invalid(line.error);
        pos = line.next;
        if (line.kind == LineKind::Fold) {
            // obs-fold (RFC 9112 section 5.2): replace the fold with a space.
            if (!have_field) return invalid(kErrObsFold);
            if (!is_field_value_text(line.value)) return invalid(kErrFieldValue);
            if (!value_is_folded) folded.assign(field_value);
            value_is_folded = true;
            if (!line.value.empty()) {
                if (!folded.empty()) folded += ' ';
                folded.append(line.value);
            }
            field_value = folded;
            continue;
        }
        if (have_field) {
            const std::string_view error =
                apply_field(field_name, field_value, result.head, fields);
            if (!error.empty()) return invalid(error);
            have_field = false;
        }
        if (line.kind == LineKind::Empty) break;
        field_name = line.name;
        field_value = line.value;
        if (++field_count > limits.max_headers) return invalid(kErrTooManyHeaders);
        have_field = true;
        value_is_folded = false;
    }

    MessageHead& head = result.head;
    if (fields.transfer_encoding) {
        // RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length.
        head.content_length.reset();
        if (fields.last_coding_chunked) {
            head.chunked = true;
        } else if (is_request) {
            return invalid(kErrTransferCoding);
        } else {
            head.connection_close = true;  // the body runs until close
        }
    }
    head.upgrade = fields.upgrade;
    if (fields.close || (head.version_minor == 0 && !fields.keep_alive)) {
        head.connection_close = true;
    }
    result.status = ParseStatus::Complete;
    result.consumed = pos;
}

bool looks_like_message_start(std::span<const uint8_t> bytes, bool is_request) {
    if (!is_request) {
        // "HTTP/1.x ddd" with a status class that exists.
        return bytes.size() >= 12 && internal::start_line_prefix_ok(bytes, false) &&
               bytes[9] >= '1' && bytes[9] <= '5';
    }
    // Any token is a valid method, but detection only trusts the uppercase
    // shape every registered method has: "HTTP/1.1 200" and most binary
    // protocols then fail here, which keeps responses from passing as requests.
    const size_t n = std::min<size_t>(bytes.size(), 16);
    size_t i = 0;
    while (i < n && ((bytes[i] >= 'A' && bytes[i] <= 'Z') || bytes[i] == '-' || bytes[i] == '_')) {
        ++i;
    }
    if (i == 0 || i + 1 >= n || bytes[i] != ' ') return false;
    // "PRI * HTTP/2.0" is the HTTP/2 connection preface, not an HTTP/1 method.
    if (i == 3 && std::memcmp(bytes.data(), "PRI", 3) == 0) return false;
    const uint8_t first = bytes[i + 1];
    // origin-form, asterisk-form, absolute-form or authority-form.
    return first == '/' || first == '*' || (first >= 'a' && first <= 'z') ||
           (first >= 'A' && first <= 'Z') || (first >= '0' && first <= '9');
}

BodyFraming body_framing(const MessageHead& head, std::string_view request_method) {
    if (!head.is_request) {
        const int status = head.status;
        if ((status >= 100 && status < 200) || status == 204 || status == 304) {
            return BodyFraming::None;
        }
        if (request_method == "HEAD") return BodyFraming::None;
        // A successful CONNECT turns the connection into a tunnel right away.
        if (request_method == "CONNECT" && status >= 200 && status < 300) return BodyFraming::None;
    }
    if (head.chunked) return BodyFraming::Chunked;
    if (head.content_length) return BodyFraming::ContentLength;
    return head.is_request ? BodyFraming::None : BodyFraming::UntilClose;
}

namespace {
// Where a path ends: at its query or fragment. Two single-byte searches
// (memchr): find_first_of with a set searches the set for every byte.
std::string_view path_before_query(std::string_view target) {
    const std::string_view before_query = target.substr(0, target.find('?'));
    return before_query.substr(0, before_query.find('#'));
}
}  // namespace

std::string_view path_of_target(std::string_view target) {
    // origin-form, what nearly every request carries.
    if (!target.empty() && target[0] == '/') return path_before_query(target);
    // absolute-form: scheme "://" authority [path] (RFC 3986 section 3).
    const size_t scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos && scheme_end > 0 &&
        ((target[0] >= 'a' && target[0] <= 'z') || (target[0] >= 'A' && target[0] <= 'Z'))) {
        const std::string_view scheme = target.substr(0, scheme_end);
        const bool scheme_ok = std::all_of(scheme.begin(), scheme.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '+' ||
                   c == '-' || c == '.';
        });
        if (scheme_ok) {
            const std::string_view rest = target.substr(scheme_end + 3);
            const size_t path_start = rest.find_first_of("/?#");
            if (path_start == std::string_view::npos || rest[path_start] != '/') return "/";
            target = rest.substr(path_start);
        }
    }
    return path_before_query(target);
}

}  // namespace sonde::protocols::http1
