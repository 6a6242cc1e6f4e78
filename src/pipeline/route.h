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

}  // namespace sonde::pipeline
