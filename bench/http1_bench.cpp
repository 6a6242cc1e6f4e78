// HTTP/1 parsing cost per request: the pure head parsers, and a whole
// exchange through the connection handler as the tracker drives it.
#include <benchmark/benchmark.h>

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "bench_common.h"
#include "protocols/http1/http1.h"

namespace {

using namespace sonde;
using namespace sonde::protocols;

std::span<const uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

void BM_Http1_ParseRequestHead(benchmark::State& state) {
    const auto bytes = bytes_of(bench::kRequest);
    for (auto _ : state) {
        auto result = http1::parse_head(bytes, true);
        benchmark::DoNotOptimize(result);
    }
    if (http1::parse_head(bytes, true).status != http1::ParseStatus::Complete)
        state.SkipWithError("request head did not parse");
    bench::report_items(state);
    state.SetBytesProcessed(state.iterations() * int64_t(bytes.size()));
}
BENCHMARK(BM_Http1_ParseRequestHead);

void BM_Http1_ParseResponseHead(benchmark::State& state) {
    const auto bytes = bytes_of(bench::kResponse);
    for (auto _ : state) {
        auto result = http1::parse_head(bytes, false);
        benchmark::DoNotOptimize(result);
    }
    if (http1::parse_head(bytes, false).status != http1::ParseStatus::Complete)
        state.SkipWithError("response head did not parse");
    bench::report_items(state);
    state.SetBytesProcessed(state.iterations() * int64_t(bytes.size()));
}
BENCHMARK(BM_Http1_ParseResponseHead);

// One keep-alive connection of a server: the request arrives in one read, the
// response leaves in one write, and the handler completes one exchange.
void BM_Http1_HandlerExchange(benchmark::State& state) {
    auto handler = http1::make_handler(Role::Server);
    std::vector<Exchange> out;
    StreamPiece request;
    request.captured = bytes_of(bench::kRequest);
    request.length = request.captured.size();
    StreamPiece response;
    response.captured = bytes_of(bench::kResponse);
    response.length = response.captured.size();
    uint64_t now = 1'000'000;
    uint64_t exchanges = 0;
    for (auto _ : state) {
        request.ts_enter_ns = now;
        request.ts_exit_ns = now + 2'000;
        response.ts_enter_ns = now + 50'000;
        response.ts_exit_ns = now + 55'000;
        now += 100'000;
        handler->on_data(Direction::Ingress, request, out);
        handler->on_data(Direction::Egress, response, out);
        exchanges += out.size();
        out.clear();
    }
    if (exchanges != uint64_t(state.iterations()) || handler->stats().parse_errors != 0)
        state.SkipWithError("handler did not produce one exchange per request");
    bench::report_items(state);
}
BENCHMARK(BM_Http1_HandlerExchange);

}  // namespace
