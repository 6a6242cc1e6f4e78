// Pure conversion of RED metric snapshots into OTLP metric messages, following the OTel HTTP
// and RPC semantic conventions, plus the bookkeeping that turns cumulative snapshots into deltas.
// No I/O, no clock: the caller supplies the timestamps and the agent-wide resource facts.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "export/otlp/otlp_span_encoding.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/metrics/v1/metrics.pb.h"
#include "pipeline/red_metrics.h"

namespace sonde::exporter::otlp {

namespace otlp_metrics = opentelemetry::proto::metrics::v1;
namespace otlp_collector_metrics = opentelemetry::proto::collector::metrics::v1;

enum class Temporality { Cumulative, Delta };

struct MetricsEncodeOptions {
    EncoderOptions encoder;  // host_name must be filled by the caller
    Temporality temporality = Temporality::Cumulative;
    // Cumulative: when the agent started; delta: when the previous export ended.
    uint64_t start_time_unix_nano = 0;
    uint64_t time_unix_nano = 0;
};

// The conventions' instrument name ("http.server.request.duration", "rpc.server.call.duration",
// ...), from pipeline::kMetricFamilies.
std::string_view otel_metric_name(pipeline::MetricFamily family);
// UCUM unit: "s" for durations, "By" for body sizes.
std::string_view otel_metric_unit(pipeline::MetricFamily family);

// One ResourceMetrics per (service_name, service_namespace), in order of first appearance, each
// with a single ScopeMetrics for the agent holding one histogram Metric per family that has data
// for that service, one data point per series. Series with no observations are left out, so an
// all-empty snapshot yields an empty request.
void build_metrics_request(const pipeline::MetricsSnapshot& snapshot,
                           const MetricsEncodeOptions& options,
                           otlp_collector_metrics::ExportMetricsServiceRequest* out);

// Turns successive cumulative snapshots into deltas for delta temporality. The caller commits a
// snapshot only after it was exported successfully, so what a failed export carried is reported
// again, merged into the next delta, instead of being lost.
class DeltaTracker {
public:
    // What changed since the last committed snapshot, per series key: count, sum and bucket
    // differences. Series without new observations are left out; a series that went backwards
    // (its source was reset) or changed bucket layout is reported whole.
    pipeline::MetricsSnapshot delta(const pipeline::MetricsSnapshot& cumulative) const;

    // Makes `cumulative` the baseline of the next delta(). Series absent from it are forgotten,
    // so the baseline never holds more series than the snapshot source does.
    void commit(const pipeline::MetricsSnapshot& cumulative);

private:
    struct FamilyBaseline {
        std::vector<double> bounds;
        std::unordered_map<std::string, pipeline::HistogramData> series;  // by series key
    };
    std::array<FamilyBaseline, pipeline::kMetricFamilyCount> baseline_;
};

}  // namespace sonde::exporter::otlp
