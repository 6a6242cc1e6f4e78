// Parsers for the value types configuration options use. Pure functions: text
// in, value or a short reason out (the caller adds key and location).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace sonde::config::detail {

// Go-style duration: "5s", "100ms", "1m30s", "1.5h"; units ns, us (µs), ms, s, m, h.
// Negative values and bare numbers ("5") are rejected.
std::variant<std::chrono::nanoseconds, std::string> parse_duration(std::string_view text);
// Inverse of parse_duration, with the largest unit that divides exactly: "90s", "100ms".
std::string format_duration(std::chrono::nanoseconds value);

// Decimal digits only; "out of range (min-max)" when outside the bounds.
std::variant<uint64_t, std::string> parse_unsigned(std::string_view text, uint64_t min,
                                                   uint64_t max);

// true/false, yes/no, on/off, 1/0 in any case.
std::optional<bool> parse_bool(std::string_view text);

std::optional<double> parse_finite_double(std::string_view text);

// Splits "a, b,c" on commas and trims blanks; an empty text is an empty list.
std::vector<std::string> split_list(std::string_view text);

std::string_view trim(std::string_view text);
std::string to_lower(std::string_view text);

// Compiles `pattern` with RE2; the reason when it does not compile.
std::optional<std::string> check_regex(std::string_view pattern);

// http:// or https:// URL with a host and an optional valid port.
std::optional<std::string> check_endpoint_url(std::string_view url);

// A route pattern: starts with '/', no blanks, `{name}` placeholders well formed.
std::optional<std::string> check_route_pattern(std::string_view pattern);

// Port number of an endpoint URL, if it names one.
std::optional<uint16_t> url_port(std::string_view url);

// `${VAR}` and `${VAR:-default}` replaced from the environment; `$${` is a
// literal `${`. A variable that is unset (or empty) without a default expands to
// the empty string and is listed in `unset`.
struct Expansion {
    std::string text;
    std::vector<std::string> unset;
    std::string error;  // non-empty: malformed reference, text is meaningless
};
Expansion expand_variables(std::string_view text, const EnvLookup& getenv);

// The value of `key` in an OTEL_RESOURCE_ATTRIBUTES list "k1=v1,k2=v2"
// (values percent-decoded), or nullopt when absent.
std::optional<std::string> resource_attribute(std::string_view attributes, std::string_view key);

// An OTEL_EXPORTER_OTLP_HEADERS list "k1=v1,k2=v2": keys are HTTP header
// names, values are percent-decoded and may not hold control characters (they
// become request headers). Empty text: no headers.
std::variant<std::map<std::string, std::string>, std::string> parse_otlp_headers(
    std::string_view text);

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);

// A user's text quoted for a message: at most 40 characters, control and
// non-ASCII bytes escaped, so a message always stays on one line.
std::string quote(std::string_view text);

}  // namespace sonde::config::detail
