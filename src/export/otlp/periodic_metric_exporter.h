// Exports the RED histograms over OTLP on a timer, on a thread of its own: the event loop never
// waits for a collector. A failed export is retried with backoff until the next collection is
// due, then given up and counted; with cumulative temporality the next export carries the same
// totals, with delta temporality the undelivered interval rides along in the next delta.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "export/otlp/otlp_metric_encoding.h"
#include "export/otlp/otlp_transport.h"
#include "pipeline/red_metrics.h"

namespace sonde::exporter::otlp {

struct PeriodicMetricExporterOptions {
    EncoderOptions encoder;  // empty host_name: local_host_name()
    Temporality temporality = Temporality::Cumulative;
    std::chrono::milliseconds interval{60000};
    std::chrono::milliseconds initial_backoff{1000};
    std::chrono::milliseconds max_backoff{30000};
    // Start of the cumulative series (the agent's start), Unix ns; 0: when the exporter is made.
    uint64_t start_time_unix_nano = 0;
    uint64_t jitter_seed = 0;  // 0: seeded from std::random_device
};

// Named to match the agent's self-metrics `sonde_metric_export_*`.
struct MetricExportCounters {
    std::atomic<uint64_t> exports{0};  // requests the collector accepted
    std::atomic<uint64_t> data_points_exported{0};
    std::atomic<uint64_t> data_points_rejected{0};  // partial success: refused by the collector
    std::atomic<uint64_t> export_attempts_failed{0};
    std::atomic<uint64_t> retries{0};
    // Data points of collections that were never delivered: rejected for good, or still failing
    // when the next collection was due or shutdown's deadline passed.
    std::atomic<uint64_t> data_points_dropped_failed{0};
};

using MetricsCollector = std::function<pipeline::MetricsSnapshot()>;

class PeriodicMetricExporter {
public:
    PeriodicMetricExporter(MetricsCollector collect, std::unique_ptr<OtlpTransport> transport,
                           PeriodicMetricExporterOptions options);
    ~PeriodicMetricExporter();  // Shutdown with the default timeout
    PeriodicMetricExporter(const PeriodicMetricExporter&) = delete;
    PeriodicMetricExporter& operator=(const PeriodicMetricExporter&) = delete;

    // Collects and exports now; false if that did not finish within `timeout`.
    bool ForceFlush(std::chrono::milliseconds timeout);
    // One last export within `timeout` (a collector that is down is not waited for), then stops.
    void Shutdown(std::chrono::milliseconds timeout = std::chrono::seconds(5));

    const MetricExportCounters& counters() const { return counters_; }

private:
    using Clock = std::chrono::steady_clock;
    void run();
    // Collects, encodes and sends, retrying until `deadline`. Called with the lock held.
    void export_until(Clock::time_point deadline, std::unique_lock<std::mutex>& lock);

    MetricsCollector collect_;
    std::unique_ptr<OtlpTransport> transport_;
    PeriodicMetricExporterOptions options_;
    RetryBackoff backoff_;
    MetricExportCounters counters_;
    DeltaTracker delta_;
    uint64_t interval_start_unix_ns_ = 0;  // delta: end of the last delivered interval
    bool last_export_failed_ = false;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable flushed_;
    bool stopping_ = false;
    bool shut_down_ = false;
    Clock::time_point stop_deadline_{};
    uint64_t flush_requested_ = 0;  // generation counters for ForceFlush
    uint64_t flush_done_ = 0;
    std::mutex shutdown_mutex_;
    std::thread worker_;  // last: started after everything it touches exists
};

}  // namespace sonde::exporter::otlp
