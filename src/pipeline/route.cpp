#include "pipeline/route.h"

#include <cstddef>

namespace sonde::pipeline {

namespace {

// Routes become label values; a bound keeps one pathological URL from
// becoming a kilobyte of label in every series it touches.
constexpr size_t kMaxRouteLength = 256;
// No hand-written route word is this long; anything longer is a token,
// a blob or an attack, and keeping it verbatim would leak cardinality.
constexpr size_t kMaxKeptSegmentLength = 64;
// Below this, letters-and-digits words ("v1", "oauth2", "x86_64") are far
// more often API vocabulary than identifiers.
constexpr size_t kRandomLookingLength = 16;
constexpr size_t kHexIdMinLength = 8;
constexpr size_t kMinDigitsForDigitHeavy = 4;
constexpr size_t kMinDigitRunForDigitHeavy = 3;

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_hex_digit(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_letter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool all_hex(std::string_view s) {
    for (const char c : s) {
        if (!is_hex_digit(c)) {
            return false;
        }
    }
    return true;
}

// 8-4-4-4-12 hex groups, the canonical textual UUID.
bool is_dashed_uuid(std::string_view s) {
    if (s.size() != 36) {
        return false;
    }
    for (size_t i = 0; i < s.size(); ++i) {
        const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_position ? s[i] != '-' : !is_hex_digit(s[i])) {
            return false;
        }
    }
    return true;
}

struct CharCounts {
    size_t digits = 0;
    size_t letters = 0;
    size_t longest_digit_run = 0;
};

CharCounts count_chars(std::string_view s) {
    CharCounts counts;
    size_t run = 0;
    for (const char c : s) {
        if (is_digit(c)) {
            ++counts.digits;
            ++run;
            if (run > counts.longest_digit_run) {
                counts.longest_digit_run = run;
            }
        } else {
            run = 0;
            if (is_letter(c)) {
                ++counts.letters;
            }
        }
    }
    return counts;
}

// Whether a path segment names one instance rather than a kind of resource.
// The rules favour keeping words: a wrongly kept id costs a series per id
// (bounded later by the series cap), while a wrongly collapsed word merges
// two real routes, which nothing downstream can undo.
bool looks_like_identifier(std::string_view segment) {
    if (segment.empty()) {
        return false;
    }
    if (segment.size() > kMaxKeptSegmentLength) {
        return true;
    }
    const CharCounts counts = count_chars(segment);
    if (counts.digits == segment.size()) {
        return true;  // "42", "20240115"
    }
    if (is_dashed_uuid(segment)) {
        return true;
    }
    if (segment.size() >= kHexIdMinLength && all_hex(segment)) {
        // Plain hex words such as "deadbeef" or "facade" stay unless they have
        // the length of an undashed UUID, which is an id whatever it spells.
        if (counts.digits > 0 || segment.size() == 32) {
            return true;  // SHA digests, Mongo ObjectIds, undashed UUIDs
        }
    }
    if (segment.size() >= kRandomLookingLength && counts.digits > 0 && counts.letters > 0) {
        return true;  // opaque tokens: base64 ids, session keys, slugs with ids
    }
    // Digit-dominated segments such as dates ("2024-01-15"), order numbers
    // ("ORD-12345") or addresses ("10.0.0.1"). When letters are present, the
    // digit-run condition keeps versions and architectures ("v10.2.3",
    // "x86_64"); "h264" has too few digits to be considered at all.
    const size_t alnum = counts.digits + counts.letters;
    return counts.digits >= kMinDigitsForDigitHeavy && counts.digits * 2 >= alnum &&
           (counts.letters == 0 || counts.longest_digit_run >= kMinDigitRunForDigitHeavy);
}

bool starts_with_ignoring_case(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) {
        return false;
    }
    for (size_t i = 0; i < prefix.size(); ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (c != prefix[i]) {
            return false;
        }
    }
    return true;
}

// A proxy-style request target ("http://host:8080/x") is routed by its path;
// the authority is already in the server_address/server_port labels.
std::string_view strip_absolute_form(std::string_view path) {
    for (const std::string_view scheme :
         {std::string_view("http://"), std::string_view("https://")}) {
        if (starts_with_ignoring_case(path, scheme)) {
            const std::string_view rest = path.substr(scheme.size());
            const size_t slash = rest.find('/');
            return slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
        }
    }
    return path;
}

}  // namespace

std::string_view path_without_query(std::string_view target) {
    // Two memchr searches: find_first_of("?#") searches the set for every byte.
    const std::string_view before_query = target.substr(0, target.find('?'));
    return before_query.substr(0, before_query.find('#'));
}

std::string heuristic_route(std::string_view path) {
    std::string route;
    heuristic_route_into(path, route);
    return route;
}

std::string_view route_path(std::string_view target) {
    return strip_absolute_form(path_without_query(target));
}

void heuristic_route_into(std::string_view path, std::string& route) {
    path = route_path(path);
    if (path.empty()) {
        route.assign("/");
        return;
    }

    // Empty segments (from "//" or a trailing "/") are kept as they are:
    // servers differ on whether "/a//b" and "/a/b" are the same resource, so
    // the route does not decide for them.
    route.clear();
    route.reserve(path.size() < kMaxRouteLength ? path.size() : kMaxRouteLength + 1);
    size_t begin = 0;
    while (true) {
        const size_t slash = path.find('/', begin);
        const std::string_view segment =
            path.substr(begin, slash == std::string_view::npos ? slash : slash - begin);
        route.append(looks_like_identifier(segment) ? std::string_view("*") : segment);
        if (slash == std::string_view::npos) {
            break;
        }
        route.push_back('/');
        begin = slash + 1;
        // Stop copying early; the cut below only needs to see past the bound.
        if (route.size() > kMaxRouteLength) {
            break;
        }
    }

    if (route.size() > kMaxRouteLength) {
        // Cut at a segment boundary and mark the elided tail with "/*" so the
        // result still reads as a route and re-routing it is a no-op. Every
        // kept segment is at most kMaxKeptSegmentLength long, so a '/' exists
        // before the cut whenever the route starts with one; otherwise the
        // whole thing collapses.
        const size_t cut = route.rfind('/', kMaxRouteLength - 2);
        if (cut == std::string::npos) {
            route.assign("/*");
            return;
        }
        route.resize(cut);
        route.append("/*");
    }
}

}  // namespace sonde::pipeline
