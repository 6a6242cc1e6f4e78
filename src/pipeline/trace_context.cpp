#include "pipeline/trace_context.h"

namespace sonde::pipeline {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int lower_hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool is_lcalpha(char c) noexcept {
    return c >= 'a' && c <= 'z';
}
bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}
bool is_key_char(char c) noexcept {
    return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}
bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

// key = simple-key / multi-tenant-key
// simple-key   = lcalpha 0*255( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
// tenant-id    = ( lcalpha / DIGIT ) 0*240( same )
// system-id    = lcalpha 0*13( same )
bool is_valid_key(std::string_view key) noexcept {
    const size_t at = key.find('@');
    auto body_ok = [](std::string_view s) {
        for (size_t i = 1; i < s.size(); ++i) {
            if (!is_key_char(s[i])) return false;
        }
        return true;
    };
    if (at == std::string_view::npos) {
        return !key.empty() && key.size() <= 256 && is_lcalpha(key[0]) && body_ok(key);
    }
    const std::string_view tenant = key.substr(0, at);
    const std::string_view system = key.substr(at + 1);
    return !tenant.empty() && tenant.size() <= 241 &&
           (is_lcalpha(tenant[0]) || is_digit(tenant[0])) && body_ok(tenant) && !system.empty() &&
           system.size() <= 14 && is_lcalpha(system[0]) && body_ok(system);
}

// value = 0*255(chr) nblk-chr;  nblk-chr = %x21-2B / %x2D-3C / %x3E-7E;  chr = %x20 / nblk-chr
bool is_valid_value(std::string_view value) noexcept {
    if (value.empty() || value.size() > 256) return false;
    for (char ch : value) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
    }
    return value.back() != ' ';
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace

bool is_all_zero(const uint8_t* bytes, size_t n) noexcept {
    for (size_t i = 0; i < n; ++i) {
        if (bytes[i] != 0) return false;
    }
    return true;
}

bool hex_decode_lower(std::string_view hex, uint8_t* out, size_t n) noexcept {
    if (hex.size() != 2 * n) return false;
    for (size_t i = 0; i < hex.size(); ++i) {
        if (lower_hex_value(hex[i]) < 0) return false;
    }
    for (size_t i = 0; i < n; ++i) {
        out[i] = static_cast<uint8_t>(lower_hex_value(hex[2 * i]) << 4 |
                                      lower_hex_value(hex[2 * i + 1]));
    }
    return true;
}

void hex_encode(const uint8_t* bytes, size_t n, char* out) noexcept {
    for (size_t i = 0; i < n; ++i) {
        out[2 * i] = kHexDigits[bytes[i] >> 4];
        out[2 * i + 1] = kHexDigits[bytes[i] & 0x0f];
    }
}

std::string to_hex(const TraceId& id) {
    std::string s(2 * id.size(), '0');
    hex_encode(id.data(), id.size(), s.data());
    return s;
}

std::string to_hex(const SpanId& id) {
    std::string s(2 * id.size(), '0');
    hex_encode(id.data(), id.size(), s.data());
    return s;
}

TraceParent parse_traceparent(std::string_view value) noexcept {
    TraceParent result;
    // Every version shares the first four fields; shorter input is never parseable.
    if (value.size() < kTraceParentLength) return result;
    uint8_t version = 0;
    if (!hex_decode_lower(value.substr(0, 2), &version, 1)) return result;
    if (version == 0xff) return result;  // forbidden by the spec
    if (version == 0x00 && value.size() != kTraceParentLength) return result;
    // A later version may append fields, but only after another '-'.
    if (value.size() > kTraceParentLength && value[kTraceParentLength] != '-') return result;
    if (value[2] != '-' || value[35] != '-' || value[52] != '-') return result;

    TraceParent parsed;
    uint8_t flags = 0;
    if (!hex_decode_lower(value.substr(3, 32), parsed.trace_id.data(), parsed.trace_id.size()) ||
        !hex_decode_lower(value.substr(36, 16), parsed.parent_span_id.data(),
                          parsed.parent_span_id.size()) ||
        !hex_decode_lower(value.substr(53, 2), &flags, 1)) {
        return result;
    }
    if (is_all_zero(parsed.trace_id.data(), parsed.trace_id.size()) ||
        is_all_zero(parsed.parent_span_id.data(), parsed.parent_span_id.size())) {
        return result;
    }
    parsed.version = version;
    parsed.flags = version == 0x00 ? flags : static_cast<uint8_t>(flags & kTraceFlagSampled);
    parsed.valid = true;
    return parsed;
}

void format_traceparent_to(const TraceId& trace_id, const SpanId& span_id, uint8_t flags,
                           std::array<char, kTraceParentLength>& out) noexcept {
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    hex_encode(trace_id.data(), trace_id.size(), &out[3]);
    out[35] = '-';
    hex_encode(span_id.data(), span_id.size(), &out[36]);
    out[52] = '-';
    hex_encode(&flags, 1, &out[53]);
}

std::string format_traceparent(const TraceId& trace_id, const SpanId& span_id, uint8_t flags) {
    std::array<char, kTraceParentLength> buf;
    format_traceparent_to(trace_id, span_id, flags, buf);
    return std::string(buf.data(), buf.size());
}

bool is_valid_tracestate(std::string_view value) noexcept {
    if (value.size() > kTraceStateMaxLength) return false;
    // Keys seen so far, as views into `value`: at most kTraceStateMaxMembers, so a fixed array.
    std::array<std::string_view, kTraceStateMaxMembers> keys;
    size_t members = 0;
    size_t pos = 0;
    while (pos <= value.size()) {
        size_t comma = value.find(',', pos);
        if (comma == std::string_view::npos) comma = value.size();
        // Empty and whitespace-only members are allowed and do not count.
        const std::string_view member = trim_ows(value.substr(pos, comma - pos));
        pos = comma + 1;
        if (member.empty()) continue;
        const size_t eq = member.find('=');
        if (eq == std::string_view::npos) return false;
        const std::string_view key = member.substr(0, eq);
        if (!is_valid_key(key) || !is_valid_value(member.substr(eq + 1))) return false;
        if (members == kTraceStateMaxMembers) return false;
        for (size_t i = 0; i < members; ++i) {
            if (keys[i] == key) return false;  // keys must be unique
        }
        keys[members++] = key;
    }
    return true;
}

std::string_view sanitize_tracestate(std::string_view value) noexcept {
    return is_valid_tracestate(value) ? value : std::string_view();
}

}  // namespace sonde::pipeline
