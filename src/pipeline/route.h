// Routes: the low-cardinality form of a request path used as the http_route
// label. Until route patterns are configurable, a heuristic collapses
// identifier-like segments.
#pragma once

#include <string>
#include <string_view>

namespace sonde::pipeline {

// "/users/42/orders/550e8400-e29b-41d4-a716-446655440000?x=1" -> "/users/*/orders/*".
// Numeric, UUID-like, long hex and long random-looking segments become "*";
// the query string and fragment are dropped; an empty path becomes "/".
std::string heuristic_route(std::string_view path);

// The same into `route`, whose storage is reused: the event loop routes every
// request, and a route longer than the small-string buffer would otherwise
// cost an allocation each time.
void heuristic_route_into(std::string_view path, std::string& route);

// `target` up to its query ("?") or fragment ("#"), whichever comes first.
std::string_view path_without_query(std::string_view target);

// What routes are made of: `target` without its query and fragment, and
// without the scheme and authority of an absolute-form (proxy) target; empty
// when nothing is left.
std::string_view route_path(std::string_view target);

}  // namespace sonde::pipeline
