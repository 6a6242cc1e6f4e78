#include "export/otlp/periodic_metric_exporter.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loopback_collectors.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.grpc.pb.h"

namespace sonde::exporter::otlp {
namespace {

using namespace std::chrono_literals;
using testing::closed_port;
using testing::LoopbackHttpServer;

// Records `requests` GET /items server spans of 20 ms for service "checkout".
void record_more(pipeline::RedMetrics& red, int requests) {
    pipeline::Span span;
    span.method = "GET";
    span.route = "/items";
    span.status = 200;
    span.start_mono_ns = 1'000'000'000;
    span.end_mono_ns = 1'020'000'000;
    auto service = std::make_shared<pipeline::ServiceIdentity>();
    service->service_name = "checkout";
    span.service = service;
    for (int i = 0; i < requests; ++i) red.record(span);
}

std::shared_ptr<pipeline::RedMetrics> red_with(int requests) {
    auto red = std::make_shared<pipeline::RedMetrics>(pipeline::default_duration_buckets(),
                                                      pipeline::default_size_buckets());
    record_more(*red, requests);
    return red;
}

MetricsCollector collector_of(std::shared_ptr<pipeline::RedMetrics> red) {
    return [red] { return red->snapshot(); };
}

PeriodicMetricExporterOptions fast_options(Temporality temporality = Temporality::Cumulative) {
    PeriodicMetricExporterOptions options;
    options.encoder.host_name = "test-host";
    options.temporality = temporality;
    options.interval = 100ms;
    options.initial_backoff = 20ms;
    options.max_backoff = 40ms;
    options.jitter_seed = 7;
    return options;
}

uint64_t server_count(const otlp_collector_metrics::ExportMetricsServiceRequest& request) {
    uint64_t count = 0;
    for (const auto& rm : request.resource_metrics())
        for (const auto& sm : rm.scope_metrics())
            for (const auto& metric : sm.metrics())
                if (metric.name() == "http.server.request.duration")
                    for (const auto& point : metric.histogram().data_points())
                        count += point.count();
    return count;
}

// In-process MetricsService: records requests, fails the first `fail_first` with `code`.
class RecordingMetricsService final : public otlp_collector_metrics::MetricsService::Service {
public:
    grpc::Status Export(grpc::ServerContext*,
                        const otlp_collector_metrics::ExportMetricsServiceRequest* request,
                        otlp_collector_metrics::ExportMetricsServiceResponse*) override {
        std::lock_guard lock(mutex);
        if (fail_first > 0) {
            --fail_first;
            return grpc::Status(code, "down");
        }
        requests.push_back(*request);
        return grpc::Status::OK;
    }
    std::mutex mutex;
    std::vector<otlp_collector_metrics::ExportMetricsServiceRequest> requests;
    int fail_first = 0;
    grpc::StatusCode code = grpc::StatusCode::UNAVAILABLE;
};

struct GrpcMetricsCollector {
    RecordingMetricsService service;
    std::unique_ptr<grpc::Server> server;
    int port = 0;
    GrpcMetricsCollector() {
        grpc::ServerBuilder builder;
        builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
        builder.RegisterService(&service);
        server = builder.BuildAndStart();
    }
    ~GrpcMetricsCollector() { server->Shutdown(std::chrono::system_clock::now() + 1s); }
    OtlpTransportOptions transport() const {
        OtlpTransportOptions options;
        options.protocol = OtlpProtocol::Grpc;
        options.endpoint = "127.0.0.1:" + std::to_string(port);
        options.timeout = 2s;
        return options;
    }
    size_t received() {
        std::lock_guard lock(service.mutex);
        return service.requests.size();
    }
};

TEST(PeriodicMetricExporter, ExportsCumulativeHistogramsOverGrpcEveryInterval) {
    GrpcMetricsCollector collector;
    auto red = red_with(3);
    PeriodicMetricExporter exporter(collector_of(red),
                                    make_otlp_transport(collector.transport(), OtlpSignal::Metrics),
                                    fast_options());
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (collector.received() < 3 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    record_more(*red, 2);
    ASSERT_TRUE(exporter.ForceFlush(5s));
    exporter.Shutdown(1s);

    std::lock_guard lock(collector.service.mutex);
    const auto& requests = collector.service.requests;
    ASSERT_GE(requests.size(), 4u);
    EXPECT_EQ(server_count(requests.front()), 3u);
    EXPECT_EQ(server_count(requests.back()), 5u);  // cumulative: totals, not increments
    const auto& metric = requests.back().resource_metrics(0).scope_metrics(0).metrics(0);
    EXPECT_EQ(metric.histogram().aggregation_temporality(),
              otlp_metrics::AGGREGATION_TEMPORALITY_CUMULATIVE);
    // Every export of a cumulative series has the same start.
    EXPECT_EQ(requests.front()
                  .resource_metrics(0)
                  .scope_metrics(0)
                  .metrics(0)
                  .histogram()
                  .data_points(0)
                  .start_time_unix_nano(),
              metric.histogram().data_points(0).start_time_unix_nano());
    EXPECT_EQ(exporter.counters().exports.load(), requests.size());
    EXPECT_EQ(exporter.counters().data_points_dropped_failed.load(), 0u);
}

TEST(PeriodicMetricExporter, DeltaCarriesAFailedIntervalIntoTheNextExport) {
    GrpcMetricsCollector collector;
    collector.service.code = grpc::StatusCode::INVALID_ARGUMENT;  // not retryable
    collector.service.fail_first = 1;
    auto red = red_with(3);
    auto options = fast_options(Temporality::Delta);
    options.interval = 1h;  // only ForceFlush exports
    PeriodicMetricExporter exporter(collector_of(red),
                                    make_otlp_transport(collector.transport(), OtlpSignal::Metrics),
                                    options);
    ASSERT_TRUE(exporter.ForceFlush(5s));  // rejected: the 3 are not committed
    EXPECT_EQ(collector.received(), 0u);
    EXPECT_GT(exporter.counters().data_points_dropped_failed.load(), 0u);
    record_more(*red, 2);
    ASSERT_TRUE(exporter.ForceFlush(5s));
    ASSERT_TRUE(exporter.ForceFlush(5s));  // nothing new: no request at all
    record_more(*red, 4);
    ASSERT_TRUE(exporter.ForceFlush(5s));

    std::lock_guard lock(collector.service.mutex);
    const auto& requests = collector.service.requests;
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(server_count(requests[0]), 5u);  // the failed 3 ride along with the new 2
    EXPECT_EQ(server_count(requests[1]), 4u);
    const auto& first = requests[0].resource_metrics(0).scope_metrics(0).metrics(0).histogram();
    const auto& second = requests[1].resource_metrics(0).scope_metrics(0).metrics(0).histogram();
    EXPECT_EQ(first.aggregation_temporality(), otlp_metrics::AGGREGATION_TEMPORALITY_DELTA);
    // Delta intervals do not overlap: each starts at or after the end of the last one (the
    // empty collection in between moved the start on).
    EXPECT_GT(second.data_points(0).start_time_unix_nano(), first.data_points(0).time_unix_nano());
    EXPECT_LT(second.data_points(0).start_time_unix_nano(), second.data_points(0).time_unix_nano());
}

TEST(PeriodicMetricExporter, RetriesUnavailableUntilTheCollectorAnswers) {
    GrpcMetricsCollector collector;
    collector.service.fail_first = 2;
    auto options = fast_options();
    options.interval = 1h;
    PeriodicMetricExporter exporter(collector_of(red_with(1)),
                                    make_otlp_transport(collector.transport(), OtlpSignal::Metrics),
                                    options);
    ASSERT_TRUE(exporter.ForceFlush(10s));
    EXPECT_EQ(collector.received(), 1u);
    EXPECT_EQ(exporter.counters().retries.load(), 2u);
    EXPECT_EQ(exporter.counters().export_attempts_failed.load(), 2u);
    EXPECT_EQ(exporter.counters().data_points_dropped_failed.load(), 0u);
}

TEST(PeriodicMetricExporter, HttpCollectorDownNeverBlocksAndShutdownIsPrompt) {
    OtlpTransportOptions transport;
    transport.endpoint = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1/metrics";
    transport.timeout = 500ms;
    auto red = red_with(2);
    auto exporter = std::make_unique<PeriodicMetricExporter>(
        collector_of(red), make_otlp_transport(transport, OtlpSignal::Metrics), fast_options());
    std::this_thread::sleep_for(500ms);
    // Recording never waits for the exporter.
    const auto start = std::chrono::steady_clock::now();
    record_more(*red, 1000);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 200ms);
    EXPECT_GT(exporter->counters().export_attempts_failed.load(), 0u);
    EXPECT_GT(exporter->counters().data_points_dropped_failed.load(), 0u);
    const auto stop = std::chrono::steady_clock::now();
    exporter->Shutdown(2s);
    EXPECT_LT(std::chrono::steady_clock::now() - stop, 1500ms);
}

TEST(PeriodicMetricExporter, HttpRetryAfterIsHonoured) {
    LoopbackHttpServer server("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1");
    OtlpTransportOptions transport;
    transport.endpoint = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/metrics";
    auto options = fast_options();
    options.interval = 1h;
    PeriodicMetricExporter exporter(collector_of(red_with(1)),
                                    make_otlp_transport(transport, OtlpSignal::Metrics), options);
    const auto start = std::chrono::steady_clock::now();
    std::thread flush([&] { exporter.ForceFlush(3s); });
    // The backoff alone would retry within 40 ms; the server asked for a second.
    std::this_thread::sleep_for(600ms);
    EXPECT_EQ(server.requests().size(), 1u);
    flush.join();
    EXPECT_GE(server.requests().size(), 2u);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);
}

TEST(PeriodicMetricExporter, NothingRecordedSendsNothing) {
    GrpcMetricsCollector collector;
    PeriodicMetricExporter exporter(collector_of(red_with(0)),
                                    make_otlp_transport(collector.transport(), OtlpSignal::Metrics),
                                    fast_options());
    ASSERT_TRUE(exporter.ForceFlush(2s));
    exporter.Shutdown(1s);
    EXPECT_EQ(collector.received(), 0u);
}

}  // namespace
}  // namespace sonde::exporter::otlp
