// Private helpers shared by the discovery parsers. Not part of the module's interface.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace sonde::discovery::detail {

inline bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

inline std::string_view trim_blanks(std::string_view s) {
    while (!s.empty() && is_blank(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_blank(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

// The whole of `s` must be digits of `base`: from_chars alone would accept a
// numeric prefix ("12abc") and we want such input rejected, not truncated.
// Unsigned targets make from_chars reject any sign.
template <typename T>
std::optional<T> parse_whole_unsigned(std::string_view s, int base = 10) {
    static_assert(std::is_unsigned_v<T>);
    if (s.empty()) {
        return std::nullopt;
    }
    T value{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
    if (ec != std::errc{} || end != s.data() + s.size()) {
        return std::nullopt;
    }
    return value;
}

// Splits off the next blank-separated token from `rest`; empty when none is left.
inline std::string_view next_token(std::string_view& rest) {
    size_t start = 0;
    while (start < rest.size() && is_blank(rest[start])) {
        ++start;
    }
    size_t end = start;
    while (end < rest.size() && !is_blank(rest[end])) {
        ++end;
    }
    std::string_view token = rest.substr(start, end - start);
    rest.remove_prefix(end);
    return token;
}

// Anonymous-inode style link targets: "socket:[123]", "net:[4026531833]".
inline std::optional<uint64_t> parse_kind_id_link(std::string_view link, std::string_view kind) {
    if (link.size() < kind.size() + 3 || link.substr(0, kind.size()) != kind) {
        return std::nullopt;
    }
    link.remove_prefix(kind.size());
    if (link.substr(0, 2) != ":[" || link.back() != ']') {
        return std::nullopt;
    }
    return parse_whole_unsigned<uint64_t>(link.substr(2, link.size() - 3));
}

}  // namespace sonde::discovery::detail
