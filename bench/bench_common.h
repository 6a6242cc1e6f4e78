// What the microbenchmarks share: the typical exchange they all use (a
// browser-like API request carrying a W3C traceparent, and an nginx-like JSON
// response), and how they report cost per request.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string_view>

namespace sonde::bench {

inline constexpr std::string_view kRequest =
    "GET /api/v1/users/42/orders?limit=20 HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n"
    "Accept: application/json\r\n"
    "Accept-Encoding: gzip, deflate\r\n"
    "Connection: keep-alive\r\n"
    "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
    "\r\n";

inline constexpr std::string_view kResponseBody =
    R"({"id":42,"orders":[{"id":7,"total":1999}],"currency":"EUR"})";

inline constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Wed, 26 Nov 2025 09:30:00 GMT\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 59\r\n"
    "Connection: keep-alive\r\n"
    "\r\n"
    R"({"id":42,"orders":[{"id":7,"total":1999}],"currency":"EUR"})";

static_assert(kResponseBody.size() == 59, "Content-Length of kResponse");
static_assert(kResponse.ends_with(kResponseBody));

// Reports `items_per_iteration` items (requests, spans) per iteration, as
// items_per_second and as its inverse, the time per item ("per_item").
inline void report_items(benchmark::State& state, int64_t items_per_iteration = 1) {
    const int64_t items = int64_t(state.iterations()) * items_per_iteration;
    state.SetItemsProcessed(items);
    state.counters["per_item"] = benchmark::Counter(
        double(items), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace sonde::bench
