#include "config/value_parsers.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

namespace sonde::config::detail {

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

bool is_name_start(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

bool is_name_char(char c) {
    return is_name_start(c) || is_digit(c);
}

struct DurationUnit {
    std::string_view name;
    int64_t nanoseconds;
};

// Longest names first so "ms" is not read as "m" followed by junk.
constexpr DurationUnit kDurationUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xc2\xb5s", 1'000},  // U+00B5 micro sign
    {"\xce\xbcs", 1'000},  // U+03BC greek mu
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
};

// Splits a URL after its scheme into host and optional port text; nullopt when
// the authority part is malformed.
struct Authority {
    std::string_view host;
    std::optional<std::string_view> port;
};

std::optional<Authority> split_authority(std::string_view rest) {
    const size_t end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    const size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
        authority.remove_prefix(at + 1);
    }
    Authority out;
    if (!authority.empty() && authority.front() == '[') {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        out.host = authority.substr(0, close + 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return std::nullopt;
            }
            out.port = after.substr(1);
        }
        return out;
    }
    const size_t colon = authority.rfind(':');
    if (colon == std::string_view::npos) {
        out.host = authority;
    } else {
        out.host = authority.substr(0, colon);
        out.port = authority.substr(colon + 1);
    }
    return out;
}

std::optional<std::string_view> strip_http_scheme(std::string_view url) {
    for (std::string_view scheme : {"http://", "https://"}) {
        if (url.size() >= scheme.size() && to_lower(url.substr(0, scheme.size())) == scheme) {
            return url.substr(scheme.size());
        }
    }
    return std::nullopt;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
            const int high = hex_value(text[i + 1]);
            const int low = hex_value(text[i + 2]);
            if (high >= 0 && low >= 0) {
                out.push_back(static_cast<char>(high * 16 + low));
                i += 2;
                continue;
            }
        }
        out.push_back(text[i]);
    }
    return out;
}

}  // namespace

std::string_view trim(std::string_view text) {
    while (!text.empty() && (is_blank(text.front()) || text.front() == '\r')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (is_blank(text.back()) || text.back() == '\r')) {
        text.remove_suffix(1);
    }
    return text;
}

std::string to_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

std::variant<std::chrono::nanoseconds, std::string> parse_duration(std::string_view text) {
    text = trim(text);
    if (text.empty()) {
        return std::string("empty duration (use e.g. 5s, 100ms, 1m30s)");
    }
    if (text.front() == '-') {
        return std::string("negative duration");
    }
    if (text.front() == '+') {
        text.remove_prefix(1);
    }
    if (text == "0") {
        return std::chrono::nanoseconds(0);
    }
    long double total = 0;
    while (!text.empty()) {
        size_t i = 0;
        long double number = 0;
        bool any_digit = false;
        while (i < text.size() && is_digit(text[i])) {
            number = number * 10 + (text[i] - '0');
            any_digit = true;
            ++i;
        }
        if (i < text.size() && text[i] == '.') {
            ++i;
            long double scale = 0.1L;
            while (i < text.size() && is_digit(text[i])) {
                number += scale * (text[i] - '0');
                scale /= 10;
                any_digit = true;
                ++i;
            }
        }
        if (!any_digit) {
            return "not a duration: expected a number at " + quote(text);
        }
        text.remove_prefix(i);
        const DurationUnit* unit = nullptr;
        for (const auto& candidate : kDurationUnits) {
            if (text.substr(0, candidate.name.size()) == candidate.name &&
                (unit == nullptr || candidate.name.size() > unit->name.size())) {
                unit = &candidate;
            }
        }
        if (unit == nullptr) {
            return text.empty() ? std::string("missing unit (use e.g. 5s, 100ms, 1m30s)")
                                : "unknown unit " + quote(text) + " (use ns, us, ms, s, m, h)";
        }
        text.remove_prefix(unit->name.size());
        total += number * static_cast<long double>(unit->nanoseconds);
        if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) {
            return std::string("duration too large");
        }
    }
    return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(total)));
}

std::string format_duration(std::chrono::nanoseconds value) {
    const int64_t ns = value.count();
    if (ns == 0) {
        return "0s";
    }
    constexpr std::pair<int64_t, std::string_view> kUnits[] = {
        {3'600'000'000'000, "h"}, {60'000'000'000, "m"}, {1'000'000'000, "s"},
        {1'000'000, "ms"},        {1'000, "us"},         {1, "ns"},
    };
    for (const auto& [size, name] : kUnits) {
        if (ns % size == 0) {
            return std::to_string(ns / size) + std::string(name);
        }
    }
    return std::to_string(ns) + "ns";
}

std::variant<uint64_t, std::string> parse_unsigned(std::string_view text, uint64_t min,
                                                   uint64_t max) {
    text = trim(text);
    const std::string range = "(" + std::to_string(min) + "-" + std::to_string(max) + ")";
    if (text.empty()) {
        return "empty value, expected a whole number " + range;
    }
    const bool negative = text.front() == '-';
    std::string_view digits = negative || text.front() == '+' ? text.substr(1) : text;
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit)) {
        return quote(text) + " is not a whole number " + range;
    }
    if (negative) {
        return quote(text) + " is negative " + range;
    }
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size() || value < min || value > max) {
        return quote(text) + " is out of range " + range;
    }
    return value;
}

std::optional<bool> parse_bool(std::string_view text) {
    const std::string lowered = to_lower(trim(text));
    if (lowered == "true" || lowered == "yes" || lowered == "on" || lowered == "1") {
        return true;
    }
    if (lowered == "false" || lowered == "no" || lowered == "off" || lowered == "0") {
        return false;
    }
    return std::nullopt;
}

std::optional<double> parse_finite_double(std::string_view text) {
    text = trim(text);
    if (!text.empty() && text.front() == '+') {
        text.remove_prefix(1);
    }
    if (text.empty()) {
        return std::nullopt;
    }
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
        return std::nullopt;
    }
    return value;
}

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> items;
    if (trim(text).empty()) {
        return items;
    }
    while (true) {
        const size_t comma = text.find(',');
        items.emplace_back(trim(text.substr(0, comma)));
        if (comma == std::string_view::npos) {
            break;
        }
        text.remove_prefix(comma + 1);
    }
    return items;
}

std::optional<std::string> check_regex(std::string_view pattern) {
    constexpr size_t kMaxPattern = 4096;
    if (pattern.size() > kMaxPattern) {
        return "regex longer than " + std::to_string(kMaxPattern) + " characters";
    }
    RE2::Options options;
    options.set_log_errors(false);
    const RE2 re(re2::StringPiece(pattern.data(), pattern.size()), options);
    if (!re.ok()) {
        return "invalid regex " + quote(pattern) + ": " + re.error();
    }
    return std::nullopt;
}

std::optional<std::string> check_endpoint_url(std::string_view url) {
    const auto rest = strip_http_scheme(url);
    if (!rest) {
        return quote(url) + " must start with http:// or https://";
    }
    for (const char c : url) {
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
            return quote(url) + " contains blanks or control characters";
        }
    }
    const auto authority = split_authority(*rest);
    if (!authority || authority->host.empty() || authority->host == "[]") {
        return quote(url) + " has no host";
    }
    if (authority->port) {
        const auto port = parse_unsigned(*authority->port, 1, 65535);
        if (std::holds_alternative<std::string>(port)) {
            return quote(url) + " has an invalid port (1-65535)";
        }
    }
    return std::nullopt;
}

std::optional<uint16_t> url_port(std::string_view url) {
    const auto rest = strip_http_scheme(url);
    if (!rest) {
        return std::nullopt;
    }
    const auto authority = split_authority(*rest);
    if (!authority || !authority->port) {
        return std::nullopt;
    }
    const auto port = parse_unsigned(*authority->port, 1, 65535);
    if (const auto* value = std::get_if<uint64_t>(&port)) {
        return static_cast<uint16_t>(*value);
    }
    return std::nullopt;
}

std::optional<std::string> check_route_pattern(std::string_view pattern) {
    constexpr size_t kMaxPattern = 1024;
    if (pattern.empty() || pattern.front() != '/') {
        return "route pattern " + quote(pattern) + " must start with '/'";
    }
    if (pattern.size() > kMaxPattern) {
        return "route pattern longer than " + std::to_string(kMaxPattern) + " characters";
    }
    bool in_placeholder = false;
    size_t name_length = 0;
    for (const char c : pattern) {
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
            return "route pattern " + quote(pattern) + " contains blanks or control characters";
        }
        if (c == '{') {
            if (in_placeholder) {
                return "route pattern " + quote(pattern) + " nests '{'";
            }
            in_placeholder = true;
            name_length = 0;
        } else if (c == '}') {
            if (!in_placeholder || name_length == 0) {
                return "route pattern " + quote(pattern) + " has an unmatched or empty '{}'";
            }
            in_placeholder = false;
        } else if (in_placeholder) {
            if (!is_name_char(c) && c != '-' && c != '.') {
                return "route pattern " + quote(pattern) + " has an invalid placeholder name";
            }
            ++name_length;
        }
    }
    if (in_placeholder) {
        return "route pattern " + quote(pattern) + " has an unclosed '{'";
    }
    return std::nullopt;
}

Expansion expand_variables(std::string_view text, const EnvLookup& getenv) {
    Expansion out;
    out.text.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        if (text.substr(i, 3) == "$${") {
            out.text += "${";
            i += 3;
            continue;
        }
        if (text.substr(i, 2) != "${") {
            out.text.push_back(text[i]);
            ++i;
            continue;
        }
        const size_t close = text.find('}', i + 2);
        if (close == std::string_view::npos) {
            out.error = "unterminated ${ in " + quote(text);
            return out;
        }
        std::string_view inner = text.substr(i + 2, close - i - 2);
        std::optional<std::string_view> fallback;
        const size_t separator = inner.find(":-");
        if (separator != std::string_view::npos) {
            fallback = inner.substr(separator + 2);
            inner = inner.substr(0, separator);
        }
        if (inner.empty() || !is_name_start(inner.front()) ||
            !std::all_of(inner.begin(), inner.end(), is_name_char)) {
            out.error = "invalid variable name " + quote(inner) + " in ${...}";
            return out;
        }
        const std::string name(inner);
        const char* value = getenv ? getenv(name.c_str()) : nullptr;
        if (value != nullptr && *value != '\0') {
            out.text += value;
        } else if (fallback) {
            out.text += *fallback;
        } else {
            out.unset.push_back(name);
        }
        i = close + 1;
    }
    return out;
}

std::optional<std::string> resource_attribute(std::string_view attributes, std::string_view key) {
    for (const std::string& item : split_list(attributes)) {
        const size_t equals = item.find('=');
        if (equals == std::string::npos) {
            continue;
        }
        if (trim(std::string_view(item).substr(0, equals)) == key) {
            return percent_decode(trim(std::string_view(item).substr(equals + 1)));
        }
    }
    return std::nullopt;
}

std::variant<std::map<std::string, std::string>, std::string> parse_otlp_headers(
    std::string_view text) {
    // RFC 9110 token characters: anything else cannot be a header name.
    const auto is_token_char = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    };
    constexpr size_t kMaxHeaders = 64;
    std::map<std::string, std::string> headers;
    for (const std::string& item : split_list(text)) {
        if (item.empty()) continue;
        const size_t equals = item.find('=');
        if (equals == std::string::npos) {
            return quote(item) + " is not key=value";
        }
        const std::string_view key = trim(std::string_view(item).substr(0, equals));
        if (key.empty() || !std::all_of(key.begin(), key.end(), is_token_char)) {
            return quote(key) + " is not an HTTP header name";
        }
        std::string value = percent_decode(trim(std::string_view(item).substr(equals + 1)));
        if (std::any_of(value.begin(), value.end(), [](char c) {
                const auto u = static_cast<unsigned char>(c);
                return (u < 0x20 && c != '\t') || u == 0x7f;
            })) {
            return "the value of " + quote(key) + " holds a control character";
        }
        if (headers.size() >= kMaxHeaders && headers.count(std::string(key)) == 0) {
            return "more than " + std::to_string(kMaxHeaders) + " headers";
        }
        headers[std::string(key)] = std::move(value);
    }
    return headers;
}

size_t edit_distance(std::string_view a, std::string_view b) {
    // Suggestions are for key names; longer text is not worth the quadratic cost.
    constexpr size_t kMaxLength = 80;
    if (a.size() > kMaxLength || b.size() > kMaxLength) {
        return std::max(a.size(), b.size());
    }
    std::vector<size_t> previous(b.size() + 1);
    std::vector<size_t> current(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) {
        previous[j] = j;
    }
    for (size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
        }
        std::swap(previous, current);
    }
    return previous[b.size()];
}

std::string quote(std::string_view text) {
    constexpr size_t kMaxShown = 40;
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "'";
    size_t shown = 0;
    for (const char c : text) {
        if (shown == kMaxShown) {
            out += "...";
            break;
        }
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte >= 0x7f) {
            out += "\\x";
            out.push_back(kHex[byte >> 4]);
            out.push_back(kHex[byte & 0xf]);
        } else {
            out.push_back(c);
        }
        ++shown;
    }
    out += "'";
    return out;
}

}  // namespace sonde::config::detail
