// Arbitrary bytes as a request path: the route is short, has no query or
// fragment, keeps a leading slash, and routing a route changes nothing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pipeline/route.h"

using sonde::pipeline::heuristic_route;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view path(reinterpret_cast<const char*>(data), size);
    const std::string route = heuristic_route(path);
    if (route.empty() || route.size() > 256) {
        std::abort();
    }
    if (route.find_first_of("?#") != std::string::npos) {
        std::abort();
    }
    if (!path.empty() && path[0] == '/' && route[0] != '/') {
        std::abort();
    }
    if (heuristic_route(route) != route) {
        std::abort();
    }
    return 0;
}
