// OTLP span exporters: OTLP/HTTP (protobuf over libcurl) and OTLP/gRPC (grpc++), behind the small
// noexcept interface every Sonde exporter offers. One thread (the batch processor's) calls Export.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "export/otlp/otlp_span_encoding.h"
#include "pipeline/span.h"

namespace sonde::exporter::otlp {

enum class ExportResult {
    Success,
    RetryableFailure,  // transport error or a code the OTLP spec calls retryable
    Failure,           // rejected for good: retrying the same batch cannot help
};

enum class OtlpProtocol { Grpc, HttpProtobuf };

struct OtlpExporterOptions {
    // HTTP: the full URL, used as given (".../v1/traces"). gRPC: "http(s)://host:port" or
    // "host:port" (plaintext).
    std::string endpoint = "http://localhost:4318/v1/traces";
    OtlpProtocol protocol = OtlpProtocol::HttpProtobuf;
    std::map<std::string, std::string> headers;
    std::chrono::milliseconds timeout{10000};
    std::string compression;       // "" / "none" or "gzip"
    std::string certificate_path;  // PEM CA bundle for https endpoints; empty: system roots
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
};

// Shared by both transports: ids, encoding and the per-exporter counters.
class OtlpSpanExporterBase : public SpanExporter {
public:
    explicit OtlpSpanExporterBase(OtlpExporterOptions options);
    ExportResult Export(std::span<const pipeline::Span> spans) noexcept final;
    bool ForceFlush(std::chrono::milliseconds) noexcept override { return true; }
    void Shutdown() noexcept override { shutdown_.store(true); }
    const ExporterStats& stats() const { return stats_; }
    const OtlpExporterOptions& options() const { return options_; }

protected:
    // Sends one request; fills `response` on success.
    virtual ExportResult send(const otlp_collector_trace::ExportTraceServiceRequest& request,
                              otlp_collector_trace::ExportTraceServiceResponse& response) = 0;

private:
    OtlpExporterOptions options_;
    ExporterStats stats_;
    std::atomic<bool> shutdown_{false};
    IdSource random_ids_;
};

class OtlpHttpSpanExporter final : public OtlpSpanExporterBase {
public:
    explicit OtlpHttpSpanExporter(OtlpExporterOptions options);
    ~OtlpHttpSpanExporter() override;
    OtlpHttpSpanExporter(const OtlpHttpSpanExporter&) = delete;
    OtlpHttpSpanExporter& operator=(const OtlpHttpSpanExporter&) = delete;

protected:
    ExportResult send(const otlp_collector_trace::ExportTraceServiceRequest& request,
                      otlp_collector_trace::ExportTraceServiceResponse& response) override;

private:
    struct Curl;
    std::unique_ptr<Curl> curl_;
};

class OtlpGrpcSpanExporter final : public OtlpSpanExporterBase {
public:
    explicit OtlpGrpcSpanExporter(OtlpExporterOptions options);
    ~OtlpGrpcSpanExporter() override;

protected:
    ExportResult send(const otlp_collector_trace::ExportTraceServiceRequest& request,
                      otlp_collector_trace::ExportTraceServiceResponse& response) override;

private:
    struct Channel;
    std::unique_ptr<Channel> channel_;
};

// The exporter for options.protocol.
std::unique_ptr<SpanExporter> make_span_exporter(OtlpExporterOptions options);

// HTTP status codes the OTLP spec says to retry: 429, 502, 503, 504.
bool is_retryable_http_status(long status);

// gzip (RFC 1952) of `input`; empty on failure.
std::string gzip_compress(std::string_view input);

}  // namespace sonde::exporter::otlp
