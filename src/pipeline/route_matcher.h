// RouteMatcher: turns a request path into the low-cardinality route used as
// the http.route span attribute and the http_route metric label (and bounds
// the RPC methods used as rpc.method, see classify_rpc), following
// Beyla's `routes` section (patterns, ignored_patterns, ignore_mode, unmatched,
// wildcard_char, max_path_segment_cardinality), plus a hard cap on distinct
// routes per service that Beyla does not have.
//
// Pattern syntax (the same for patterns and ignored_patterns, as in Beyla):
//   /orders/{id}   "{name}" or ":name" matches exactly one path segment
//   /a/*/b         "*" in the middle matches exactly one path segment
//   /static/*      "*" (or "**") as the last segment matches the prefix itself
//                  and anything below it: /static, /static/x, /static/x/y
// A parameter or "*" must be a whole segment. One trailing slash is ignored on
// both sides, so /a/b/ and /a/b match each other. Matching is by segment,
// case-sensitive, with no decoding; the query string and fragment are cut off
// before matching and never reach a route.
//
// When several patterns match, the most specific wins: compare the patterns
// segment by segment from the left; at the first position where they differ,
// a literal beats a parameter ("{id}", ":id", middle "*"), which beats the
// trailing prefix "*"; a pattern that ends there beats one that continues with
// the prefix "*" (/a beats /a/* for the path /a). Equal rank: the pattern
// declared first wins. The route of a matched request is the pattern text as
// written, e.g. "/orders/{id}".
//
// Differences from Beyla, all deliberate: Beyla's trie walk does not backtrack
// (with /foo/bar and /foo/{id}/push, Beyla leaves /foo/bar/push unmatched;
// Sonde matches the second); Beyla prefers a prefix "*" over a parameter at the
// same depth; Beyla ignores every segment after a "*" while Sonde reads a
// middle "*" as one segment; Beyla silently treats malformed tags ("{id",
// "x{id}", "*.js") as literals that rarely match, Sonde rejects them.
//
// Memory is bounded by the options: each of at most max_tracked_services
// services (plus one shared set for the rest) holds at most
// max_routes_per_service routes of at most 256 bytes (or a pattern's length)
// and, in low-cardinality mode, at most 4 trie nodes per allowed route. With
// the defaults that is a few hundred KiB per service under a worst-case flood
// of unique paths, and nothing grows after that.
//
// Cost per call: one walk of the pattern trie (each node visited at most
// once), one hash lookup for the service and one for the route; pattern hits
// allocate nothing, unmatched modes build one string.
//
// Threading: not thread-safe. One instance lives on the event loop and is
// called once per span.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

namespace sonde::pipeline {

// Which signals drop a request whose path matches an ignored pattern.
enum class IgnoreMode : uint8_t { Metrics, Traces, All };

// What the route of a path that matches no pattern becomes.
enum class UnmatchedMode : uint8_t {
    Unset,           // no route: the span has no http.route, the metric label is empty
    Path,            // the path itself (query stripped, length bounded)
    Wildcard,        // "/**" for every unmatched path
    Heuristic,       // heuristic_route(): identifier-like segments become wildcard_char
    LowCardinality,  // Heuristic, then per-service segment cardinality learning (Beyla's
                     // low-cardinality mode): a trie node whose distinct children exceed
                     // max_path_segment_cardinality collapses them into wildcard_char
};

// Beyla's spelling: "metrics", "traces", "all" / "unset", "path", "wildcard",
// "heuristic", "low-cardinality". nullopt for anything else.
std::optional<IgnoreMode> parse_ignore_mode(std::string_view text);
std::optional<UnmatchedMode> parse_unmatched_mode(std::string_view text);
std::string_view to_string(IgnoreMode mode);
std::string_view to_string(UnmatchedMode mode);

struct RouteMatcherOptions {
    std::vector<std::string> patterns;
    std::vector<std::string> ignored_patterns;
    IgnoreMode ignore_mode = IgnoreMode::All;            // Beyla default
    UnmatchedMode unmatched = UnmatchedMode::Heuristic;  // Beyla's documented default
    std::string wildcard_char = "*";                     // Beyla default; one character
    size_t max_path_segment_cardinality = 10;            // Beyla default (low-cardinality)
    // Distinct route values one service may produce, the overflow route
    // included (Sonde's hard guard; Beyla has none). Each distinct pattern has
    // a reserved slot, so junk traffic cannot push a configured route into the
    // overflow; unmatched-mode routes share the rest. Must exceed the number
    // of distinct patterns.
    size_t max_routes_per_service = 300;
    // Services with their own route set; later services share one set (with
    // the same cap), so a pid churn cannot grow memory without bound.
    size_t max_tracked_services = 1024;
};

struct RouteDecision {
    // The route; empty when there is none (unmatched: unset, or ignored for both
    // signals). Points into the matcher's storage and stays valid for the
    // matcher's lifetime (routes are never evicted).
    std::string_view route;
    bool ignore_in_metrics = false;
    bool ignore_in_traces = false;
    bool matched_pattern = false;  // route is one of the configured patterns
    bool overflow = false;         // the per-service cap turned the route into kOverflowRoute
};

class RouteMatcher {
public:
    // What a service's new unmatched-mode routes become once they have used
    // every slot the patterns and this route leave them. Beyla has no such
    // cap and so no name for it.
    static constexpr std::string_view kOverflowRoute = "/**overflow**";
    // unmatched: wildcard, as Beyla spells it.
    static constexpr std::string_view kWildcardRoute = "/**";

    // Validates the options and compiles the patterns. On error returns one
    // line naming the option and, for a pattern, its index, text and fault.
    static std::variant<RouteMatcher, std::string> create(RouteMatcherOptions options);

    RouteMatcher(RouteMatcher&&) noexcept;
    RouteMatcher& operator=(RouteMatcher&&) noexcept;
    RouteMatcher(const RouteMatcher&) = delete;
    RouteMatcher& operator=(const RouteMatcher&) = delete;
    ~RouteMatcher();

    // `path` is the request target as seen on the wire: origin form
    // ("/a?b"), absolute form ("http://host/a") or anything else.
    RouteDecision classify(std::string_view service, std::string_view path);

    // The route of an RPC: its method ("/helloworld.Greeter/SayHello") verbatim. Patterns and
    // the unmatched mode are not applied (a method is already low-cardinality by design), but
    // ignored_patterns are, so a health-check method can be dropped like a health-check path.
    // A method still comes from traffic, so it takes a slot of the service's route budget like
    // an unmatched-mode route; past the cap it becomes pipeline::kOtherRpcMethod ("_OTHER", the
    // conventions' name for an unrecognised method) with `overflow` set. An empty method
    // (undecodable) has no route and takes no slot.
    RouteDecision classify_rpc(std::string_view service, std::string_view method);

    const RouteMatcherOptions& options() const { return options_; }
    // Requests whose route was replaced by kOverflowRoute, all services.
    uint64_t overflowed() const { return overflowed_; }
    // Requests of services beyond max_tracked_services (they share one set).
    uint64_t shared_service_requests() const { return shared_service_requests_; }
    // Distinct route values the service has produced, kOverflowRoute included.
    // A service past max_tracked_services reports the shared set.
    size_t distinct_routes(std::string_view service) const;
    // Low-cardinality trie nodes the service holds (0 in other modes).
    size_t segment_nodes(std::string_view service) const;
    size_t tracked_services() const { return services_.size(); }

private:
    struct Segment;
    struct CompiledPattern;
    struct PatternSet;
    struct SegmentNode;
    struct ServiceRoutes;
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using RouteSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

    explicit RouteMatcher(RouteMatcherOptions options);

    ServiceRoutes& service_routes(std::string_view service);
    const ServiceRoutes* find_service(std::string_view service) const;
    // What routes.ignored_patterns says about `path`, with no route yet.
    RouteDecision ignore_decision(std::string_view path) const;
    // The route of a path no pattern matched, into `route` (storage reused).
    void unmatched_route(ServiceRoutes& routes, std::string_view path, std::string& route) const;
    std::string low_cardinality_route(ServiceRoutes& routes, std::string_view heuristic) const;
    std::string_view admit(ServiceRoutes& routes, std::string_view route, bool from_pattern,
                           RouteDecision& decision);

    RouteMatcherOptions options_;
    std::unique_ptr<PatternSet> patterns_;
    std::unique_ptr<PatternSet> ignored_;
    std::unordered_map<std::string, std::unique_ptr<ServiceRoutes>, StringHash, std::equal_to<>>
        services_;
    std::unique_ptr<ServiceRoutes> shared_;  // for services beyond max_tracked_services
    size_t pattern_routes_ = 0;              // distinct pattern texts, each with a slot
    size_t max_segment_nodes_ = 0;           // per service, low-cardinality trie budget
    uint64_t overflowed_ = 0;
    std::string route_scratch_;  // classify's unmatched route, kept for its storage
    uint64_t shared_service_requests_ = 0;
};

}  // namespace sonde::pipeline
