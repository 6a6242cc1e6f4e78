#include "pipeline/route_matcher.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <utility>

#include "pipeline/route.h"
#include "pipeline/span_semantics.h"

namespace sonde::pipeline {

namespace {

// The same bound heuristic_route() applies: a route is a label value in every
// series it touches, so a pathological URL must not become a kilobyte of it.
constexpr size_t kMaxRouteLength = 256;
// Error messages quote at most this much of a pattern.
constexpr size_t kMaxQuotedLength = 80;
// Low-cardinality trie nodes a service may hold, per allowed route. Real APIs
// share prefixes and need far fewer; the bound only matters under attack.
constexpr size_t kSegmentNodesPerRoute = 4;

// The part of a request target that routes are made of: no query, no
// fragment, no scheme and authority; "/" when nothing is left.
std::string_view request_path(std::string_view target) {
    const std::string_view path = route_path(target);
    return path.empty() ? std::string_view("/") : path;
}

// Walks the segments of a path that starts with '/'. Like Beyla's tokenizer,
// "/" has no segments and one trailing slash is dropped ("/a/" is ["a"]);
// other empty segments are kept ("//" is [""], "/a//b" is ["a", "", "b"]).
class PathSegments {
public:
    explicit PathSegments(std::string_view path) {
        std::string_view body = path.substr(1);
        if (body.empty()) {
            return;
        }
        if (body.back() == '/') {
            body.remove_suffix(1);
        }
        rest_ = body;
        more_ = true;
    }

    bool next(std::string_view& segment) {
        if (!more_) {
            return false;
        }
        const size_t slash = rest_.find('/');
        if (slash == std::string_view::npos) {
            segment = rest_;
            more_ = false;
        } else {
            segment = rest_.substr(0, slash);
            rest_ = rest_.substr(slash + 1);
        }
        return true;
    }

private:
    std::string_view rest_;
    bool more_ = false;
};

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

std::string quoted(std::string_view text) {
    std::string out = "\"";
    for (size_t i = 0; i < text.size(); ++i) {
        if (i == kMaxQuotedLength) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            char escaped[8];
            std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
            out += escaped;
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    out.push_back('"');
    return out;
}

// Why a parameter segment ("{name}" or ":name") is malformed; empty when fine.
std::string parameter_name_fault(std::string_view segment, std::string_view name) {
    if (name.empty()) {
        return "empty parameter name in segment " + quoted(segment);
    }
    if (!std::all_of(name.begin(), name.end(), is_name_char)) {
        return "parameter name " + quoted(name) + " may only use letters, digits, '_', '-' and '.'";
    }
    return {};
}

// A route longer than kMaxRouteLength is cut at a segment boundary and the
// elided tail marked with "/<wildcard>", as heuristic_route() does.
std::string bounded_route(std::string_view route, char wildcard) {
    if (route.size() <= kMaxRouteLength) {
        return std::string(route);
    }
    const size_t cut = route.rfind('/', kMaxRouteLength - 2);
    std::string out(route.substr(0, cut == std::string_view::npos ? 0 : cut));
    out.push_back('/');
    out.push_back(wildcard);
    return out;
}

bool is_wildcard_segment(std::string_view route, size_t i) {
    return route[i] == '*' && (i == 0 || route[i - 1] == '/') &&
           (i + 1 == route.size() || route[i + 1] == '/');
}

}  // namespace

struct RouteMatcher::Segment {
    std::string literal;
    bool parameter = false;  // "{name}", ":name" or a middle "*": any one segment
};

struct RouteMatcher::CompiledPattern {
    std::string text;  // the route of a matching request
    std::vector<Segment> segments;
    bool prefix = false;  // trailing "*": any remaining segments, none included

    std::string compile(std::string_view pattern);
};

// The patterns as a trie of segments. A lookup walks it depth first, trying at
// every level the literal child, then the parameter child, then a prefix that
// ends there, so the first pattern it reaches is the most specific one (the
// order the header describes) and it visits each node at most once.
struct RouteMatcher::PatternSet {
    static constexpr size_t kNone = std::numeric_limits<size_t>::max();
    struct Node {
        std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> literal;
        std::unique_ptr<Node> parameter;
        size_t exact = kNone;   // index in `texts` of the pattern that ends here
        size_t prefix = kNone;  // same, for one that ends here with a trailing "*"
    };

    std::vector<std::string> texts;
    Node root;

    void insert(CompiledPattern&& pattern) {
        Node* node = &root;
        for (Segment& segment : pattern.segments) {
            std::unique_ptr<Node>& next =
                segment.parameter ? node->parameter : node->literal[std::move(segment.literal)];
            if (!next) {
                next = std::make_unique<Node>();
            }
            node = next.get();
        }
        size_t& slot = pattern.prefix ? node->prefix : node->exact;
        if (slot == kNone) {  // an equally specific pattern declared earlier wins
            slot = texts.size();
            texts.push_back(std::move(pattern.text));
        }
    }

    // The route of the most specific pattern matching `path`, or nullptr.
    const std::string* find(std::string_view path) const {
        if (texts.empty() || path.empty() || path[0] != '/') {
            return nullptr;
        }
        const size_t found = find(root, PathSegments(path));
        return found == kNone ? nullptr : &texts[found];
    }

private:
    static size_t find(const Node& node, PathSegments walk) {
        std::string_view segment;
        if (!walk.next(segment)) {
            return node.exact != kNone ? node.exact : node.prefix;
        }
        if (const auto it = node.literal.find(segment); it != node.literal.end()) {
            if (const size_t found = find(*it->second, walk); found != kNone) {
                return found;
            }
        }
        if (node.parameter) {
            if (const size_t found = find(*node.parameter, walk); found != kNone) {
                return found;
            }
        }
        return node.prefix;
    }
};

// One level of a service's low-cardinality route database.
struct RouteMatcher::SegmentNode {
    std::string segment;
    std::vector<std::unique_ptr<SegmentNode>> children;
    // Set once the distinct children exceeded max_path_segment_cardinality;
    // from then on every segment at this level is the wildcard.
    std::unique_ptr<SegmentNode> collapsed;

    size_t subtree_size() const {
        size_t n = 1;
        for (const auto& child : children) {
            n += child->subtree_size();
        }
        return collapsed ? n + collapsed->subtree_size() : n;
    }
};

struct RouteMatcher::ServiceRoutes {
    RouteSet routes;              // distinct routes handed out, the overflow route excluded
    size_t unmatched_routes = 0;  // how many of `routes` came from the unmatched mode
    bool overflowed = false;
    SegmentNode tree;          // low-cardinality only; the root stands for "/"
    size_t segment_nodes = 0;  // below the root
};

// Returns the fault, empty when the pattern is fine.
std::string RouteMatcher::CompiledPattern::compile(std::string_view pattern) {
    if (pattern.empty()) {
        return "is empty";
    }
    if (pattern[0] != '/') {
        return "must start with '/'";
    }
    for (const char c : pattern) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            return "contains a control character";
        }
        if (c == '?' || c == '#') {
            return "contains '?' or '#'; a query or fragment never reaches a route";
        }
    }
    text = std::string(pattern);
    std::vector<std::string_view> parts;
    PathSegments walk(pattern);
    std::string_view part;
    while (walk.next(part)) {
        parts.push_back(part);
    }
    for (size_t i = 0; i < parts.size(); ++i) {
        const std::string_view s = parts[i];
        const bool last = i + 1 == parts.size();
        Segment segment;
        if (s == "*" || s == "**") {
            if (last) {
                prefix = true;
                break;
            }
            if (s == "**") {
                return "'**' is only allowed as the last segment";
            }
            segment.parameter = true;
        } else if (s.find('*') != std::string_view::npos) {
            return "'*' must be a whole segment, not part of " + quoted(s);
        } else if (s.find_first_of("{}") != std::string_view::npos) {
            const bool whole = s.size() >= 2 && s.front() == '{' && s.back() == '}' &&
                               s.find_first_of("{}", 1) == s.size() - 1;
            if (!whole) {
                int depth = 0;
                for (const char c : s) {
                    depth += c == '{' ? 1 : c == '}' ? -1 : 0;
                    if (depth < 0) {
                        break;
                    }
                }
                if (depth != 0) {
                    return "unbalanced braces in segment " + quoted(s);
                }
                return "a {parameter} must be a whole segment with one name, not " + quoted(s);
            }
            std::string fault = parameter_name_fault(s, s.substr(1, s.size() - 2));
            if (!fault.empty()) {
                return fault;
            }
            segment.parameter = true;
        } else if (!s.empty() && s.front() == ':') {
            std::string fault = parameter_name_fault(s, s.substr(1));
            if (!fault.empty()) {
                return fault;
            }
            segment.parameter = true;
        } else {
            segment.literal = std::string(s);
        }
        segments.push_back(std::move(segment));
    }
    return {};
}

std::optional<IgnoreMode> parse_ignore_mode(std::string_view text) {
    if (text == "metrics") return IgnoreMode::Metrics;
    if (text == "traces") return IgnoreMode::Traces;
    if (text == "all") return IgnoreMode::All;
    return std::nullopt;
}

std::optional<UnmatchedMode> parse_unmatched_mode(std::string_view text) {
    if (text == "unset") return UnmatchedMode::Unset;
    if (text == "path") return UnmatchedMode::Path;
    if (text == "wildcard") return UnmatchedMode::Wildcard;
    if (text == "heuristic") return UnmatchedMode::Heuristic;
    if (text == "low-cardinality") return UnmatchedMode::LowCardinality;
    return std::nullopt;
}

std::string_view to_string(IgnoreMode mode) {
    switch (mode) {
        case IgnoreMode::Metrics:
            return "metrics";
        case IgnoreMode::Traces:
            return "traces";
        case IgnoreMode::All:
            return "all";
    }
    return "invalid";
}

std::string_view to_string(UnmatchedMode mode) {
    switch (mode) {
        case UnmatchedMode::Unset:
            return "unset";
        case UnmatchedMode::Path:
            return "path";
        case UnmatchedMode::Wildcard:
            return "wildcard";
        case UnmatchedMode::Heuristic:
            return "heuristic";
        case UnmatchedMode::LowCardinality:
            return "low-cardinality";
    }
    return "invalid";
}

RouteMatcher::RouteMatcher(RouteMatcherOptions options)
    : options_(std::move(options)),
      patterns_(std::make_unique<PatternSet>()),
      ignored_(std::make_unique<PatternSet>()),
      shared_(std::make_unique<ServiceRoutes>()) {}
RouteMatcher::RouteMatcher(RouteMatcher&&) noexcept = default;
RouteMatcher& RouteMatcher::operator=(RouteMatcher&&) noexcept = default;
RouteMatcher::~RouteMatcher() = default;

std::variant<RouteMatcher, std::string> RouteMatcher::create(RouteMatcherOptions options) {
    if (options.ignore_mode > IgnoreMode::All) {
        return std::string("routes.ignore_mode: must be one of metrics, traces, all");
    }
    if (options.unmatched > UnmatchedMode::LowCardinality) {
        return std::string(
            "routes.unmatched: must be one of unset, path, wildcard, heuristic, low-cardinality");
    }
    const std::string& wildcard = options.wildcard_char;
    if (wildcard.size() != 1) {
        return "routes.wildcard_char " + quoted(wildcard) + ": must be a single character";
    }
    const auto w = static_cast<unsigned char>(wildcard[0]);
    if (w < 0x20 || w >= 0x7f || wildcard[0] == '/' || wildcard[0] == '?' || wildcard[0] == '#') {
        return "routes.wildcard_char " + quoted(wildcard) +
               ": must be a printable ASCII character other than '/', '?' and '#'";
    }
    if (options.max_path_segment_cardinality == 0) {
        return std::string("routes.max_path_segment_cardinality: must be at least 1");
    }
    if (options.max_tracked_services == 0) {
        return std::string("routes.max_tracked_services: must be at least 1");
    }

    RouteMatcher matcher(std::move(options));
    const RouteMatcherOptions& opts = matcher.options_;
    const auto compile_all = [](const std::vector<std::string>& texts, std::string_view key,
                                PatternSet& out) -> std::string {
        for (size_t i = 0; i < texts.size(); ++i) {
            CompiledPattern compiled;
            const std::string fault = compiled.compile(texts[i]);
            if (!fault.empty()) {
                return std::string(key) + "[" + std::to_string(i) + "] " + quoted(texts[i]) + ": " +
                       fault;
            }
            out.insert(std::move(compiled));
        }
        return {};
    };
    if (std::string error = compile_all(opts.patterns, "routes.patterns", *matcher.patterns_);
        !error.empty()) {
        return error;
    }
    if (std::string error =
            compile_all(opts.ignored_patterns, "routes.ignored_patterns", *matcher.ignored_);
        !error.empty()) {
        return error;
    }

    // Every distinct pattern keeps a route slot, and one is left for the
    // overflow route, so the cap must exceed the number of patterns.
    matcher.pattern_routes_ =
        std::unordered_set<std::string_view>(opts.patterns.begin(), opts.patterns.end()).size();
    if (opts.max_routes_per_service <= matcher.pattern_routes_) {
        return "routes.max_routes_per_service (" + std::to_string(opts.max_routes_per_service) +
               ") must exceed the number of distinct patterns (" +
               std::to_string(matcher.pattern_routes_) + ")";
    }
    const size_t max = std::numeric_limits<size_t>::max();
    matcher.max_segment_nodes_ = opts.max_routes_per_service > max / kSegmentNodesPerRoute
                                     ? max
                                     : opts.max_routes_per_service * kSegmentNodesPerRoute;
    return matcher;
}

RouteDecision RouteMatcher::ignore_decision(std::string_view path) const {
    RouteDecision decision;
    if (ignored_->find(path) != nullptr) {
        decision.ignore_in_metrics = options_.ignore_mode != IgnoreMode::Traces;
        decision.ignore_in_traces = options_.ignore_mode != IgnoreMode::Metrics;
    }
    return decision;
}

RouteDecision RouteMatcher::classify(std::string_view service, std::string_view target) {
    const std::string_view path = request_path(target);
    RouteDecision decision = ignore_decision(path);
    if (decision.ignore_in_metrics && decision.ignore_in_traces) {
        return decision;  // dropped everywhere: no route, no slot used
    }

    ServiceRoutes& routes = service_routes(service);
    if (const std::string* pattern = patterns_->find(path)) {
        decision.matched_pattern = true;
        decision.route = admit(routes, *pattern, /*from_pattern=*/true, decision);
        return decision;
    }
    if (options_.unmatched == UnmatchedMode::Unset) {
        return decision;
    }
    unmatched_route(routes, path, route_scratch_);
    decision.route = admit(routes, route_scratch_, /*from_pattern=*/false, decision);
    return decision;
}

RouteDecision RouteMatcher::classify_rpc(std::string_view service, std::string_view method) {
    // request_path would turn an unknown method into "/", which would then claim a slot and
    // name a method nobody called.
    if (method.empty()) {
        return {};
    }
    const std::string_view path = request_path(method);
    RouteDecision decision = ignore_decision(path);
    if (decision.ignore_in_metrics && decision.ignore_in_traces) {
        return decision;  // dropped everywhere: no route, no slot used
    }
    ServiceRoutes& routes = service_routes(service);
    decision.route = admit(routes, bounded_route(path, '*'), /*from_pattern=*/false, decision);
    if (decision.overflow) {
        decision.route = kOtherRpcMethod;
    }
    return decision;
}

void RouteMatcher::unmatched_route(ServiceRoutes& routes, std::string_view path,
                                   std::string& route) const {
    const char wildcard = options_.wildcard_char[0];
    switch (options_.unmatched) {
        case UnmatchedMode::Unset:
            route.clear();
            return;
        case UnmatchedMode::Wildcard:
            route.assign(kWildcardRoute);
            return;
        case UnmatchedMode::Path:
            route = bounded_route(path, wildcard);
            return;
        case UnmatchedMode::Heuristic:
            heuristic_route_into(path, route);
            break;
        case UnmatchedMode::LowCardinality:
            heuristic_route_into(path, route);
            route = low_cardinality_route(routes, route);
            break;
    }
    // Not a path ("*" of OPTIONS *): nothing was wildcarded.
    if (wildcard != '*' && !route.empty() && route[0] == '/') {
        for (size_t i = 0; i < route.size(); ++i) {
            if (is_wildcard_segment(route, i)) {
                route[i] = wildcard;
            }
        }
    }
}

// Beyla's low-cardinality mode over a heuristic route: each trie level keeps
// up to max_path_segment_cardinality distinct segments verbatim; one more and
// the level collapses to "*" for good. Wildcards are "*" here and get the
// configured character afterwards, like heuristic routes.
std::string RouteMatcher::low_cardinality_route(ServiceRoutes& routes,
                                                std::string_view heuristic) const {
    if (heuristic.size() < 2 || heuristic[0] != '/') {
        return std::string(heuristic);  // "/" or not a path ("*" of OPTIONS *)
    }
    std::string out;
    out.reserve(heuristic.size());
    SegmentNode* node = &routes.tree;
    std::string_view rest = heuristic.substr(1);
    while (true) {
        const size_t slash = rest.find('/');
        const std::string_view segment = rest.substr(0, slash);
        out.push_back('/');
        if (node == nullptr) {
            out.push_back('*');  // node budget spent above: stop learning
        } else if (node->collapsed) {
            out.push_back('*');
            node = node->collapsed.get();
        } else {
            const auto it = std::find_if(node->children.begin(), node->children.end(),
                                         [&](const auto& c) { return c->segment == segment; });
            if (it != node->children.end()) {
                out.append(segment);
                node = it->get();
            } else if (node->children.size() >= options_.max_path_segment_cardinality) {
                for (const auto& child : node->children) {
                    routes.segment_nodes -= child->subtree_size();
                }
                node->children.clear();
                node->collapsed = std::make_unique<SegmentNode>();
                node->collapsed->segment = "*";
                ++routes.segment_nodes;
                out.push_back('*');
                node = node->collapsed.get();
            } else if (routes.segment_nodes >= max_segment_nodes_) {
                out.push_back('*');
                node = nullptr;
            } else {
                node->children.push_back(std::make_unique<SegmentNode>());
                node->children.back()->segment = std::string(segment);
                ++routes.segment_nodes;
                out.append(segment);
                node = node->children.back().get();
            }
        }
        if (slash == std::string_view::npos) {
            break;
        }
        rest = rest.substr(slash + 1);
    }
    // Collapsed empty segments ("//" -> "/*/") can outgrow the heuristic route.
    return bounded_route(out, '*');
}

std::string_view RouteMatcher::admit(ServiceRoutes& routes, std::string_view route,
                                     bool from_pattern, RouteDecision& decision) {
    if (const auto it = routes.routes.find(route); it != routes.routes.end()) {
        return *it;
    }
    // Patterns have reserved slots; the unmatched mode gets what is left after
    // them and the overflow route.
    const size_t unmatched_slots = options_.max_routes_per_service - 1 - pattern_routes_;
    if (!from_pattern && routes.unmatched_routes >= unmatched_slots) {
        ++overflowed_;
        routes.overflowed = true;
        decision.overflow = true;
        return kOverflowRoute;
    }
    if (!from_pattern) {
        ++routes.unmatched_routes;
    }
    return *routes.routes.emplace(route).first;
}

RouteMatcher::ServiceRoutes& RouteMatcher::service_routes(std::string_view service) {
    if (const auto it = services_.find(service); it != services_.end()) {
        return *it->second;
    }
    if (services_.size() >= options_.max_tracked_services) {
        ++shared_service_requests_;
        return *shared_;
    }
    return *services_.emplace(std::string(service), std::make_unique<ServiceRoutes>())
                .first->second;
}

const RouteMatcher::ServiceRoutes* RouteMatcher::find_service(std::string_view service) const {
    if (const auto it = services_.find(service); it != services_.end()) {
        return it->second.get();
    }
    return services_.size() >= options_.max_tracked_services ? shared_.get() : nullptr;
}

size_t RouteMatcher::distinct_routes(std::string_view service) const {
    const ServiceRoutes* routes = find_service(service);
    return routes == nullptr ? 0 : routes->routes.size() + (routes->overflowed ? 1 : 0);
}

size_t RouteMatcher::segment_nodes(std::string_view service) const {
    const ServiceRoutes* routes = find_service(service);
    return routes == nullptr ? 0 : routes->segment_nodes;
}

}  // namespace sonde::pipeline
