// RED aggregation: request-duration and body-size histograms keyed by the
// label set Beyla's Prometheus exporter uses. Thread-safe: the event loop
// records, the Prometheus endpoint renders.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
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
};

class RedMetrics {
public:
    RedMetrics(std::vector<double> duration_buckets, std::vector<double> size_buckets,
               size_t max_series = 10000);

    void record(const Span& span);

    // Appends the Prometheus text exposition (format 0.0.4) of every histogram.
    void render_prometheus(std::string& out) const;

    // Number of series dropped because max_series was reached.
    uint64_t dropped_series() const;

private:
    struct Series;
    mutable std::mutex mutex_;
    std::vector<double> duration_buckets_;
    std::vector<double> size_buckets_;
    size_t max_series_;
    uint64_t dropped_series_ = 0;
    // One map per metric family; key: '\x1f'-joined label values, in label order
    std::unordered_map<std::string, HistogramData> histograms_[6];
};

}  // namespace sonde::pipeline
