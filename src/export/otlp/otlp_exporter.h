// The OTLP span exporter behind the small noexcept interface every Sonde span exporter offers.
// One thread (the batch processor's) calls Export.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "export/otlp/otlp_span_encoding.h"
#include "export/otlp/otlp_transport.h"
#include "pipeline/span.h"

namespace sonde::exporter::otlp {

struct OtlpExporterOptions : OtlpTransportOptions {
    EncoderOptions encoder;
    IdSource ids;  // empty: fresh random ids, every span a sampled root
};

// What an exporter has seen, for the agent's self-metrics and for tests.
struct ExporterStats {
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> failed_requests{0};
    std::atomic<uint64_t> spans_exported{0};
    std::atomic<uint64_t> spans_rejected{0};  // partial success: rejected by the collector
};

class SpanExporter {
public:
    virtual ~SpanExporter() = default;
    virtual ExportResult Export(std::span<const pipeline::Span> spans) noexcept = 0;
    virtual bool ForceFlush(std::chrono::milliseconds timeout) noexcept = 0;
    virtual void Shutdown() noexcept = 0;
    // After a RetryableFailure: how long the collector asked us to wait (zero: it did not say).
    virtual std::chrono::milliseconds retry_after() const noexcept { return {}; }
};

// Encodes spans per the HTTP semantic conventions and sends them over an OtlpTransport.
class OtlpSpanExporter final : public SpanExporter {
public:
    explicit OtlpSpanExporter(OtlpExporterOptions options);
    ExportResult Export(std::span<const pipeline::Span> spans) noexcept override;
    bool ForceFlush(std::chrono::milliseconds) noexcept override { return true; }
    void Shutdown() noexcept override { shutdown_.store(true); }
    std::chrono::milliseconds retry_after() const noexcept override { return retry_after_; }
    const ExporterStats& stats() const { return stats_; }
    const OtlpExporterOptions& options() const { return options_; }

private:
    OtlpExporterOptions options_;
    std::unique_ptr<OtlpTransport> transport_;
    ExporterStats stats_;
    std::atomic<bool> shutdown_{false};
    std::chrono::milliseconds retry_after_{0};
    IdSource random_ids_;
};

std::unique_ptr<SpanExporter> make_span_exporter(OtlpExporterOptions options);

// gethostname(), or "localhost" when it fails: the host.name resource attribute.
std::string local_host_name();

}  // namespace sonde::exporter::otlp
