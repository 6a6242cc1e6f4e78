// Per-span pipeline costs after the tracker: route classification and the
// RED histogram update, as the agent runs them once per span.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "bench_common.h"
#include "pipeline/red_metrics.h"
#include "pipeline/route_matcher.h"
#include "pipeline/span.h"

namespace {

using namespace sonde;

pipeline::Span typical_span() {
    auto service = std::make_shared<pipeline::ServiceIdentity>();
    service->pid = 4242;
    service->service_name = "shop";
    service->service_namespace = "prod";
    pipeline::Span span;
    span.kind = pipeline::SpanKind::Server;
    span.start_mono_ns = 1'000'000'000;
    span.end_mono_ns = span.start_mono_ns + 1'250'000;
    span.method = "GET";
    span.path = "/api/v1/users/42/orders";
    span.route = "/api/v1/users/{id}/orders";
    span.status = 200;
    span.response_body_bytes = 59;
    span.local = {"10.0.0.5", 8080};
    span.peer = {"10.0.0.9", 51234};
    span.service = std::move(service);
    return span;
}

pipeline::RouteMatcher make_matcher(pipeline::RouteMatcherOptions options) {
    auto created = pipeline::RouteMatcher::create(std::move(options));
    return std::move(std::get<pipeline::RouteMatcher>(created));
}

// A path one of the configured patterns matches.
void BM_RouteMatcher_ClassifyPattern(benchmark::State& state) {
    pipeline::RouteMatcherOptions options;
    options.patterns = {"/health", "/api/v1/users/{id}", "/api/v1/users/{id}/orders",
                        "/api/v1/orders/{id}", "/static/*"};
    pipeline::RouteMatcher matcher = make_matcher(std::move(options));
    const std::string path = "/api/v1/users/42/orders";
    for (auto _ : state) {
        auto decision = matcher.classify("shop", path);
        benchmark::DoNotOptimize(decision);
    }
    if (matcher.classify("shop", path).route != "/api/v1/users/{id}/orders")
        state.SkipWithError("pattern did not match");
    bench::report_items(state);
}
BENCHMARK(BM_RouteMatcher_ClassifyPattern);

// No patterns: the default unmatched mode (heuristic) builds the route.
void BM_RouteMatcher_ClassifyHeuristic(benchmark::State& state) {
    pipeline::RouteMatcher matcher = make_matcher({});
    const std::string path = "/api/v1/users/42/orders";
    for (auto _ : state) {
        auto decision = matcher.classify("shop", path);
        benchmark::DoNotOptimize(decision);
    }
    if (matcher.classify("shop", path).route != "/api/v1/users/*/orders")
        state.SkipWithError("heuristic route unexpected");
    bench::report_items(state);
}
BENCHMARK(BM_RouteMatcher_ClassifyHeuristic);

// One server span into the duration and body-size histograms of an existing series.
void BM_RedMetrics_Record(benchmark::State& state) {
    pipeline::RedMetrics red(pipeline::default_duration_buckets(),
                             pipeline::default_size_buckets());
    const pipeline::Span span = typical_span();
    for (auto _ : state) red.record(span);
    bench::report_items(state);
}
BENCHMARK(BM_RedMetrics_Record);

}  // namespace
