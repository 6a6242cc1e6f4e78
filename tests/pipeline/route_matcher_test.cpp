#include "pipeline/route_matcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sonde::pipeline {
namespace {

RouteMatcher make(RouteMatcherOptions options) {
    auto created = RouteMatcher::create(std::move(options));
    if (auto* error = std::get_if<std::string>(&created)) {
        ADD_FAILURE() << "unexpected error: " << *error;
        return std::get<RouteMatcher>(RouteMatcher::create({}));
    }
    return std::move(std::get<RouteMatcher>(created));
}

std::string create_error(RouteMatcherOptions options) {
    auto created = RouteMatcher::create(std::move(options));
    if (auto* error = std::get_if<std::string>(&created)) {
        return *error;
    }
    return "";
}

RouteMatcherOptions with_patterns(std::vector<std::string> patterns,
                                  UnmatchedMode unmatched = UnmatchedMode::Unset) {
    RouteMatcherOptions options;
    options.patterns = std::move(patterns);
    options.unmatched = unmatched;
    return options;
}

std::string route_of(RouteMatcher& matcher, std::string_view path) {
    return std::string(matcher.classify("svc", path).route);
}

// Letters only, so the heuristic keeps every one of them verbatim.
std::string letters(uint64_t n) {
    std::string out;
    do {
        out.push_back(static_cast<char>('a' + n % 26));
        n /= 26;
    } while (n != 0);
    return out;
}

// ---- Acceptance 3 of issue 3, exactly as written.

TEST(RouteMatcherAcceptance, SeedPatternsWithHeuristicFallback) {
    RouteMatcher matcher =
        make(with_patterns({"/orders/{id}", "/users/{id}/cart"}, UnmatchedMode::Heuristic));
    const std::vector<std::pair<std::string, std::string>> expected = {
        {"/orders/123", "/orders/{id}"},
        {"/orders/987", "/orders/{id}"},
        {"/users/42/cart", "/users/{id}/cart"},
        {"/items/550e8400-e29b-41d4-a716-446655440000/reviews", "/items/*/reviews"},
        {"/health", "/health"},
    };
    std::set<std::string> routes;
    for (const auto& [path, route] : expected) {
        const RouteDecision decision = matcher.classify("checkout", path);
        EXPECT_EQ(decision.route, route) << path;
        EXPECT_FALSE(decision.ignore_in_metrics || decision.ignore_in_traces || decision.overflow);
        routes.emplace(decision.route);
    }
    EXPECT_EQ(routes, (std::set<std::string>{"/orders/{id}", "/users/{id}/cart", "/items/*/reviews",
                                             "/health"}));
    EXPECT_EQ(matcher.distinct_routes("checkout"), 4u);
    EXPECT_EQ(matcher.overflowed(), 0u);
}

// ---- Pattern syntax.

struct MatchCase {
    std::vector<std::string> patterns;
    std::string path;
    std::string route;  // "" = no pattern matches
};

class PatternMatching : public testing::TestWithParam<MatchCase> {};

TEST_P(PatternMatching, RouteIsThePatternText) {
    RouteMatcher matcher = make(with_patterns(GetParam().patterns));
    const RouteDecision decision = matcher.classify("svc", GetParam().path);
    EXPECT_EQ(decision.route, GetParam().route) << GetParam().path;
    EXPECT_EQ(decision.matched_pattern, !GetParam().route.empty()) << GetParam().path;
}

INSTANTIATE_TEST_SUITE_P(
    Table, PatternMatching,
    testing::Values(
        // {name} and :name (Beyla accepts both) match exactly one segment.
        MatchCase{{"/user/{id}"}, "/user/123", "/user/{id}"},
        MatchCase{{"/user/{id}"}, "/user/abc", "/user/{id}"},
        MatchCase{{"/user/{id}"}, "/user", ""}, MatchCase{{"/user/{id}"}, "/user/1/x", ""},
        MatchCase{{"/basic/:rnd"}, "/basic/xyz", "/basic/:rnd"},
        MatchCase{
            {"/user/{id}/basket/{product}"}, "/user/456/basket/3", "/user/{id}/basket/{product}"},
        MatchCase{{"/v1/{user-id}/{file.name}"}, "/v1/7/a.txt", "/v1/{user-id}/{file.name}"},
        // A middle "*" is one segment.
        MatchCase{{"/a/*/b"}, "/a/x/b", "/a/*/b"}, MatchCase{{"/a/*/b"}, "/a/x/y/b", ""},
        // A trailing "*" (or "**") matches the prefix itself and anything below.
        MatchCase{{"/user/*"}, "/user", "/user/*"}, MatchCase{{"/user/*"}, "/user/", "/user/*"},
        MatchCase{{"/user/*"}, "/user/123", "/user/*"},
        MatchCase{{"/user/*"}, "/user/123/basket/1", "/user/*"},
        MatchCase{{"/user/*"}, "/users", ""}, MatchCase{{"/user/*"}, "/", ""},
        MatchCase{{"/static/**"}, "/static/css/app.css", "/static/**"},
        MatchCase{{"/*"}, "/anything/at/all", "/*"}, MatchCase{{"/*"}, "/", "/*"},
        // One trailing slash is ignored on both sides, as in Beyla.
        MatchCase{{"/foo/bar/bae/"}, "/foo/bar/bae", "/foo/bar/bae/"},
        MatchCase{{"/foo/bar"}, "/foo/bar/", "/foo/bar"},
        MatchCase{{"/foo/{id}"}, "/foo/1234/", "/foo/{id}"},
        MatchCase{{"/foo/bar"}, "/foo/bar//", ""},
        // Root.
        MatchCase{{"/"}, "/", "/"}, MatchCase{{"/"}, "", "/"}, MatchCase{{"/"}, "/x", ""},
        // Query, fragment and absolute form are cut before matching.
        MatchCase{{"/orders/{id}"}, "/orders/9?expand=items", "/orders/{id}"},
        MatchCase{{"/orders/{id}"}, "/orders/9#frag", "/orders/{id}"},
        MatchCase{{"/search"}, "/search?q=/orders/1", "/search"},
        MatchCase{{"/orders/{id}"}, "http://shop:8080/orders/5", "/orders/{id}"},
        MatchCase{{"/"}, "HTTPS://shop", "/"},
        // Case-sensitive, no decoding, not a path at all.
        MatchCase{{"/health"}, "/Health", ""}, MatchCase{{"/a b"}, "/a%20b", ""},
        MatchCase{{"/*"}, "*", ""},
        // Empty segments are segments.
        MatchCase{{"/a/{x}/b"}, "/a//b", "/a/{x}/b"}));

// ---- Specificity.

TEST(RouteMatcherSpecificity, LiteralBeatsParameterWhateverTheOrder) {
    for (const auto& patterns : {std::vector<std::string>{"/users/{id}", "/users/me"},
                                 std::vector<std::string>{"/users/me", "/users/{id}"}}) {
        RouteMatcher matcher = make(with_patterns(patterns));
        EXPECT_EQ(route_of(matcher, "/users/me"), "/users/me");
        EXPECT_EQ(route_of(matcher, "/users/42"), "/users/{id}");
    }
}

TEST(RouteMatcherSpecificity, ParameterBeatsPrefixWildcard) {
    RouteMatcher matcher = make(with_patterns({"/a/*", "/a/{id}"}));
    EXPECT_EQ(route_of(matcher, "/a/x"), "/a/{id}");
    EXPECT_EQ(route_of(matcher, "/a/x/y"), "/a/*");
    EXPECT_EQ(route_of(matcher, "/a"), "/a/*");
}

TEST(RouteMatcherSpecificity, ExactBeatsPrefixAndLongerPrefixWins) {
    RouteMatcher matcher = make(with_patterns({"/*", "/api/*", "/api", "/api/v1/*"}));
    EXPECT_EQ(route_of(matcher, "/api"), "/api");
    EXPECT_EQ(route_of(matcher, "/api/v2/x"), "/api/*");
    EXPECT_EQ(route_of(matcher, "/api/v1"), "/api/v1/*");
    EXPECT_EQ(route_of(matcher, "/api/v1/x"), "/api/v1/*");
    EXPECT_EQ(route_of(matcher, "/other"), "/*");
}

TEST(RouteMatcherSpecificity, LeftmostDifferenceDecides) {
    RouteMatcher matcher = make(with_patterns({"/{tenant}/orders/{id}", "/acme/{kind}/{id}"}));
    EXPECT_EQ(route_of(matcher, "/acme/orders/1"), "/acme/{kind}/{id}");
    EXPECT_EQ(route_of(matcher, "/other/orders/1"), "/{tenant}/orders/{id}");
}

TEST(RouteMatcherSpecificity, EqualRankFirstDeclaredWins) {
    RouteMatcher matcher = make(with_patterns({"/items/{id}", "/items/:item", "/items/*/"}));
    EXPECT_EQ(route_of(matcher, "/items/1"), "/items/{id}");
    RouteMatcher reversed = make(with_patterns({"/items/:item", "/items/{id}"}));
    EXPECT_EQ(route_of(reversed, "/items/1"), "/items/:item");
}

TEST(RouteMatcherSpecificity, BacktracksWhereBeylaWouldNot) {
    // Beyla's trie follows the literal "bar" and gives up; Sonde keeps looking.
    RouteMatcher matcher = make(with_patterns({"/foo/bar", "/foo/{id}/push"}));
    EXPECT_EQ(route_of(matcher, "/foo/bar/push"), "/foo/{id}/push");
    EXPECT_EQ(route_of(matcher, "/foo/bar"), "/foo/bar");
}

TEST(RouteMatcherSpecificity, BacktracksPastALiteralDeadEnd) {
    RouteMatcher matcher = make(with_patterns({"/{a}/b/c", "/x/{b}/d"}));
    EXPECT_EQ(route_of(matcher, "/x/b/d"), "/x/{b}/d");
    EXPECT_EQ(route_of(matcher, "/x/b/c"), "/{a}/b/c");
    EXPECT_EQ(route_of(matcher, "/y/b/c"), "/{a}/b/c");
    // A literal first segment outranks a parameter there, even as a prefix.
    RouteMatcher with_prefix = make(with_patterns({"/{a}/b/c", "/x/{b}/d", "/x/*"}));
    EXPECT_EQ(route_of(with_prefix, "/x/b/c"), "/x/*");
    EXPECT_EQ(route_of(with_prefix, "/x/b/d"), "/x/{b}/d");
}

// The rule as the header states it, applied by brute force.
std::string reference_route(const std::vector<std::string>& patterns, const std::string& path) {
    const auto split = [](std::string_view text) {
        std::vector<std::string> out;
        std::string_view body = text.substr(1);
        if (body.empty()) {
            return out;
        }
        if (body.back() == '/') {
            body.remove_suffix(1);
        }
        size_t begin = 0;
        while (true) {
            const size_t slash = body.find('/', begin);
            out.emplace_back(body.substr(begin, slash - begin));
            if (slash == std::string_view::npos) {
                return out;
            }
            begin = slash + 1;
        }
    };
    const std::vector<std::string> segments = split(path);
    std::string best;
    std::vector<int> best_ranks;
    for (const std::string& pattern : patterns) {
        std::vector<std::string> parts = split(pattern);
        const bool prefix = !parts.empty() && parts.back() == "*";
        if (prefix) {
            parts.pop_back();
        }
        if (prefix ? parts.size() > segments.size() : parts.size() != segments.size()) {
            continue;
        }
        std::vector<int> ranks;
        bool match = true;
        for (size_t i = 0; i < parts.size() && match; ++i) {
            const bool parameter = parts[i] == "*" || parts[i][0] == '{';
            ranks.push_back(parameter ? 1 : 0);
            match = parameter || parts[i] == segments[i];
        }
        if (prefix) {
            ranks.push_back(2);
        }
        if (match && (best.empty() || ranks < best_ranks)) {
            best = pattern;
            best_ranks = ranks;
        }
    }
    return best;
}

TEST(RouteMatcherSpecificity, AgreesWithBruteForceOnRandomPatterns) {
    std::mt19937 rng(99);
    const std::vector<std::string> pattern_parts = {"a", "b", "{p}", "{q}", "*"};
    const std::vector<std::string> path_parts = {"a", "b", "c"};
    for (int round = 0; round < 300; ++round) {
        std::vector<std::string> patterns;
        for (size_t n = rng() % 12 + 1; n > 0; --n) {
            std::string pattern;
            for (size_t depth = rng() % 4; depth > 0; --depth) {
                pattern += "/" + pattern_parts[rng() % pattern_parts.size()];
            }
            if (pattern.empty() || rng() % 4 == 0) {
                pattern += "/*";
            }
            patterns.push_back(pattern);
        }
        RouteMatcherOptions options = with_patterns(patterns);
        options.max_routes_per_service = 100;
        RouteMatcher matcher = make(std::move(options));
        for (int k = 0; k < 40; ++k) {
            std::string path;
            for (size_t depth = rng() % 5; depth > 0; --depth) {
                path += "/" + path_parts[rng() % path_parts.size()];
            }
            path += path.empty() || rng() % 5 == 0 ? "/" : "";
            ASSERT_EQ(route_of(matcher, path), reference_route(patterns, path))
                << path << " with " << testing::PrintToString(patterns);
        }
    }
}

// ---- Unmatched modes.

TEST(RouteMatcherUnmatched, UnsetLeavesNoRoute) {
    RouteMatcher matcher = make(with_patterns({"/orders/{id}"}, UnmatchedMode::Unset));
    const RouteDecision decision = matcher.classify("svc", "/items/1");
    EXPECT_TRUE(decision.route.empty());
    EXPECT_FALSE(decision.matched_pattern);
    EXPECT_EQ(route_of(matcher, "/orders/1"), "/orders/{id}");
    EXPECT_EQ(matcher.distinct_routes("svc"), 1u);  // an unset route takes no slot
}

TEST(RouteMatcherUnmatched, PathCopiesThePathWithoutQuery) {
    RouteMatcher matcher = make(with_patterns({}, UnmatchedMode::Path));
    EXPECT_EQ(route_of(matcher, "/items/1?x=1#y"), "/items/1");
    EXPECT_EQ(route_of(matcher, "http://h/items/2"), "/items/2");
    EXPECT_EQ(route_of(matcher, ""), "/");
    EXPECT_EQ(route_of(matcher, "*"), "*");
}

TEST(RouteMatcherUnmatched, PathIsBoundedAtASegmentBoundary) {
    RouteMatcher matcher = make(with_patterns({}, UnmatchedMode::Path));
    std::string path;
    for (int i = 0; i < 100; ++i) {
        path += "/segment";
    }
    const std::string route = route_of(matcher, path);
    EXPECT_LE(route.size(), 256u);
    EXPECT_EQ(route.substr(route.size() - 2), "/*");
    EXPECT_EQ(path.compare(0, route.size() - 2, route, 0, route.size() - 2), 0);
    EXPECT_EQ(route_of(matcher, "/" + std::string(1000, 'a')), "/*");
}

TEST(RouteMatcherUnmatched, WildcardIsDoubleStar) {
    RouteMatcher matcher = make(with_patterns({"/orders/{id}"}, UnmatchedMode::Wildcard));
    EXPECT_EQ(route_of(matcher, "/items/1"), "/**");
    EXPECT_EQ(route_of(matcher, "/health"), "/**");
    EXPECT_EQ(route_of(matcher, "/orders/1"), "/orders/{id}");
}

TEST(RouteMatcherUnmatched, HeuristicUsesTheWildcardChar) {
    RouteMatcherOptions options = with_patterns({"/keep/*"}, UnmatchedMode::Heuristic);
    options.wildcard_char = "_";
    RouteMatcher matcher = make(std::move(options));
    EXPECT_EQ(route_of(matcher, "/users/42/orders/7"), "/users/_/orders/_");
    EXPECT_EQ(route_of(matcher, "/document/d/C2fMkAGb3E_aivhFyd5EpaRafP123uGWbmHfG/edit"),
              "/document/d/_/edit");
    EXPECT_EQ(route_of(matcher, "/keep/1"), "/keep/*");  // a pattern is used as written
}

TEST(RouteMatcherUnmatched, LowCardinalityFollowsBeylasExample) {
    // https://grafana.com/docs/beyla/next/configure/routes-decorator/ with
    // max_path_segment_cardinality=3.
    RouteMatcherOptions options = with_patterns({}, UnmatchedMode::LowCardinality);
    options.max_path_segment_cardinality = 3;
    RouteMatcher matcher = make(std::move(options));
    EXPECT_EQ(route_of(matcher, "/api/users/alice"), "/api/users/alice");
    EXPECT_EQ(route_of(matcher, "/api/users/bob"), "/api/users/bob");
    EXPECT_EQ(route_of(matcher, "/api/users/carol"), "/api/users/carol");
    EXPECT_EQ(route_of(matcher, "/api/users/dave"), "/api/users/*");
    EXPECT_EQ(route_of(matcher, "/api/users/eve"), "/api/users/*");
    EXPECT_EQ(route_of(matcher, "/api/users/alice"), "/api/users/*");  // stays collapsed
    EXPECT_EQ(route_of(matcher, "/api/users/bob/posts"), "/api/users/*/posts");
    // Other levels and other services learn on their own.
    EXPECT_EQ(route_of(matcher, "/api/teams/red"), "/api/teams/red");
    EXPECT_EQ(matcher.classify("other", "/api/users/dave").route, "/api/users/dave");
}

TEST(RouteMatcherUnmatched, LowCardinalityStartsFromTheHeuristic) {
    RouteMatcherOptions options = with_patterns({}, UnmatchedMode::LowCardinality);
    options.wildcard_char = "-";
    options.max_path_segment_cardinality = 2;
    RouteMatcher matcher = make(std::move(options));
    EXPECT_EQ(route_of(matcher, "/orders/1"), "/orders/-");
    EXPECT_EQ(route_of(matcher, "/orders/2"), "/orders/-");  // one "*" child, not two
    EXPECT_EQ(route_of(matcher, "/a"), "/a");
    EXPECT_EQ(route_of(matcher, "/b"), "/-");  // root now has orders, a: b is the third
    EXPECT_EQ(route_of(matcher, "/"), "/");
    EXPECT_EQ(route_of(matcher, "*"), "*");
}

TEST(RouteMatcherUnmatched, LowCardinalityRoutesStayBounded) {
    RouteMatcherOptions options = with_patterns({}, UnmatchedMode::LowCardinality);
    options.max_routes_per_service = 3;  // 12 trie nodes
    RouteMatcher matcher = make(std::move(options));
    EXPECT_EQ(route_of(matcher, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n"), "/a/b/c/d/e/f/g/h/i/j/k/l/*/*");
    EXPECT_EQ(matcher.segment_nodes("svc"), 12u);
    // Past the node budget every empty segment becomes "*", doubling the
    // length; the route is still cut to 256.
    const std::string route = route_of(matcher, std::string(255, '/'));
    EXPECT_LE(route.size(), 256u);
    EXPECT_EQ(route.substr(0, 4), "/*/*");
    EXPECT_EQ(matcher.segment_nodes("svc"), 12u);
}

// ---- Ignored patterns and ignore_mode.

struct IgnoreCase {
    IgnoreMode mode;
    bool metrics;
    bool traces;
};

class IgnoredPatterns : public testing::TestWithParam<IgnoreCase> {};

TEST_P(IgnoredPatterns, DropOnlyTheConfiguredSignals) {
    RouteMatcherOptions options = with_patterns({"/orders/{id}"}, UnmatchedMode::Heuristic);
    options.ignored_patterns = {"/health", "/v1/*", "/probe/{kind}"};
    options.ignore_mode = GetParam().mode;
    RouteMatcher matcher = make(std::move(options));
    for (const std::string path :
         {"/health", "/health?full=1", "/v1", "/v1/x/y", "/probe/ready", "http://h/health/"}) {
        const RouteDecision decision = matcher.classify("svc", path);
        EXPECT_EQ(decision.ignore_in_metrics, GetParam().metrics) << path;
        EXPECT_EQ(decision.ignore_in_traces, GetParam().traces) << path;
        if (GetParam().metrics && GetParam().traces) {
            EXPECT_TRUE(decision.route.empty()) << path;
        } else {
            EXPECT_FALSE(decision.route.empty()) << path;  // the kept signal needs its route
        }
    }
    for (const std::string path : {"/healthz", "/v10/x", "/probe/a/b", "/orders/1"}) {
        const RouteDecision decision = matcher.classify("svc", path);
        EXPECT_FALSE(decision.ignore_in_metrics || decision.ignore_in_traces) << path;
        EXPECT_FALSE(decision.route.empty()) << path;
    }
    EXPECT_EQ(route_of(matcher, "/orders/1"), "/orders/{id}");
}

INSTANTIATE_TEST_SUITE_P(Modes, IgnoredPatterns,
                         testing::Values(IgnoreCase{IgnoreMode::All, true, true},
                                         IgnoreCase{IgnoreMode::Metrics, true, false},
                                         IgnoreCase{IgnoreMode::Traces, false, true}));

TEST(RouteMatcherIgnore, FullyIgnoredRequestsTakeNoSlot) {
    RouteMatcherOptions options = with_patterns({}, UnmatchedMode::Path);
    options.ignored_patterns = {"/*"};
    RouteMatcher matcher = make(std::move(options));
    for (int i = 0; i < 1000; ++i) {
        matcher.classify("svc", "/" + std::to_string(i));
    }
    EXPECT_EQ(matcher.distinct_routes("svc"), 0u);
    EXPECT_EQ(matcher.tracked_services(), 0u);
}

// ---- Queries never reach a route.

TEST(RouteMatcherQuery, NoModeLetsAQueryThrough) {
    std::mt19937 rng(7);
    const std::string alphabet = "/ab09-_.?#=&%xyzXYZ";
    std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
    std::uniform_int_distribution<size_t> length(0, 80);
    for (const UnmatchedMode mode :
         {UnmatchedMode::Path, UnmatchedMode::Wildcard, UnmatchedMode::Heuristic,
          UnmatchedMode::LowCardinality, UnmatchedMode::Unset}) {
        RouteMatcher matcher = make(with_patterns({"/a/{x}", "/b/*"}, mode));
        for (int i = 0; i < 2000; ++i) {
            std::string path = "/";
            const size_t n = length(rng);
            for (size_t k = 0; k < n; ++k) {
                path += alphabet[pick(rng)];
            }
            const RouteDecision decision = matcher.classify("svc", path);
            ASSERT_EQ(decision.route.find_first_of("?#"), std::string_view::npos)
                << to_string(mode) << " " << path;
        }
        EXPECT_EQ(route_of(matcher, "/a/1?secret=token").find("secret"), std::string::npos);
    }
}

// ---- Validation.

struct BadPattern {
    std::string pattern;
    std::string message;  // a fragment of the expected error
};

class InvalidPatterns : public testing::TestWithParam<BadPattern> {};

TEST_P(InvalidPatterns, RejectedWithAMessageNamingThePattern) {
    const std::string error = create_error(with_patterns({"/ok", GetParam().pattern}));
    EXPECT_NE(error.find("routes.patterns[1]"), std::string::npos) << error;
    EXPECT_NE(error.find(GetParam().message), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;

    RouteMatcherOptions ignored;
    ignored.ignored_patterns = {GetParam().pattern};
    const std::string ignored_error = create_error(std::move(ignored));
    EXPECT_NE(ignored_error.find("routes.ignored_patterns[0]"), std::string::npos) << ignored_error;
}

INSTANTIATE_TEST_SUITE_P(
    Table, InvalidPatterns,
    testing::Values(BadPattern{"", "is empty"}, BadPattern{"orders/{id}", "must start with '/'"},
                    BadPattern{"/orders/{id", "unbalanced braces in segment \"{id\""},
                    BadPattern{"/orders/id}", "unbalanced braces"},
                    BadPattern{"/orders/}id{", "unbalanced braces"},
                    BadPattern{"/orders/{}", "empty parameter name"},
                    BadPattern{"/orders/:", "empty parameter name"},
                    BadPattern{"/orders/{a b}", "parameter name \"a b\""},
                    BadPattern{"/orders/{id:[0-9]+}", "parameter name"},
                    BadPattern{"/v1/{name}:cancel", "must be a whole segment"},
                    BadPattern{"/x/{a}{b}", "must be a whole segment"},
                    BadPattern{"/static/*.js", "'*' must be a whole segment"},
                    BadPattern{"/a/**/b", "'**' is only allowed as the last segment"},
                    BadPattern{"/search?q={q}", "contains '?' or '#'"},
                    BadPattern{"/page#top", "contains '?' or '#'"},
                    BadPattern{std::string("/a\nb"), "control character"}));

TEST(RouteMatcherValidation, ErrorsQuoteUnprintableBytesAndLongPatterns) {
    const std::string error = create_error(with_patterns({std::string("x\x01\xff", 3)}));
    EXPECT_NE(error.find("\"x\\x01\\xff\""), std::string::npos) << error;
    const std::string long_error = create_error(with_patterns({"/{" + std::string(500, 'a')}));
    EXPECT_LT(long_error.size(), 250u) << long_error;
}

TEST(RouteMatcherValidation, OptionsOutsideTheirRangeAreRejected) {
    RouteMatcherOptions options;
    options.wildcard_char = "";
    EXPECT_NE(create_error(options).find("routes.wildcard_char"), std::string::npos);
    options.wildcard_char = "**";
    EXPECT_NE(create_error(options).find("single character"), std::string::npos);
    options.wildcard_char = "/";
    EXPECT_NE(create_error(options).find("routes.wildcard_char"), std::string::npos);
    options.wildcard_char = "*";
    EXPECT_EQ(create_error(options), "");

    options.max_path_segment_cardinality = 0;
    EXPECT_NE(create_error(options).find("max_path_segment_cardinality"), std::string::npos);
    options.max_path_segment_cardinality = 10;
    options.max_tracked_services = 0;
    EXPECT_NE(create_error(options).find("max_tracked_services"), std::string::npos);
    options.max_tracked_services = 1;

    options.patterns = {"/a", "/b", "/a"};  // two distinct
    options.max_routes_per_service = 2;
    EXPECT_NE(create_error(options).find("routes.max_routes_per_service (2) must exceed"),
              std::string::npos);
    options.max_routes_per_service = 3;
    EXPECT_EQ(create_error(options), "");
    options.max_routes_per_service = 0;
    options.patterns.clear();
    EXPECT_NE(create_error(options).find("max_routes_per_service"), std::string::npos);

    options.max_routes_per_service = 300;
    options.unmatched = static_cast<UnmatchedMode>(99);
    EXPECT_NE(create_error(options).find("routes.unmatched"), std::string::npos);
    options.unmatched = UnmatchedMode::Heuristic;
    options.ignore_mode = static_cast<IgnoreMode>(99);
    EXPECT_NE(create_error(options).find("routes.ignore_mode"), std::string::npos);
}

TEST(RouteMatcherValidation, DefaultsAreBeylas) {
    const RouteMatcherOptions options;
    EXPECT_TRUE(options.patterns.empty());
    EXPECT_TRUE(options.ignored_patterns.empty());
    EXPECT_EQ(options.ignore_mode, IgnoreMode::All);
    EXPECT_EQ(options.unmatched, UnmatchedMode::Heuristic);
    EXPECT_EQ(options.wildcard_char, "*");
    EXPECT_EQ(options.max_path_segment_cardinality, 10u);
}

TEST(RouteMatcherValidation, ModeNamesRoundTrip) {
    for (const std::string_view name :
         {"unset", "path", "wildcard", "heuristic", "low-cardinality"}) {
        ASSERT_TRUE(parse_unmatched_mode(name).has_value()) << name;
        EXPECT_EQ(to_string(*parse_unmatched_mode(name)), name);
    }
    for (const std::string_view name : {"metrics", "traces", "all"}) {
        ASSERT_TRUE(parse_ignore_mode(name).has_value()) << name;
        EXPECT_EQ(to_string(*parse_ignore_mode(name)), name);
    }
    EXPECT_FALSE(parse_unmatched_mode("Heuristic").has_value());
    EXPECT_FALSE(parse_unmatched_mode("low_cardinality").has_value());
    EXPECT_FALSE(parse_ignore_mode("").has_value());
}

// ---- The per-service cap (acceptance 4 in unit form).

class RouteCap : public testing::TestWithParam<UnmatchedMode> {};

TEST_P(RouteCap, HundredThousandUniquePathsStayUnderTheCap) {
    RouteMatcherOptions options = with_patterns({"/orders/{id}", "/health"}, GetParam());
    options.max_routes_per_service = 300;
    RouteMatcher matcher = make(std::move(options));
    std::mt19937_64 rng(42);
    std::set<std::string> labels;
    uint64_t overflow_decisions = 0;
    constexpr uint64_t kRequests = 100000;
    for (uint64_t i = 0; i < kRequests; ++i) {
        // Unique, word-like (so the heuristic keeps them), 1 to 4 segments deep.
        std::string path = "/" + letters(i);
        for (uint64_t depth = rng() % 4; depth > 0; --depth) {
            path += "/" + letters(rng() % 5000);
        }
        path += "?page=" + std::to_string(i);
        const RouteDecision decision = matcher.classify("svc", path);
        overflow_decisions += decision.overflow ? 1 : 0;
        if (!decision.route.empty()) {
            labels.emplace(decision.route);
        }
        if (decision.overflow) {
            ASSERT_EQ(decision.route, RouteMatcher::kOverflowRoute);
        }
    }
    EXPECT_LE(labels.size(), 300u);
    EXPECT_EQ(matcher.distinct_routes("svc"), labels.size());
    EXPECT_EQ(matcher.overflowed(), overflow_decisions);
    if (GetParam() == UnmatchedMode::Path || GetParam() == UnmatchedMode::Heuristic) {
        // Every path is new: all but the 297 unmatched slots overflow.
        EXPECT_EQ(overflow_decisions, kRequests - (300 - 1 - 2));
        EXPECT_EQ(labels.size(), 298u);  // 297 + the overflow route
    }
    EXPECT_LE(matcher.segment_nodes("svc"), 4u * 300u);

    // Configured routes kept their slots through the flood.
    EXPECT_EQ(route_of(matcher, "/orders/1"), "/orders/{id}");
    EXPECT_EQ(route_of(matcher, "/health"), "/health");
    EXPECT_LE(matcher.distinct_routes("svc"), 300u);
}

INSTANTIATE_TEST_SUITE_P(Modes, RouteCap,
                         testing::Values(UnmatchedMode::Path, UnmatchedMode::Wildcard,
                                         UnmatchedMode::Heuristic, UnmatchedMode::LowCardinality),
                         [](const auto& info) {
                             std::string name(to_string(info.param));
                             name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                             return name;
                         });

TEST(RouteCapDetails, KnownRoutesStillResolveAfterOverflow) {
    RouteMatcherOptions options = with_patterns({}, UnmatchedMode::Path);
    options.max_routes_per_service = 4;
    RouteMatcher matcher = make(std::move(options));
    EXPECT_EQ(route_of(matcher, "/a"), "/a");
    EXPECT_EQ(route_of(matcher, "/b"), "/b");
    EXPECT_EQ(route_of(matcher, "/c"), "/c");
    const RouteDecision overflow = matcher.classify("svc", "/d");
    EXPECT_TRUE(overflow.overflow);
    EXPECT_EQ(overflow.route, "/**overflow**");
    EXPECT_EQ(route_of(matcher, "/b?again"), "/b");
    EXPECT_EQ(matcher.overflowed(), 1u);
    EXPECT_EQ(matcher.distinct_routes("svc"), 4u);
    // The cap is per service.
    EXPECT_EQ(matcher.classify("other", "/d").route, "/d");
}

TEST(RouteCapDetails, CapOfOneSendsEverythingToOverflow) {
    RouteMatcherOptions options = with_patterns({}, UnmatchedMode::Wildcard);
    options.max_routes_per_service = 1;
    RouteMatcher matcher = make(std::move(options));
    EXPECT_EQ(route_of(matcher, "/a"), RouteMatcher::kOverflowRoute);
    EXPECT_EQ(matcher.distinct_routes("svc"), 1u);
}

TEST(RouteCapDetails, ServicesBeyondTheLimitShareOneCappedSet) {
    RouteMatcherOptions options = with_patterns({}, UnmatchedMode::Path);
    options.max_tracked_services = 3;
    options.max_routes_per_service = 10;
    RouteMatcher matcher = make(std::move(options));
    for (int s = 0; s < 50; ++s) {
        for (int r = 0; r < 20; ++r) {
            matcher.classify("svc" + std::to_string(s), "/r" + std::to_string(r));
        }
    }
    EXPECT_EQ(matcher.tracked_services(), 3u);
    EXPECT_EQ(matcher.shared_service_requests(), 47u * 20u);
    EXPECT_EQ(matcher.distinct_routes("svc0"), 10u);
    EXPECT_EQ(matcher.distinct_routes("svc49"), 10u);  // the shared set
    EXPECT_EQ(matcher.distinct_routes("never-seen"), 10u);
}

TEST(RouteCapDetails, LowCardinalityTrieStaysWithinItsNodeBudget) {
    RouteMatcherOptions options = with_patterns({}, UnmatchedMode::LowCardinality);
    options.max_routes_per_service = 20;
    options.max_path_segment_cardinality = 1000;  // let the trie, not collapsing, bound it
    RouteMatcher matcher = make(std::move(options));
    for (uint64_t i = 0; i < 5000; ++i) {
        const std::string path = "/" + letters(i) + "/" + letters(i * 7) + "/" + letters(i * 13);
        const RouteDecision decision = matcher.classify("svc", path);
        ASSERT_FALSE(decision.route.empty());
    }
    EXPECT_LE(matcher.segment_nodes("svc"), 80u);
    EXPECT_LE(matcher.distinct_routes("svc"), 20u);
}

TEST(RouteCapDetails, RouteViewsOutliveLaterCallsAndMoves) {
    RouteMatcher matcher = make(with_patterns({"/orders/{id}"}, UnmatchedMode::Heuristic));
    const std::string_view pattern_route = matcher.classify("svc", "/orders/1").route;
    const std::string_view heuristic_route_view = matcher.classify("svc", "/items/2").route;
    for (int i = 0; i < 1000; ++i) {
        matcher.classify("svc" + std::to_string(i % 7), "/w" + letters(i));
    }
    RouteMatcher moved = std::move(matcher);
    moved.classify("svc", "/more");
    EXPECT_EQ(pattern_route, "/orders/{id}");
    EXPECT_EQ(heuristic_route_view, "/items/*");
}

// ---- RPC methods: bounded, never rewritten.

TEST(RouteMatcherRpc, MethodsAreKeptVerbatimWhateverTheUnmatchedMode) {
    const std::vector<std::string> methods = {
        "/helloworld.Greeter/SayHello",
        "/grpc.health.v1.Health/Check",
        // Would be wildcarded as a path: a long hex segment, a numeric one.
        "/pkg.v1.Store/Get0123456789abcdef0123456789abcdef",
        "/svc.Numbers/12345",
    };
    for (const UnmatchedMode mode :
         {UnmatchedMode::Unset, UnmatchedMode::Path, UnmatchedMode::Wildcard,
          UnmatchedMode::Heuristic, UnmatchedMode::LowCardinality}) {
        // A pattern that would match the method as a path must not rewrite it either.
        RouteMatcher matcher = make(with_patterns({"/helloworld.Greeter/{method}"}, mode));
        for (const std::string& method : methods) {
            const RouteDecision decision = matcher.classify_rpc("svc", method);
            EXPECT_EQ(decision.route, method) << to_string(mode);
            EXPECT_FALSE(decision.matched_pattern || decision.overflow ||
                         decision.ignore_in_metrics || decision.ignore_in_traces);
        }
        EXPECT_EQ(matcher.segment_nodes("svc"), 0u);  // the low-cardinality trie is for paths
    }
}

TEST(RouteMatcherRpc, IgnoredPatternsApplyToMethods) {
    RouteMatcherOptions options = with_patterns({}, UnmatchedMode::Heuristic);
    options.ignored_patterns = {"/grpc.health.v1.Health/*"};
    options.ignore_mode = IgnoreMode::All;
    RouteMatcher matcher = make(std::move(options));
    const RouteDecision health = matcher.classify_rpc("svc", "/grpc.health.v1.Health/Check");
    EXPECT_TRUE(health.ignore_in_metrics && health.ignore_in_traces);
    EXPECT_TRUE(health.route.empty());
    EXPECT_EQ(matcher.distinct_routes("svc"), 0u);
    EXPECT_EQ(matcher.classify_rpc("svc", "/helloworld.Greeter/SayHello").route,
              "/helloworld.Greeter/SayHello");
}

TEST(RouteMatcherRpc, MethodsShareTheServiceCapAndOverflowToOther) {
    RouteMatcherOptions options = with_patterns({}, UnmatchedMode::Path);
    options.max_routes_per_service = 4;  // three values, then the overflow
    RouteMatcher matcher = make(std::move(options));
    EXPECT_EQ(route_of(matcher, "/http/route"), "/http/route");
    EXPECT_EQ(matcher.classify_rpc("svc", "/a.S/One").route, "/a.S/One");
    EXPECT_EQ(matcher.classify_rpc("svc", "/a.S/Two").route, "/a.S/Two");
    const RouteDecision third = matcher.classify_rpc("svc", "/a.S/Three");
    EXPECT_TRUE(third.overflow);
    EXPECT_EQ(third.route, "_OTHER");
    // An HTTP path past the cap still gets the HTTP overflow route.
    EXPECT_EQ(route_of(matcher, "/another"), RouteMatcher::kOverflowRoute);
    // Known methods keep resolving; the cap is per service.
    EXPECT_EQ(matcher.classify_rpc("svc", "/a.S/One").route, "/a.S/One");
    EXPECT_EQ(matcher.classify_rpc("other", "/a.S/Three").route, "/a.S/Three");
    EXPECT_EQ(matcher.overflowed(), 2u);
}

TEST(RouteMatcherRpc, FloodOfUniqueMethodsStaysUnderTheCap) {
    RouteMatcherOptions options;
    options.max_routes_per_service = 50;
    RouteMatcher matcher = make(std::move(options));
    std::set<std::string> values;
    for (uint64_t i = 0; i < 10000; ++i) {
        values.emplace(matcher.classify_rpc("svc", "/scan.Svc/" + letters(i)).route);
    }
    EXPECT_EQ(values.size(), 50u);  // 49 methods and _OTHER
    EXPECT_EQ(values.count("_OTHER"), 1u);
    EXPECT_EQ(matcher.distinct_routes("svc"), 50u);
}

TEST(RouteMatcherRpc, UnknownMethodHasNoRouteAndTakesNoSlot) {
    RouteMatcher matcher = make(RouteMatcherOptions{});
    const RouteDecision decision = matcher.classify_rpc("svc", "");
    EXPECT_TRUE(decision.route.empty());
    EXPECT_FALSE(decision.overflow);
    EXPECT_EQ(matcher.distinct_routes("svc"), 0u);
}

TEST(RouteMatcherRpc, QueryIsCutAndLongMethodsAreBounded) {
    RouteMatcher matcher = make(RouteMatcherOptions{});
    EXPECT_EQ(matcher.classify_rpc("svc", "/a.S/M?token=secret").route, "/a.S/M");
    const std::string long_method = "/pkg.Service/" + std::string(400, 'm');
    const std::string_view route = matcher.classify_rpc("svc", long_method).route;
    EXPECT_LE(route.size(), 256u);
    EXPECT_EQ(route, "/pkg.Service/*");
}

}  // namespace
}  // namespace sonde::pipeline
