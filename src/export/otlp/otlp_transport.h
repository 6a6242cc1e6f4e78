// How one OTLP request reaches a collector: OTLP/HTTP (protobuf over libcurl) or OTLP/gRPC
// (grpc++), for either signal. Exporters encode, a transport delivers and classifies the answer
// the way the OTLP specification asks (what is retryable, and when the server wants the retry).
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sonde::exporter::otlp {

enum class ExportResult {
    Success,
    RetryableFailure,  // transport error or a code the OTLP spec calls retryable
    Failure,           // rejected for good: retrying the same batch cannot help
};

enum class OtlpProtocol { Grpc, HttpProtobuf };

enum class OtlpSignal { Traces, Metrics };

struct OtlpTransportOptions {
    // HTTP: the full URL, used as given (".../v1/traces"). gRPC: "http(s)://host:port" or
    // "host:port" (plaintext).
    std::string endpoint = "http://localhost:4318/v1/traces";
    OtlpProtocol protocol = OtlpProtocol::HttpProtobuf;
    std::map<std::string, std::string> headers;
    std::chrono::milliseconds timeout{10000};
    std::string compression;       // "" / "none" or "gzip"
    std::string certificate_path;  // PEM CA bundle for https endpoints; empty: system roots
};

struct SendResult {
    ExportResult result = ExportResult::Failure;
    // The server's own retry delay (HTTP Retry-After, gRPC RetryInfo); zero when it gave none.
    std::chrono::milliseconds retry_after{0};
};

// One per exporter; used by one thread at a time.
class OtlpTransport {
public:
    virtual ~OtlpTransport() = default;
    // Sends `request` (an Export*ServiceRequest of the transport's signal); on success `response`
    // holds the collector's answer (partial success), left empty when it sent none.
    virtual SendResult send(const google::protobuf::Message& request,
                            google::protobuf::Message& response) = 0;
};

// Throws std::runtime_error when the transport cannot be set up (unreadable certificate, curl
// initialisation failure).
std::unique_ptr<OtlpTransport> make_otlp_transport(const OtlpTransportOptions& options,
                                                   OtlpSignal signal);

// HTTP status codes the OTLP spec says to retry: 429, 502, 503, 504.
bool is_retryable_http_status(long status);

// The delay a Retry-After header value asks for: delta-seconds or an HTTP-date relative to
// `now_unix_seconds`. nullopt for anything else; capped at kMaxServerRetryDelay.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           int64_t now_unix_seconds);

// The RetryInfo delay inside a gRPC error's serialized google.rpc.Status details; nullopt when
// there is none or the bytes do not parse. Capped at kMaxServerRetryDelay.
std::optional<std::chrono::milliseconds> grpc_retry_delay(std::string_view status_details);

// Protobuf writes its own complaints about what it parses (a collector's google.rpc.Status
// with strings that are not UTF-8, ...) to stderr, one line per reply: a broken or hostile
// collector could flood the agent's log. This sends them to the agent's log at debug level.
// Protobuf's handler is process-wide and not thread-safe: call once, before threads start.
void route_protobuf_logs_to_debug();

// A collector may ask for long pauses, but an agent that waits an hour loses an hour of data
// for one bad answer.
inline constexpr std::chrono::milliseconds kMaxServerRetryDelay{std::chrono::minutes(5)};

// Delay before retry number `attempt` (0 first): initial · 2^attempt, capped at `max`, then drawn
// uniformly from its upper half, so that agents that failed together do not retry together.
// Seed 0: from std::random_device.
class RetryBackoff {
public:
    RetryBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, uint64_t seed);
    std::chrono::milliseconds delay(unsigned attempt);

private:
    std::chrono::milliseconds initial_;
    std::chrono::milliseconds max_;
    uint64_t state_;
};

// gzip (RFC 1952) of `input`; empty on failure.
std::string gzip_compress(std::string_view input);

}  // namespace sonde::exporter::otlp
