#include "pipeline/self_metrics.h"

#include <iterator>
#include <string_view>

namespace sonde::pipeline {

namespace {

enum class MetricType { Counter, Gauge };

struct SelfMetricInfo {
    std::atomic<uint64_t> SelfMetrics::*field;
    std::string_view name;  // without the sonde_ prefix and _total suffix
    MetricType type;
    std::string_view help;
};

// One row per field, so a new counter is one line here plus its member.
constexpr SelfMetricInfo kSelfMetrics[] = {
    {&SelfMetrics::events_read, "events_read", MetricType::Counter,
     "Ring-buffer records consumed from the kernel."},
    {&SelfMetrics::events_malformed, "events_malformed", MetricType::Counter,
     "Ring-buffer records dropped for being too short or of an unknown type."},
    {&SelfMetrics::kernel_ringbuf_full, "kernel_ringbuf_full", MetricType::Counter,
     "Events the kernel programs dropped because the ring buffer was full."},
    {&SelfMetrics::kernel_inflight_missing, "kernel_inflight_missing", MetricType::Counter,
     "Syscall exits the kernel programs saw without a matching entry."},
    {&SelfMetrics::kernel_read_user_failed, "kernel_read_user_failed", MetricType::Counter,
     "Payload copies from user memory that failed in the kernel programs."},
    {&SelfMetrics::parse_errors, "parse_errors", MetricType::Counter,
     "Protocol bytes that did not parse."},
    {&SelfMetrics::lost_sync, "lost_sync", MetricType::Counter,
     "Stream gaps that hid a message boundary."},
    {&SelfMetrics::unpaired_responses, "unpaired_responses", MetricType::Counter,
     "Responses seen without a request to pair them with."},
    {&SelfMetrics::dropped_requests, "dropped_requests", MetricType::Counter,
     "Requests discarded before their response arrived."},
    {&SelfMetrics::connections_evicted, "connections_evicted", MetricType::Counter,
     "Connections evicted because the tracker reached its connection cap."},
    {&SelfMetrics::connections_tracked, "connections_tracked", MetricType::Gauge,
     "Connections currently tracked."},
    {&SelfMetrics::spans_produced, "spans_produced", MetricType::Counter,
     "Spans produced from observed requests."},
    {&SelfMetrics::instrumented_processes, "instrumented_processes", MetricType::Gauge,
     "Processes currently instrumented."},
    {&SelfMetrics::metric_series_dropped, "metric_series_dropped", MetricType::Counter,
     "Observations not recorded because the metric series cap was reached."},
    {&SelfMetrics::routes_overflowed, "routes_overflowed", MetricType::Counter,
     "Requests whose route became the overflow route at the per-service route cap."},
    {&SelfMetrics::discovery_problems, "discovery_problems", MetricType::Counter,
     "Unreadable processes, malformed /proc rows and truncated /proc reads in discovery."},
    {&SelfMetrics::spans_exported, "spans_exported", MetricType::Counter,
     "Spans accepted by the OTLP collector."},
    {&SelfMetrics::span_export_dropped_queue_full, "span_export_dropped_queue_full",
     MetricType::Counter, "Spans dropped because the OTLP export queue was full."},
    {&SelfMetrics::span_export_dropped_failed, "span_export_dropped_failed", MetricType::Counter,
     "Spans dropped after their OTLP export failed for good or ran out of retries."},
    {&SelfMetrics::span_export_dropped_timeout, "span_export_dropped_timeout", MetricType::Counter,
     "Spans still queued for OTLP export when shutdown's deadline passed."},
};

// A field added to SelfMetrics without a row above would never be exported.
static_assert(sizeof(SelfMetrics) == std::size(kSelfMetrics) * sizeof(std::atomic<uint64_t>),
              "every SelfMetrics field needs a row in kSelfMetrics");

}  // namespace

void SelfMetrics::render_prometheus(std::string& out) const {
    for (const SelfMetricInfo& metric : kSelfMetrics) {
        std::string name = "sonde_";
        name += metric.name;
        if (metric.type == MetricType::Counter) {
            name += "_total";
        }
        out += "# HELP ";
        out += name;
        out += ' ';
        out += metric.help;
        out += "\n# TYPE ";
        out += name;
        out += metric.type == MetricType::Counter ? " counter\n" : " gauge\n";
        out += name;
        out += ' ';
        out += std::to_string((this->*metric.field).load(std::memory_order_relaxed));
        out += '\n';
    }
}

}  // namespace sonde::pipeline
