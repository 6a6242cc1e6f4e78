#include "export/otlp/otlp_transport.h"

#include <curl/curl.h>
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.grpc.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace sonde::exporter::otlp {

namespace {

namespace trace_service = opentelemetry::proto::collector::trace::v1;
namespace metrics_service = opentelemetry::proto::collector::metrics::v1;

std::string lowercase(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool wants_gzip(const OtlpTransportOptions& options) {
    return lowercase(options.compression) == "gzip";
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

std::chrono::milliseconds capped(std::chrono::milliseconds delay) {
    return std::clamp(delay, std::chrono::milliseconds(0), kMaxServerRetryDelay);
}

// ---- OTLP/HTTP

struct ReplyCapture {
    std::string body;
    std::string retry_after;  // raw header value, if the server sent one
};

// Bodies of error answers are bounded too: a misbehaving endpoint must not grow our memory.
constexpr size_t kMaxReplyBytes = 1 << 20;

size_t collect_body(char* data, size_t size, size_t count, void* user) {
    auto* capture = static_cast<ReplyCapture*>(user);
    const size_t n = size * count;
    if (capture->body.size() + n > kMaxReplyBytes) return 0;  // curl aborts the transfer
    capture->body.append(data, n);
    return n;
}

size_t collect_header(char* data, size_t size, size_t count, void* user) {
    auto* capture = static_cast<ReplyCapture*>(user);
    const size_t n = size * count;
    std::string_view line(data, n);
    constexpr std::string_view kName = "retry-after:";
    if (line.size() > kName.size() && lowercase(std::string(line.substr(0, kName.size()))) == kName)
        capture->retry_after = std::string(trim(line.substr(kName.size())));
    return n;
}

class HttpTransport final : public OtlpTransport {
public:
    explicit HttpTransport(const OtlpTransportOptions& options) : options_(options) {
        static std::once_flag global_init;
        std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        handle_.reset(curl_easy_init());
        if (!handle_) throw std::runtime_error("otlp: curl_easy_init failed");
        append_header("Content-Type: application/x-protobuf");
        // curl would otherwise wait for "100 Continue" before sending a large body.
        append_header("Expect:");
        if (wants_gzip(options_)) append_header("Content-Encoding: gzip");
        for (const auto& [key, value] : options_.headers) append_header(key + ": " + value);
    }

    SendResult send(const google::protobuf::Message& request,
                    google::protobuf::Message& response) override {
        std::string body;
        if (!request.SerializeToString(&body)) return {ExportResult::Failure, {}};
        if (wants_gzip(options_)) {
            body = gzip_compress(body);
            if (body.empty()) return {ExportResult::Failure, {}};
        }
        ReplyCapture reply;
        CURL* h = handle_.get();
        curl_easy_setopt(h, CURLOPT_URL, options_.endpoint.c_str());
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM from a non-main thread
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers_.get());
        curl_easy_setopt(h, CURLOPT_USERAGENT, "sonde/" SONDE_VERSION);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &collect_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &reply);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.timeout.count()));
        if (!options_.certificate_path.empty())
            curl_easy_setopt(h, CURLOPT_CAINFO, options_.certificate_path.c_str());
        const CURLcode rc = curl_easy_perform(h);
        if (rc != CURLE_OK) {
            spdlog::debug("otlp/http: {}: {}", options_.endpoint, curl_easy_strerror(rc));
            // Connection refused, reset, timeout: the collector may come back.
            return {ExportResult::RetryableFailure, {}};
        }
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            // An unreadable body is no failure: the data was accepted.
            if (!reply.body.empty()) response.ParseFromString(reply.body);
            return {ExportResult::Success, {}};
        }
        spdlog::debug("otlp/http: {} answered {}", options_.endpoint, status);
        if (!is_retryable_http_status(status)) return {ExportResult::Failure, {}};
        SendResult result{ExportResult::RetryableFailure, {}};
        if (auto delay = parse_retry_after(reply.retry_after, std::time(nullptr)))
            result.retry_after = *delay;
        return result;
    }

private:
    void append_header(const std::string& line) {
        curl_slist* next = curl_slist_append(headers_.get(), line.c_str());
        if (next == nullptr) throw std::runtime_error("otlp: out of memory for headers");
        headers_.release();
        headers_.reset(next);
    }

    struct CurlCleanup {
        void operator()(CURL* h) const { curl_easy_cleanup(h); }
    };
    struct SlistFree {
        void operator()(curl_slist* list) const { curl_slist_free_all(list); }
    };

    OtlpTransportOptions options_;
    std::unique_ptr<CURL, CurlCleanup> handle_;
    std::unique_ptr<curl_slist, SlistFree> headers_;
};

// ---- OTLP/gRPC

std::shared_ptr<grpc::Channel> make_channel(const OtlpTransportOptions& options) {
    std::string target = options.endpoint;
    bool tls = false;
    if (target.rfind("https://", 0) == 0) {
        tls = true;
        target.erase(0, 8);
    } else if (target.rfind("http://", 0) == 0) {
        target.erase(0, 7);
    }
    if (auto slash = target.find('/'); slash != std::string::npos) target.resize(slash);

    std::shared_ptr<grpc::ChannelCredentials> credentials;
    if (tls) {
        grpc::SslCredentialsOptions ssl;
        if (!options.certificate_path.empty()) {
            std::ifstream in(options.certificate_path);
            if (!in)
                throw std::runtime_error("otlp: cannot read certificate " +
                                         options.certificate_path);
            std::ostringstream pem;
            pem << in.rdbuf();
            ssl.pem_root_certs = pem.str();
        }
        credentials = grpc::SslCredentials(ssl);
    } else {
        credentials = grpc::InsecureChannelCredentials();
    }
    grpc::ChannelArguments args;
    args.SetUserAgentPrefix("sonde/" SONDE_VERSION);
    // gRPC's own reconnect backoff grows to two minutes by default: after a long collector
    // outage the channel would stay down long after the collector is back. The exporters
    // already back off per request, so the channel only needs to try again promptly.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 500);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
    return grpc::CreateCustomChannel(target, credentials, args);
}

class GrpcTransport final : public OtlpTransport {
public:
    GrpcTransport(const OtlpTransportOptions& options, OtlpSignal signal)
        : options_(options), signal_(signal), channel_(make_channel(options)) {
        if (signal_ == OtlpSignal::Traces)
            traces_ = trace_service::TraceService::NewStub(channel_);
        else
            metrics_ = metrics_service::MetricsService::NewStub(channel_);
    }

    SendResult send(const google::protobuf::Message& request,
                    google::protobuf::Message& response) override {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + options_.timeout);
        for (const auto& [key, value] : options_.headers)
            context.AddMetadata(lowercase(key), value);
        if (wants_gzip(options_)) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
        // The message types follow from the signal the transport was made for.
        const grpc::Status status =
            signal_ == OtlpSignal::Traces
                ? traces_->Export(
                      &context,
                      static_cast<const trace_service::ExportTraceServiceRequest&>(request),
                      &static_cast<trace_service::ExportTraceServiceResponse&>(response))
                : metrics_->Export(
                      &context,
                      static_cast<const metrics_service::ExportMetricsServiceRequest&>(request),
                      &static_cast<metrics_service::ExportMetricsServiceResponse&>(response));
        if (status.ok()) return {ExportResult::Success, {}};
        spdlog::debug("otlp/grpc: {}: code {} {}", options_.endpoint, int(status.error_code()),
                      status.error_message());
        const auto delay = grpc_retry_delay(status.error_details());
        switch (status.error_code()) {
            case grpc::StatusCode::CANCELLED:
            case grpc::StatusCode::DEADLINE_EXCEEDED:
            case grpc::StatusCode::ABORTED:
            case grpc::StatusCode::OUT_OF_RANGE:
            case grpc::StatusCode::UNAVAILABLE:
            case grpc::StatusCode::DATA_LOSS:
                return {ExportResult::RetryableFailure,
                        delay.value_or(std::chrono::milliseconds(0))};
            case grpc::StatusCode::RESOURCE_EXHAUSTED:
                // Retryable only when the server says when, with RetryInfo.
                if (delay) return {ExportResult::RetryableFailure, *delay};
                return {ExportResult::Failure, {}};
            default:
                return {ExportResult::Failure, {}};
        }
    }

private:
    OtlpTransportOptions options_;
    OtlpSignal signal_;
    std::shared_ptr<grpc::Channel> channel_;
    std::unique_ptr<trace_service::TraceService::Stub> traces_;
    std::unique_ptr<metrics_service::MetricsService::Stub> metrics_;
};

}  // namespace

std::unique_ptr<OtlpTransport> make_otlp_transport(const OtlpTransportOptions& options,
                                                   OtlpSignal signal) {
    if (options.protocol == OtlpProtocol::Grpc)
        return std::make_unique<GrpcTransport>(options, signal);
    return std::make_unique<HttpTransport>(options);
}

bool is_retryable_http_status(long status) {
    return status == 429 || status == 502 || status == 503 || status == 504;
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           int64_t now_unix_seconds) {
    value = trim(value);
    if (value.empty() || value.size() > 64) return std::nullopt;
    if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        uint64_t seconds = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
        if (ec == std::errc::result_out_of_range) return kMaxServerRetryDelay;
        if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
        if (seconds > uint64_t(kMaxServerRetryDelay.count() / 1000)) return kMaxServerRetryDelay;
        return std::chrono::milliseconds(seconds * 1000);
    }
    // HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT"); curl_getdate wants a C string.
    const std::string text(value);
    const time_t when = curl_getdate(text.c_str(), nullptr);
    if (when == -1) return std::nullopt;
    const int64_t seconds = int64_t(when) - now_unix_seconds;
    if (seconds <= 0) return std::chrono::milliseconds(0);
    return capped(std::chrono::milliseconds(std::min<int64_t>(seconds, INT64_MAX / 1000) * 1000));
}

std::optional<std::chrono::milliseconds> grpc_retry_delay(std::string_view status_details) {
    if (status_details.empty()) return std::nullopt;
    google::rpc::Status status;
    if (!status.ParseFromArray(status_details.data(), static_cast<int>(status_details.size())))
        return std::nullopt;
    for (const auto& detail : status.details()) {
        google::rpc::RetryInfo info;
        if (!detail.Is<google::rpc::RetryInfo>() || !detail.UnpackTo(&info)) continue;
        const auto& d = info.retry_delay();
        if (d.seconds() < 0 || d.nanos() < 0) return std::chrono::milliseconds(0);
        if (d.seconds() >= kMaxServerRetryDelay.count() / 1000) return kMaxServerRetryDelay;
        return capped(std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1'000'000));
    }
    return std::nullopt;
}

void route_protobuf_logs_to_debug() {
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel level, const char* filename,
                                       int line, const std::string& message) {
        // FATAL aborts right after its handler returns: keep that one visible.
        if (level == google::protobuf::LOGLEVEL_FATAL) {
            spdlog::critical("protobuf {}:{}: {}", filename, line, message);
        } else {
            spdlog::debug("protobuf {}:{}: {}", filename, line, message);
        }
    });
}

RetryBackoff::RetryBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                           uint64_t seed)
    : initial_(initial), max_(max), state_(seed != 0 ? seed : std::random_device{}()) {}

std::chrono::milliseconds RetryBackoff::delay(unsigned attempt) {
    // splitmix64 step: cheap, and seeded per exporter.
    state_ += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    int64_t base = initial_.count();
    const int64_t cap = max_.count();
    for (unsigned i = 0; i < attempt && base < cap; ++i) base *= 2;
    base = std::min(base, cap);
    const int64_t half = base / 2;
    const int64_t jitter = half > 0 ? static_cast<int64_t>(z % static_cast<uint64_t>(half + 1)) : 0;
    return std::chrono::milliseconds(half + jitter);
}

std::string gzip_compress(std::string_view input) {
    z_stream zs{};
    // 15 window bits + 16: write a gzip header and trailer rather than a zlib one.
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        return {};
    }
    std::string out(deflateBound(&zs, static_cast<uLong>(input.size())) + 32, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    zs.avail_in = static_cast<uInt>(input.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    const size_t written = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) return {};
    out.resize(written);
    return out;
}

}  // namespace sonde::exporter::otlp
