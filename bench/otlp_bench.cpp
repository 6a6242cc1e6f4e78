// OTLP span encoding per span: a batch of spans into one
// ExportTraceServiceRequest, then to wire bytes, as the exporter does before
// each send. The batch sizes bracket BatchSpanProcessor's default of 512.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "bench_common.h"
#include "export/otlp/otlp_span_encoding.h"
#include "pipeline/span.h"

namespace {

using namespace sonde;
using namespace sonde::exporter::otlp;

struct Batch {
    std::vector<pipeline::Span> spans;
    std::vector<SpanIds> ids;
};

// `size` server spans of one service, each with its own ids and a remote parent.
Batch make_batch(size_t size) {
    auto service = std::make_shared<pipeline::ServiceIdentity>();
    service->pid = 4242;
    service->start_time_ticks = 77;
    service->exe_path = "/usr/sbin/nginx";
    service->exe_name = "nginx";
    service->service_name = "shop";
    service->service_namespace = "prod";
    Batch batch;
    for (size_t i = 0; i < size; ++i) {
        pipeline::Span s;
        s.kind = pipeline::SpanKind::Server;
        s.start_unix_ns = 1'700'000'000'000'000'000ull + i * 100'000;
        s.end_unix_ns = s.start_unix_ns + 1'250'000;
        s.method = "GET";
        s.path = "/api/v1/users/42/orders";
        s.route = "/api/v1/users/{id}/orders";
        s.status = 200;
        s.response_body_bytes = 59;
        s.local = {"10.0.0.5", 8080};
        s.peer = {"10.0.0.9", uint16_t(40000 + i % 20000)};
        s.service = service;
        batch.spans.push_back(std::move(s));
        SpanIds ids;
        for (size_t b = 0; b < ids.trace_id.size(); ++b) ids.trace_id[b] = uint8_t(i * 31 + b);
        for (size_t b = 0; b < ids.span_id.size(); ++b) ids.span_id[b] = uint8_t(i * 7 + b + 1);
        for (size_t b = 0; b < ids.parent_span_id.size(); ++b)
            ids.parent_span_id[b] = uint8_t(b + 1);
        ids.parent_is_remote = true;
        batch.ids.push_back(ids);
    }
    return batch;
}

EncoderOptions encoder_options() {
    EncoderOptions options;
    options.host_name = "bench-host";
    return options;
}

void BM_Otlp_BuildRequest(benchmark::State& state) {
    const Batch batch = make_batch(size_t(state.range(0)));
    const EncoderOptions options = encoder_options();
    for (auto _ : state) {
        otlp_collector_trace::ExportTraceServiceRequest request;
        build_export_request(batch.spans, batch.ids, options, &request);
        benchmark::DoNotOptimize(request);
    }
    bench::report_items(state, state.range(0));
}
BENCHMARK(BM_Otlp_BuildRequest)->Arg(1)->Arg(64)->Arg(512);

void BM_Otlp_BuildAndSerialize(benchmark::State& state) {
    const Batch batch = make_batch(size_t(state.range(0)));
    const EncoderOptions options = encoder_options();
    std::string wire;
    for (auto _ : state) {
        otlp_collector_trace::ExportTraceServiceRequest request;
        build_export_request(batch.spans, batch.ids, options, &request);
        wire.clear();
        if (!request.SerializeToString(&wire)) state.SkipWithError("serialization failed");
        benchmark::DoNotOptimize(wire);
    }
    bench::report_items(state, state.range(0));
    state.counters["bytes_per_span"] = double(wire.size()) / double(state.range(0));
}
BENCHMARK(BM_Otlp_BuildAndSerialize)->Arg(1)->Arg(64)->Arg(512);

}  // namespace
