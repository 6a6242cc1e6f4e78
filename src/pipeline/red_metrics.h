// RED aggregation: HTTP request-duration and body-size histograms and RPC call-duration
// histograms, keyed by the label sets Beyla's Prometheus exporter uses. Thread-safe: the event loop
// records, the Prometheus endpoint renders and the OTLP exporter snapshots.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pipeline/span.h"

namespace sonde::pipeline {

// OpenTelemetry's default explicit bucket boundaries for durations (seconds).
std::vector<double> default_duration_buckets();
// Body-size bucket boundaries (bytes).
std::vector<double> default_size_buckets();

struct HistogramData {
    std::vector<uint64_t> bucket_counts;  // one per boundary, plus +Inf last; not cumulative
    uint64_t count = 0;
    double sum = 0;

    friend bool operator==(const HistogramData&, const HistogramData&) = default;
};

// The values are the index into MetricsSnapshot::families.
enum class MetricFamily : uint8_t {
    ServerDuration,
    ClientDuration,
    ServerRequestBodySize,
    ServerResponseBodySize,
    ClientRequestBodySize,
    ClientResponseBodySize,
    RpcServerDuration,
    RpcClientDuration,
};
inline constexpr size_t kMetricFamilyCount = 8;

// Which label set a family's series carry: HTTP exchanges and RPCs are described by different
// attributes, so they never share a series.
enum class LabelSchema : uint8_t { Http, Rpc };
inline constexpr size_t kLabelSchemaCount = 2;

// What a family observes per span; also picks its bucket layout.
enum class Measure : uint8_t { Duration, RequestBodySize, ResponseBodySize };
inline constexpr size_t kMeasureCount = 3;

// Everything that tells one family from another, in one row: adding a family is adding a row
// (and its enum value), not a case in every exporter.
struct MetricFamilyInfo {
    MetricFamily family;  // pins each row to its index
    LabelSchema schema;
    SpanKind kind;
    Measure measure;
    std::string_view prometheus_name;  // as Beyla's Prometheus exporter names it
    std::string_view otel_name;        // the OTel semantic conventions' instrument name
    std::string_view otel_unit;        // UCUM
    std::string_view help;
};

inline constexpr std::array<MetricFamilyInfo, kMetricFamilyCount> kMetricFamilies = {{
    {MetricFamily::ServerDuration, LabelSchema::Http, SpanKind::Server, Measure::Duration,
     "http_server_request_duration_seconds", "http.server.request.duration", "s",
     "Duration of HTTP requests handled by instrumented servers, in seconds."},
    {MetricFamily::ClientDuration, LabelSchema::Http, SpanKind::Client, Measure::Duration,
     "http_client_request_duration_seconds", "http.client.request.duration", "s",
     "Duration of HTTP requests made by instrumented clients, in seconds."},
    {MetricFamily::ServerRequestBodySize, LabelSchema::Http, SpanKind::Server,
     Measure::RequestBodySize, "http_server_request_body_size_bytes",
     "http.server.request.body.size", "By",
     "Size of HTTP request bodies received by instrumented servers, in bytes."},
    {MetricFamily::ServerResponseBodySize, LabelSchema::Http, SpanKind::Server,
     Measure::ResponseBodySize, "http_server_response_body_size_bytes",
     "http.server.response.body.size", "By",
     "Size of HTTP response bodies sent by instrumented servers, in bytes."},
    {MetricFamily::ClientRequestBodySize, LabelSchema::Http, SpanKind::Client,
     Measure::RequestBodySize, "http_client_request_body_size_bytes",
     "http.client.request.body.size", "By",
     "Size of HTTP request bodies sent by instrumented clients, in bytes."},
    {MetricFamily::ClientResponseBodySize, LabelSchema::Http, SpanKind::Client,
     Measure::ResponseBodySize, "http_client_response_body_size_bytes",
     "http.client.response.body.size", "By",
     "Size of HTTP response bodies received by instrumented clients, in bytes."},
    {MetricFamily::RpcServerDuration, LabelSchema::Rpc, SpanKind::Server, Measure::Duration,
     "rpc_server_call_duration_seconds", "rpc.server.call.duration", "s",
     "Duration of RPCs handled by instrumented servers, in seconds."},
    {MetricFamily::RpcClientDuration, LabelSchema::Rpc, SpanKind::Client, Measure::Duration,
     "rpc_client_call_duration_seconds", "rpc.client.call.duration", "s",
     "Duration of RPCs made by instrumented clients, in seconds."},
}};

constexpr const MetricFamilyInfo& metric_family_info(MetricFamily family) {
    return kMetricFamilies[static_cast<size_t>(family)];
}

// One series' labels, as stored: already made valid UTF-8 and truncated. A series fills the
// fields of its family's schema and leaves the others at their defaults.
struct SeriesLabels {
    // HTTP schema
    std::string method;  // http.request.method
    int status = 0;      // http.response.status_code; 0: no response seen
    std::string route;
    // Both schemas
    std::string server_address;
    uint32_t server_port = 0;
    std::string service_name;
    std::string service_namespace;
    // HTTP schema
    std::string url_scheme;
    // RPC schema
    std::string rpc_system;  // rpc.system.name
    std::string rpc_method;  // rpc.method, already bounded (see pipeline::rpc_method)
    int rpc_status = -1;     // rpc.grpc.status_code; -1: no status seen

    friend bool operator==(const SeriesLabels&, const SeriesLabels&) = default;
};

struct SeriesSnapshot {
    std::string key;  // opaque series identity, stable across snapshots
    SeriesLabels labels;
    HistogramData histogram;  // cumulative since the RedMetrics was created
};

struct FamilySnapshot {
    MetricFamily family{};
    std::vector<double> bounds;  // explicit bounds (no +Inf); bucket_counts has bounds.size()+1
    std::vector<SeriesSnapshot> series;  // sorted by key
};

struct MetricsSnapshot {
    std::array<FamilySnapshot, kMetricFamilyCount> families;  // index = MetricFamily
};

class RedMetrics {
public:
    RedMetrics(std::vector<double> duration_buckets, std::vector<double> request_size_buckets,
               std::vector<double> response_size_buckets, size_t max_series = 10000);
    // Request and response body sizes share one bucket layout. Beware brace literals: in
    // RedMetrics({...}, {...}, {1000}) the `{1000}` binds to max_series here, not to a layout.
    RedMetrics(std::vector<double> duration_buckets, std::vector<double> size_buckets,
               size_t max_series = 10000);

    // An RPC span feeds the RPC families, any other span the HTTP ones; neither is counted in
    // the other's.
    // False when the observation was refused at the series cap (counted in dropped_series).
    bool record(const Span& span);

    // Appends the Prometheus text exposition (format 0.0.4) of every histogram.
    void render_prometheus(std::string& out) const;

    // Every family (including empty ones) with every series recorded so far.
    MetricsSnapshot snapshot() const;

    // Number of series dropped because max_series was reached.
    uint64_t dropped_series() const;

private:
    using SeriesList = std::vector<std::pair<std::string, HistogramData>>;
    // One histogram per measure; a schema's families use some of them, the rest stay empty.
    struct Series {
        std::array<HistogramData, kMeasureCount> histograms;
    };
    // One map per (schema, kind), keyed by the '\x1f'-joined label values in the schema's
    // label order: a lookup per span finds every histogram it feeds.
    static constexpr size_t kSeriesMapCount = kLabelSchemaCount * 2;

    // Copies every family under the lock so callers format outside it.
    std::array<SeriesList, kMetricFamilyCount> copy_series() const;
    const std::vector<double>& bounds_of(MetricFamily family) const;

    mutable std::mutex mutex_;
    // Bucket layouts (index: Measure) never change after construction, so they are read
    // without the lock.
    std::array<std::vector<double>, kMeasureCount> bounds_;
    size_t max_series_;
    size_t series_count_ = 0;  // over all maps: the cap is on the agent's total
    uint64_t dropped_series_ = 0;
    std::array<std::unordered_map<std::string, Series>, kSeriesMapCount> series_;
};

}  // namespace sonde::pipeline
