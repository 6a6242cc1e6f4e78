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
    std::string_view help;  // rows of one metric with different labels: only the first's is used
    std::string_view labels = {};  // `reason="queue_full"`
};

// One row per field, so a new counter is one line here plus its member.
constexpr SelfMetricInfo kSelfMetrics[] = {
    {&SelfMetrics::events_read, "events_read", MetricType::Counter,
     "Ring-buffer records consumed from the kernel."},
    {&SelfMetrics::events_malformed, "events_malformed", MetricType::Counter,
     "Ring-buffer records dropped for being too short or of an unknown type."},
    {&SelfMetrics::kernel_ringbuf_full, "kernel_ringbuf_full", MetricType::Counter,
     "Events the kernel programs dropped because the ring buffer was full."},
    {&SelfMetrics::kernel_entry_missing, "kernel_entry_missing", MetricType::Counter,
     "Send-family syscall exits whose entry was not seen (attached mid-call): the record's start "
     "time is its exit time."},
    {&SelfMetrics::kernel_read_user_failed, "kernel_read_user_failed", MetricType::Counter,
     "Payload copies from user memory that failed in the kernel programs."},
    {&SelfMetrics::requests_seen, "requests_seen", MetricType::Counter,
     "Requests whose start a protocol parser saw. Each one is exported, filtered, or counted "
     "by one of the drop counters (dropped_requests, metric_series_dropped, ...)."},
    {&SelfMetrics::requests_exported, "requests_exported", MetricType::Counter,
     "Requests that reached an exporter: recorded in the RED metrics of the Prometheus "
     "endpoint or OTLP metric export, or handed to a span exporter."},
    {&SelfMetrics::requests_filtered, "requests_filtered", MetricType::Counter,
     "Requests left out of every signal on purpose: by `routes.ignored_patterns`, or not "
     "sampled for traces when no metric is exported."},
    {&SelfMetrics::parse_errors_http1, "parse_errors", MetricType::Counter,
     "Protocol bytes that did not parse, by protocol; the parser resynchronised after them.",
     R"(protocol="http1")"},
    {&SelfMetrics::parse_errors_http2, "parse_errors", MetricType::Counter, "",
     R"(protocol="http2")"},
    {&SelfMetrics::connections_unrecognized, "connections_unrecognized", MetricType::Counter,
     "Connections whose first bytes matched no protocol Sonde parses: their bytes are "
     "skipped."},
    {&SelfMetrics::lost_sync, "lost_sync", MetricType::Counter,
     "Stream gaps that hid a message boundary."},
    {&SelfMetrics::partial_exchanges, "partial_exchanges", MetricType::Counter,
     "HTTP/2 requests reported with some header fields undecoded: their connection's HPACK "
     "history predates the agent."},
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
     "Unreadable processes and TLS library files, malformed /proc rows and truncated /proc "
     "reads in discovery."},
    {&SelfMetrics::consumer_yielding, "consumer_yielding", MetricType::Gauge,
     "1 while the thread that drains the ring runs at idle CPU priority (`yield_cpu`), so "
     "that it never holds a CPU the watched programs want; 0 at normal priority."},
    {&SelfMetrics::consumer_priority_raised, "consumer_priority_raised", MetricType::Counter,
     "Times the ring's drain thread got normal CPU priority back because a quarter of the "
     "ring was waiting: the machine had no idle CPU time left for it."},
    {&SelfMetrics::ring_drains, "ring_drains", MetricType::Counter,
     "Times the drain thread woke and emptied the ring. `ring_drain_batch` paces them: about "
     "20 a second at rest, more under load, so that each drain is a short burst of work."},
    {&SelfMetrics::tls_libraries_probed, "tls_libraries_probed", MetricType::Gauge,
     "TLS library files (libssl, or executables with OpenSSL built in) with uprobes attached."},
    {&SelfMetrics::tls_probes_failed, "tls_probes_failed", MetricType::Counter,
     "TLS uprobes the kernel refused to attach."},
    {&SelfMetrics::tls_ciphertext_ignored, "tls_ciphertext_ignored", MetricType::Counter,
     "Syscall records of TLS connections ignored in user space (their cleartext comes from the "
     "TLS probes)."},
    {&SelfMetrics::kernel_tls_ciphertext_skipped, "kernel_tls_ciphertext_skipped",
     MetricType::Counter, "Syscalls on TLS connections the kernel programs did not report."},
    {&SelfMetrics::kernel_tls_socket_unknown, "kernel_tls_socket_unknown", MetricType::Counter,
     "TLS cleartext dropped in the kernel because its socket could not be found."},
    {&SelfMetrics::spans_exported, "spans_exported", MetricType::Counter,
     "Spans accepted by the OTLP collector."},
    {&SelfMetrics::span_export_dropped_queue_full, "span_export_dropped", MetricType::Counter,
     "Spans never delivered over OTLP, by reason: queue_full (the bounded export queue was "
     "full), failed (rejected for good or out of retries), timeout (still queued at shutdown's "
     "deadline), rejected (refused by the collector in a partial success).",
     R"(reason="queue_full")"},
    {&SelfMetrics::span_export_dropped_failed, "span_export_dropped", MetricType::Counter, "",
     R"(reason="failed")"},
    {&SelfMetrics::span_export_dropped_timeout, "span_export_dropped", MetricType::Counter, "",
     R"(reason="timeout")"},
    {&SelfMetrics::span_export_rejected, "span_export_dropped", MetricType::Counter, "",
     R"(reason="rejected")"},
    {&SelfMetrics::metric_exports, "metric_exports", MetricType::Counter,
     "OTLP metric export requests the collector accepted."},
    {&SelfMetrics::metric_points_exported, "metric_points_exported", MetricType::Counter,
     "Histogram data points delivered over OTLP."},
    {&SelfMetrics::metric_export_dropped_failed, "metric_export_dropped", MetricType::Counter,
     "Histogram data points never delivered over OTLP, by reason: failed (the export failed "
     "for good or was still failing when the next one was due; cumulative totals are resent "
     "then), rejected (refused by the collector in a partial success).",
     R"(reason="failed")"},
    {&SelfMetrics::metric_export_rejected, "metric_export_dropped", MetricType::Counter, "",
     R"(reason="rejected")"},
    {&SelfMetrics::metric_export_retries, "metric_export_retries", MetricType::Counter,
     "Retries of failed OTLP metric exports."},
};

// A field added to SelfMetrics without a row above would never be exported.
static_assert(sizeof(SelfMetrics) == std::size(kSelfMetrics) * sizeof(std::atomic<uint64_t>),
              "every SelfMetrics field needs a row in kSelfMetrics");

// The counters of data lost: each one's growth is logged by DropLog.
constexpr std::atomic<uint64_t> SelfMetrics::*kLossCounters[] = {
    &SelfMetrics::events_malformed,           &SelfMetrics::kernel_ringbuf_full,
    &SelfMetrics::kernel_read_user_failed,    &SelfMetrics::parse_errors_http1,
    &SelfMetrics::parse_errors_http2,         &SelfMetrics::lost_sync,
    &SelfMetrics::unpaired_responses,         &SelfMetrics::dropped_requests,
    &SelfMetrics::connections_evicted,        &SelfMetrics::metric_series_dropped,
    &SelfMetrics::kernel_tls_socket_unknown,  &SelfMetrics::span_export_dropped_queue_full,
    &SelfMetrics::span_export_dropped_failed, &SelfMetrics::span_export_dropped_timeout,
    &SelfMetrics::span_export_rejected,       &SelfMetrics::metric_export_dropped_failed,
    &SelfMetrics::metric_export_rejected,
};

const SelfMetricInfo& info_of(std::atomic<uint64_t> SelfMetrics::*field) {
    for (const SelfMetricInfo& metric : kSelfMetrics) {
        if (metric.field == field) return metric;
    }
    return kSelfMetrics[0];  // unreachable: every field has a row (static_assert above)
}

// "sonde_<name>", with "_total" for a counter: the metric's exposed name.
std::string exposed_name(const SelfMetricInfo& metric) {
    std::string name = "sonde_";
    name += metric.name;
    if (metric.type == MetricType::Counter) name += "_total";
    return name;
}

// A sample's name and labels, as a line of the exposition starts.
void append_sample(const SelfMetricInfo& metric, const std::string& name, std::string& out) {
    out += name;
    if (!metric.labels.empty()) {
        out += '{';
        out += metric.labels;
        out += '}';
    }
}

// The help text of a labelled metric is on its first row.
std::string_view help_of(std::string_view name) {
    for (const SelfMetricInfo& metric : kSelfMetrics) {
        if (metric.name == name && !metric.help.empty()) return metric.help;
    }
    return {};
}

}  // namespace

void SelfMetrics::render_prometheus(std::string& out) const {
    std::string_view previous;
    for (const SelfMetricInfo& metric : kSelfMetrics) {
        const std::string name = exposed_name(metric);
        // Rows of one labelled metric are adjacent: one HELP/TYPE header for all of them.
        if (metric.name != previous) {
            out += "# HELP ";
            out += name;
            out += ' ';
            out += metric.help;
            out += "\n# TYPE ";
            out += name;
            out += metric.type == MetricType::Counter ? " counter\n" : " gauge\n";
        }
        previous = metric.name;
        append_sample(metric, name, out);
        out += ' ';
        out += std::to_string((this->*metric.field).load(std::memory_order_relaxed));
        out += '\n';
    }
}

DropLog::DropLog(std::chrono::steady_clock::duration interval)
    : interval_(interval), reported_(std::size(kLossCounters)) {}

std::vector<std::string> DropLog::due(const SelfMetrics& metrics,
                                      std::chrono::steady_clock::time_point now) {
    std::vector<std::string> lines;
    for (size_t i = 0; i < std::size(kLossCounters); ++i) {
        const uint64_t value = (metrics.*kLossCounters[i]).load(std::memory_order_relaxed);
        Reported& last = reported_[i];
        if (value <= last.value || now < last.next) continue;
        const SelfMetricInfo& metric = info_of(kLossCounters[i]);
        std::string line = "data lost: ";
        append_sample(metric, exposed_name(metric), line);
        line +=
            " +" + std::to_string(value - last.value) + " (total " + std::to_string(value) + "): ";
        line += help_of(metric.name);
        lines.push_back(std::move(line));
        last.value = value;
        last.next = now + interval_;
    }
    return lines;
}

}  // namespace sonde::pipeline
