// Arbitrary bytes as route options, patterns and request paths. Input layout:
// five option bytes (unmatched mode, ignore mode, cap, segment cardinality and
// wildcard char, tracked services), then lines: "P<pattern>", "I<ignored
// pattern>", anything else is a request path whose first byte picks one of a
// few services. Invalid options must come back as a one-line error; valid
// ones must never let a query into a route or a service past its route cap.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "pipeline/route_matcher.h"

using sonde::pipeline::IgnoreMode;
using sonde::pipeline::RouteDecision;
using sonde::pipeline::RouteMatcher;
using sonde::pipeline::RouteMatcherOptions;
using sonde::pipeline::UnmatchedMode;

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    constexpr size_t kHeader = 5;
    if (size < kHeader) {
        return 0;
    }
    RouteMatcherOptions options;
    options.unmatched = static_cast<UnmatchedMode>(data[0] % 6);  // 5 is invalid on purpose
    options.ignore_mode = static_cast<IgnoreMode>(data[1] % 3);
    options.max_path_segment_cardinality = data[3] % 8;  // 0 is invalid on purpose
    static const char* const kWildcards[] = {"*", "_", "-", "x", "", "/", "ab"};
    options.wildcard_char = kWildcards[(data[3] >> 3) % 7];
    options.max_tracked_services = 1 + data[4] % 4;

    std::vector<std::string_view> paths;
    std::string_view rest(reinterpret_cast<const char*>(data) + kHeader, size - kHeader);
    while (!rest.empty()) {
        const size_t newline = rest.find('\n');
        const std::string_view line = rest.substr(0, newline);
        rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
        if (!line.empty() && line[0] == 'P') {
            options.patterns.emplace_back(line.substr(1));
        } else if (!line.empty() && line[0] == 'I') {
            options.ignored_patterns.emplace_back(line.substr(1));
        } else {
            paths.push_back(line);
        }
    }
    // Mostly a cap the patterns fit in; sometimes one they do not.
    options.max_routes_per_service =
        (data[2] & 0x80) != 0 ? data[2] % 4 : options.patterns.size() + 1 + data[2] % 16;

    const std::set<std::string> pattern_texts(options.patterns.begin(), options.patterns.end());
    size_t longest_pattern = 0;
    for (const std::string& p : options.patterns) {
        longest_pattern = p.size() > longest_pattern ? p.size() : longest_pattern;
    }

    auto created = RouteMatcher::create(options);
    if (const auto* error = std::get_if<std::string>(&created)) {
        check(!error->empty() && error->find('\n') == std::string::npos);
        return 0;
    }
    RouteMatcher& matcher = std::get<RouteMatcher>(created);
    const size_t cap = options.max_routes_per_service;

    static const char* const kServices[] = {"a", "b", "c", "d", "e"};
    std::map<std::string, std::set<std::string>> labels;
    uint64_t overflows = 0;
    for (const std::string_view path : paths) {
        const std::string service = path.empty() ? "a" : kServices[uint8_t(path[0]) % 5];
        const RouteDecision decision = matcher.classify(service, path);
        const std::string_view route = decision.route;
        check(route.find_first_of("?#") == std::string_view::npos);
        check(route.size() <= 256 || route.size() <= longest_pattern);
        if (decision.ignore_in_metrics && decision.ignore_in_traces) {
            check(route.empty());
        }
        if (decision.overflow) {
            ++overflows;
            check(route == RouteMatcher::kOverflowRoute);
        } else if (decision.matched_pattern) {
            check(pattern_texts.count(std::string(route)) == 1);
        }
        if (!route.empty()) {
            labels[service].emplace(route);
        }
        check(labels[service].size() <= cap);
        check(matcher.distinct_routes(service) <= cap);
        check(matcher.segment_nodes(service) <= 4 * cap);
        check(matcher.tracked_services() <= options.max_tracked_services);
    }
    check(matcher.overflowed() == overflows);
    return 0;
}
