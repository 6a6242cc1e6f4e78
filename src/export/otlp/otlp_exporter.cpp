#include "export/otlp/otlp_exporter.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <vector>

namespace sonde::exporter::otlp {

std::string local_host_name() {
    char buf[256] = {};
    if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
    return buf;
}

namespace {

// Fresh ids for spans that do not carry their own yet. Called only from the exporting thread.
IdSource make_random_id_source() {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    return [rng](const pipeline::Span&) {
        SpanIds ids;
        auto fill = [&](uint8_t* out, size_t n) {
            do {
                for (size_t i = 0; i < n; i += 8) {
                    uint64_t v = (*rng)();
                    for (size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = uint8_t(v >> (8 * j));
                }
            } while (std::all_of(out, out + n, [](uint8_t b) { return b == 0; }));
        };
        fill(ids.trace_id.data(), ids.trace_id.size());
        fill(ids.span_id.data(), ids.span_id.size());
        ids.sampled = true;
        return ids;
    };
}

}  // namespace

OtlpSpanExporter::OtlpSpanExporter(OtlpExporterOptions options)
    : options_(std::move(options)),
      transport_(make_otlp_transport(options_, OtlpSignal::Traces)),
      random_ids_(make_random_id_source()) {
    if (options_.encoder.host_name.empty()) options_.encoder.host_name = local_host_name();
}

ExportResult OtlpSpanExporter::Export(std::span<const pipeline::Span> spans) noexcept {
    if (shutdown_.load()) return ExportResult::Failure;
    if (spans.empty()) return ExportResult::Success;
    try {
        const IdSource& source = options_.ids ? options_.ids : random_ids_;
        std::vector<SpanIds> ids;
        ids.reserve(spans.size());
        for (const auto& span : spans) ids.push_back(source(span));
        otlp_collector_trace::ExportTraceServiceRequest request;
        build_export_request(spans, ids, options_.encoder, &request);

        otlp_collector_trace::ExportTraceServiceResponse response;
        stats_.requests.fetch_add(1, std::memory_order_relaxed);
        const SendResult sent = transport_->send(request, response);
        retry_after_ = sent.retry_after;
        if (sent.result != ExportResult::Success) {
            stats_.failed_requests.fetch_add(1, std::memory_order_relaxed);
            return sent.result;
        }
        stats_.spans_exported.fetch_add(spans.size(), std::memory_order_relaxed);
        if (response.has_partial_success()) {
            const auto& partial = response.partial_success();
            if (partial.rejected_spans() > 0 || !partial.error_message().empty()) {
                // Never retried: the collector has decided about these spans.
                stats_.spans_rejected.fetch_add(
                    static_cast<uint64_t>(std::max<int64_t>(partial.rejected_spans(), 0)),
                    std::memory_order_relaxed);
                spdlog::warn("otlp: collector rejected {} of {} spans: {}",
                             partial.rejected_spans(), spans.size(), partial.error_message());
            }
        }
        return ExportResult::Success;
    } catch (const std::exception& e) {
        stats_.failed_requests.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("otlp: span export failed: {}", e.what());
        return ExportResult::Failure;
    }
}

std::unique_ptr<SpanExporter> make_span_exporter(OtlpExporterOptions options) {
    return std::make_unique<OtlpSpanExporter>(std::move(options));
}

}  // namespace sonde::exporter::otlp
