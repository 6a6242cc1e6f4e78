#include "export/otlp/otlp_metric_encoding.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "pipeline/span_semantics.h"

namespace sonde::exporter::otlp {

namespace {

using pipeline::HistogramData;
using pipeline::MetricFamily;
void encode_metrics_resource(std::string_view service_name, std::string_view service_namespace,
                             const EncoderOptions& options, otlp_resource::Resource* out) {
    auto* attrs = out->mutable_attributes();
    // Metrics are aggregated per service name, not per process, so unlike span resources there
    // is no process.* or service.instance.id to add, nor the target's language (span resources
    // carry it as telemetry.sdk.language, as Beyla does; processes of one name may differ).
    add_string(attrs, "service.name", service_name.empty() ? "unknown_service" : service_name);
    if (!service_namespace.empty()) add_string(attrs, "service.namespace", service_namespace);
    append_agent_attributes(options, attrs);
}

// Attributes follow the conventions' HTTP and RPC metrics; a label RedMetrics could not fill
// (HTTP status 0 or gRPC status -1: no response was seen; an unknown address or port) is left
// out rather than sent as a value that means nothing, as the span encoder does.
void encode_http_attributes(const pipeline::SeriesLabels& labels, KeyValues* attrs) {
    add_string(attrs, "http.request.method", labels.method);
    if (labels.status != 0) add_int(attrs, "http.response.status_code", labels.status);
    if (!labels.route.empty()) add_string(attrs, "http.route", labels.route);
    if (!labels.server_address.empty()) add_string(attrs, "server.address", labels.server_address);
    if (labels.server_port != 0) add_int(attrs, "server.port", labels.server_port);
    if (!labels.url_scheme.empty()) add_string(attrs, "url.scheme", labels.url_scheme);
}

void encode_rpc_attributes(const pipeline::SeriesLabels& labels, KeyValues* attrs) {
    add_string(attrs, "rpc.system.name", labels.rpc_system);
    if (!labels.rpc_method.empty()) add_string(attrs, "rpc.method", labels.rpc_method);
    if (labels.rpc_status >= 0) {
        add_string(attrs, "rpc.response.status_code",
                   pipeline::grpc_status_text(labels.rpc_status));
        // Not in the stable conventions, but what Beyla's dashboards group by.
        add_int(attrs, "rpc.grpc.status_code", labels.rpc_status);
    }
    if (!labels.server_address.empty()) add_string(attrs, "server.address", labels.server_address);
    if (labels.server_port != 0) add_int(attrs, "server.port", labels.server_port);
}

void encode_point(const pipeline::SeriesSnapshot& series, const pipeline::FamilySnapshot& family,
                  const MetricsEncodeOptions& options, otlp_metrics::HistogramDataPoint* out) {
    const std::vector<double>& bounds = family.bounds;
    switch (pipeline::metric_family_info(family.family).schema) {
        case pipeline::LabelSchema::Http:
            encode_http_attributes(series.labels, out->mutable_attributes());
            break;
        case pipeline::LabelSchema::Rpc:
            encode_rpc_attributes(series.labels, out->mutable_attributes());
            break;
    }

    out->set_start_time_unix_nano(options.start_time_unix_nano);
    out->set_time_unix_nano(options.time_unix_nano);
    out->set_count(series.histogram.count);
    out->set_sum(series.histogram.sum);
    out->mutable_bucket_counts()->Add(series.histogram.bucket_counts.begin(),
                                      series.histogram.bucket_counts.end());
    out->mutable_explicit_bounds()->Add(bounds.begin(), bounds.end());
}

otlp_metrics::AggregationTemporality to_proto(Temporality temporality) {
    return temporality == Temporality::Delta ? otlp_metrics::AGGREGATION_TEMPORALITY_DELTA
                                             : otlp_metrics::AGGREGATION_TEMPORALITY_CUMULATIVE;
}

// A cumulative series can only grow; anything else means its source started over (an agent
// restart behind the same keys, or a different bucket layout), so the baseline no longer
// applies.
bool went_backwards(const HistogramData& now, const HistogramData& before) {
    if (now.count < before.count || now.bucket_counts.size() != before.bucket_counts.size()) {
        return true;
    }
    for (size_t b = 0; b < now.bucket_counts.size(); ++b) {
        if (now.bucket_counts[b] < before.bucket_counts[b]) return true;
    }
    return false;
}

// nullopt: nothing new to report.
std::optional<HistogramData> difference(const HistogramData& now, const HistogramData* before) {
    if (before == nullptr || went_backwards(now, *before)) {
        if (now.count == 0) return std::nullopt;
        return now;
    }
    if (now.count == before->count) return std::nullopt;
    HistogramData delta;
    delta.count = now.count - before->count;
    // Both sums are running totals of non-negative values, so this is not negative either.
    delta.sum = now.sum - before->sum;
    delta.bucket_counts.resize(now.bucket_counts.size());
    for (size_t b = 0; b < now.bucket_counts.size(); ++b) {
        delta.bucket_counts[b] = now.bucket_counts[b] - before->bucket_counts[b];
    }
    return delta;
}

}  // namespace

std::string_view otel_metric_name(MetricFamily family) {
    return pipeline::metric_family_info(family).otel_name;
}

std::string_view otel_metric_unit(MetricFamily family) {
    return pipeline::metric_family_info(family).otel_unit;
}

void build_metrics_request(const pipeline::MetricsSnapshot& snapshot,
                           const MetricsEncodeOptions& options,
                           otlp_collector_metrics::ExportMetricsServiceRequest* out) {
    struct ServiceGroup {
        otlp_metrics::ScopeMetrics* scope = nullptr;
        // Filled on a family's first series for this service, so a Metric is never empty.
        std::array<otlp_metrics::Histogram*, pipeline::kMetricFamilyCount> histograms{};
    };
    // Keyed by views into `snapshot`, which outlives this call. Protobuf repeated message fields
    // keep their elements in place as they grow, so the stored pointers stay valid.
    std::map<std::pair<std::string_view, std::string_view>, ServiceGroup> groups;
    for (size_t f = 0; f < snapshot.families.size(); ++f) {
        const pipeline::FamilySnapshot& family = snapshot.families[f];
        for (const pipeline::SeriesSnapshot& series : family.series) {
            if (series.histogram.count == 0) continue;
            // A point whose bucket counts do not match the bounds makes a receiver reject the
            // whole request; RedMetrics and DeltaTracker never produce one.
            if (series.histogram.bucket_counts.size() != family.bounds.size() + 1) continue;
            auto [it, inserted] =
                groups.try_emplace({series.labels.service_name, series.labels.service_namespace});
            ServiceGroup& group = it->second;
            if (inserted) {
                auto* resource_metrics = out->add_resource_metrics();
                encode_metrics_resource(series.labels.service_name, series.labels.service_namespace,
                                        options.encoder, resource_metrics->mutable_resource());
                group.scope = resource_metrics->add_scope_metrics();
                group.scope->mutable_scope()->set_name(options.encoder.scope_name);
                group.scope->mutable_scope()->set_version(options.encoder.scope_version);
            }
            otlp_metrics::Histogram*& histogram = group.histograms[f];
            if (histogram == nullptr) {
                auto* metric = group.scope->add_metrics();
                metric->set_name(std::string(otel_metric_name(family.family)));
                metric->set_unit(std::string(otel_metric_unit(family.family)));
                histogram = metric->mutable_histogram();
                histogram->set_aggregation_temporality(to_proto(options.temporality));
            }
            encode_point(series, family, options, histogram->add_data_points());
        }
    }
}

pipeline::MetricsSnapshot DeltaTracker::delta(const pipeline::MetricsSnapshot& cumulative) const {
    pipeline::MetricsSnapshot out;
    for (size_t f = 0; f < cumulative.families.size(); ++f) {
        const pipeline::FamilySnapshot& now = cumulative.families[f];
        const FamilyBaseline& before = baseline_[f];
        pipeline::FamilySnapshot& delta = out.families[f];
        delta.family = now.family;
        delta.bounds = now.bounds;
        // Counts against other bounds cannot be subtracted bucket by bucket.
        const bool comparable = before.bounds == now.bounds;
        for (const pipeline::SeriesSnapshot& series : now.series) {
            const HistogramData* previous = nullptr;
            if (comparable) {
                const auto it = before.series.find(series.key);
                if (it != before.series.end()) previous = &it->second;
            }
            std::optional<HistogramData> changed = difference(series.histogram, previous);
            if (!changed) continue;
            delta.series.push_back({series.key, series.labels, std::move(*changed)});
        }
    }
    return out;
}

void DeltaTracker::commit(const pipeline::MetricsSnapshot& cumulative) {
    for (size_t f = 0; f < cumulative.families.size(); ++f) {
        const pipeline::FamilySnapshot& now = cumulative.families[f];
        FamilyBaseline& baseline = baseline_[f];
        baseline.bounds = now.bounds;
        // Rebuilt rather than merged: series the source no longer has must not linger.
        baseline.series.clear();
        baseline.series.reserve(now.series.size());
        for (const pipeline::SeriesSnapshot& series : now.series) {
            baseline.series.insert_or_assign(series.key, series.histogram);
        }
    }
}

}  // namespace sonde::exporter::otlp
