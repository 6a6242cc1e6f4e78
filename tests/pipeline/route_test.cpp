#include "pipeline/route.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace sonde::pipeline {
namespace {

struct RouteCase {
    std::string path;
    std::string route;
};

class HeuristicRoute : public testing::TestWithParam<RouteCase> {};

TEST_P(HeuristicRoute, CollapsesIdentifiers) {
    EXPECT_EQ(heuristic_route(GetParam().path), GetParam().route) << GetParam().path;
}

// The hot path's form writes into a string that held an earlier route: the
// result must not depend on what was there (shorter, longer, or "/*").
TEST_P(HeuristicRoute, IntoAUsedStringGivesTheSameRoute) {
    for (std::string used : {std::string("/"), std::string("/*"), std::string(300, 'x')}) {
        heuristic_route_into(GetParam().path, used);
        EXPECT_EQ(used, GetParam().route) << GetParam().path;
    }
}

TEST_P(HeuristicRoute, IsIdempotent) {
    const std::string once = heuristic_route(GetParam().path);
    EXPECT_EQ(heuristic_route(once), once);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HeuristicRoute,
    testing::Values(
        // Empty and root.
        RouteCase{"", "/"}, RouteCase{"/", "/"}, RouteCase{"?x=1", "/"}, RouteCase{"#top", "/"},
        // Words are kept.
        RouteCase{"/health", "/health"}, RouteCase{"/api/v1/users", "/api/v1/users"},
        RouteCase{"/api/v2/oauth2/token", "/api/v2/oauth2/token"},
        RouteCase{"/dl/linux/x86_64/h264", "/dl/linux/x86_64/h264"},
        RouteCase{"/static/app.min.js", "/static/app.min.js"},
        RouteCase{"/releases/v10.2.3", "/releases/v10.2.3"},
        RouteCase{"/deadbeef", "/deadbeef"},  // hex letters only: could be a word
        RouteCase{"/getUserProfile", "/getUserProfile"},
        // Numbers.
        RouteCase{"/orders/123", "/orders/*"}, RouteCase{"/status/200", "/status/*"},
        RouteCase{"/bytes/1048576", "/bytes/*"},
        RouteCase{"/users/42/orders/7", "/users/*/orders/*"},
        // UUIDs, dashed, undashed, upper case.
        RouteCase{"/items/550e8400-e29b-41d4-a716-446655440000/reviews", "/items/*/reviews"},
        RouteCase{"/items/550E8400-E29B-41D4-A716-446655440000", "/items/*"},
        RouteCase{"/items/550e8400e29b41d4a716446655440000", "/items/*"},
        RouteCase{"/x/abcdefabcdefabcdefabcdefabcdefab", "/x/*"},  // 32 hex, no digit
        // Hex digests and object ids.
        RouteCase{"/commits/9fceb02d", "/commits/*"},
        RouteCase{"/objects/507f1f77bcf86cd799439011", "/objects/*"},
        // Random-looking tokens.
        RouteCase{"/s/aZ3kP9qLm2Xw7Rt5", "/s/*"},
        RouteCase{"/reset/eyJhbGciOiJIUzI1NiJ9", "/reset/*"},
        // Digit-heavy ids.
        RouteCase{"/reports/2024-01-15", "/reports/*"}, RouteCase{"/orders/ORD-12345", "/orders/*"},
        RouteCase{"/hosts/10.0.0.1/metrics", "/hosts/*/metrics"},
        // Query and fragment.
        RouteCase{"/search?q=42", "/search"}, RouteCase{"/orders/9?expand=items#x", "/orders/*"},
        RouteCase{"/page#section-2", "/page"},
        // Slashes are preserved as written.
        RouteCase{"/users/", "/users/"}, RouteCase{"/orders/123/", "/orders/*/"},
        RouteCase{"//a//b", "//a//b"},
        // Absolute-form targets route by their path.
        RouteCase{"http://example.com:8080/orders/5", "/orders/*"},
        RouteCase{"HTTPS://example.com", "/"},
        // Not a path at all (OPTIONS *): left alone.
        RouteCase{"*", "*"},
        // A segment too long to be a word.
        RouteCase{"/blob/" + std::string(65, 'a'), "/blob/*"},
        RouteCase{"/word/" + std::string(64, 'a'), "/word/" + std::string(64, 'a')}));

TEST(HeuristicRouteBounds, LongRoutesAreCutAtASegmentBoundary) {
    std::string path;
    for (int i = 0; i < 100; ++i) {
        path += "/segment";
    }
    const std::string route = heuristic_route(path);
    EXPECT_LE(route.size(), 256u);
    ASSERT_GE(route.size(), 2u);
    EXPECT_EQ(route.substr(route.size() - 2), "/*");
    // Everything before the marker is whole segments of the original.
    const std::string kept = route.substr(0, route.size() - 2);
    EXPECT_EQ(path.substr(0, kept.size()), kept);
    EXPECT_EQ(path[kept.size()], '/');
    EXPECT_EQ(heuristic_route(route), route);
}

TEST(HeuristicRouteBounds, ManySlashesStayBounded) {
    const std::string route = heuristic_route(std::string(10000, '/'));
    EXPECT_LE(route.size(), 256u);
    EXPECT_EQ(heuristic_route(route), route);
}

TEST(HeuristicRouteBounds, RandomPathsAreBoundedAndIdempotent) {
    std::mt19937 rng(1234);
    const std::string alphabet = "/ab09-_.?#%xyzZ";
    std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
    std::uniform_int_distribution<size_t> length(0, 600);
    for (int i = 0; i < 2000; ++i) {
        std::string path;
        const size_t n = length(rng);
        for (size_t k = 0; k < n; ++k) {
            path += alphabet[pick(rng)];
        }
        const std::string route = heuristic_route(path);
        ASSERT_FALSE(route.empty()) << path;
        ASSERT_LE(route.size(), 256u) << path;
        ASSERT_EQ(route.find_first_of("?#"), std::string::npos) << path;
        ASSERT_EQ(heuristic_route(route), route) << path;
    }
}

TEST(PathWithoutQuery, CutsAtTheFirstQueryOrFragment) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"", ""},       {"/", "/"},       {"/a/b", "/a/b"},   {"/a?x=1", "/a"},
        {"/a#f", "/a"}, {"/a?x#f", "/a"}, {"/a#f?x", "/a"},   {"?x", ""},
        {"#", ""},      {"/a?", "/a"},    {"/a/?b?c", "/a/"},
    };
    for (const auto& [target, path] : cases) {
        EXPECT_EQ(path_without_query(target), path) << target;
    }
}

TEST(RoutePath, DropsQueryFragmentSchemeAndAuthority) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"", ""},
        {"/a/b?x#f", "/a/b"},
        {"http://host:8080/x/y?q", "/x/y"},
        {"HTTPS://Host/x", "/x"},
        {"http://host", ""},
        {"http://host?q=/x", ""},
        {"ftp://host/x", "ftp://host/x"},
        {"/redirect?to=http://x/y", "/redirect"},
    };
    for (const auto& [target, path] : cases) {
        EXPECT_EQ(route_path(target), path) << target;
    }
}

}  // namespace
}  // namespace sonde::pipeline
