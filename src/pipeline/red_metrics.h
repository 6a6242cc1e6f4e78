// RED aggregation: request-duration and body-size histograms keyed by the
// label set Beyla's Prometheus exporter uses. Thread-safe: the event loop
// records, the Prometheus endpoint renders and the OTLP exporter snapshots.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
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
};
inline constexpr size_t kMetricFamilyCount = 6;

// One series' labels, as stored: already made valid UTF-8 and truncated.
struct SeriesLabels {
    std::string method;  // http.request.method
    int status = 0;      // http.response.status_code
    std::string route;
    std::string server_address;
    uint32_t server_port = 0;
    std::string service_name;
    std::string service_namespace;
    std::string url_scheme;

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

    void record(const Span& span);

    // Appends the Prometheus text exposition (format 0.0.4) of every histogram.
    void render_prometheus(std::string& out) const;

    // Every family (including empty ones) with every series recorded so far.
    MetricsSnapshot snapshot() const;

    // Number of series dropped because max_series was reached.
    uint64_t dropped_series() const;

private:
    using SeriesList = std::vector<std::pair<std::string, HistogramData>>;

    // Copies every family under the lock so callers format outside it.
    std::array<SeriesList, kMetricFamilyCount> copy_series() const;
    const std::vector<double>& bounds_of(MetricFamily family) const;

    mutable std::mutex mutex_;
    // Bucket layouts never change after construction, so they are read without the lock.
    std::vector<double> duration_buckets_;
    std::vector<double> request_size_buckets_;
    std::vector<double> response_size_buckets_;
    size_t max_series_;
    uint64_t dropped_series_ = 0;
    // The three histograms of one label set (one lookup per request records all three).
    struct RequestSeries {
        HistogramData duration;
        HistogramData request_size;
        HistogramData response_size;
    };
    static constexpr size_t kServerSeries = 0;
    static constexpr size_t kClientSeries = 1;
    // Server and client label sets; key: '\x1f'-joined label values, in label order.
    std::array<std::unordered_map<std::string, RequestSeries>, 2> series_;
};

}  // namespace sonde::pipeline
