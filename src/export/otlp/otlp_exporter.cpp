#include "export/otlp/otlp_exporter.h"

#include <curl/curl.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace sonde::exporter::otlp {

namespace {

std::string local_host_name() {
    char buf[256] = {};
    if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
    return buf;
}

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

std::string lowercase(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool wants_gzip(const OtlpExporterOptions& options) {
    return lowercase(options.compression) == "gzip";
}

size_t collect_body(char* data, size_t size, size_t count, void* user) {
    static_cast<std::string*>(user)->append(data, size * count);
    return size * count;
}

}  // namespace

bool is_retryable_http_status(long status) {
    return status == 429 || status == 502 || status == 503 || status == 504;
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
    int rc = deflate(&zs, Z_FINISH);
    size_t written = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) return {};
    out.resize(written);
    return out;
}

// ---- shared part

OtlpSpanExporterBase::OtlpSpanExporterBase(OtlpExporterOptions options)
    : options_(std::move(options)), random_ids_(make_random_id_source()) {
    if (options_.encoder.host_name.empty()) options_.encoder.host_name = local_host_name();
}

ExportResult OtlpSpanExporterBase::Export(std::span<const pipeline::Span> spans) noexcept {
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
        ExportResult result = send(request, response);
        if (result != ExportResult::Success) {
            stats_.failed_requests.fetch_add(1, std::memory_order_relaxed);
            return result;
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

// ---- OTLP/HTTP

struct OtlpHttpSpanExporter::Curl {
    CURL* handle = nullptr;
    curl_slist* headers = nullptr;
    std::string user_agent = "sonde/" SONDE_VERSION;
    ~Curl() {
        curl_slist_free_all(headers);
        if (handle != nullptr) curl_easy_cleanup(handle);
    }
};

OtlpHttpSpanExporter::OtlpHttpSpanExporter(OtlpExporterOptions options)
    : OtlpSpanExporterBase(std::move(options)), curl_(std::make_unique<Curl>()) {
    static std::once_flag global_init;
    std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_->handle = curl_easy_init();
    if (curl_->handle == nullptr) throw std::runtime_error("otlp: curl_easy_init failed");
    auto append = [this](const std::string& line) {
        curl_slist* next = curl_slist_append(curl_->headers, line.c_str());
        if (next == nullptr) throw std::runtime_error("otlp: out of memory for headers");
        curl_->headers = next;
    };
    append("Content-Type: application/x-protobuf");
    // curl would otherwise wait for "100 Continue" before sending a large body.
    append("Expect:");
    if (wants_gzip(this->options())) append("Content-Encoding: gzip");
    for (const auto& [key, value] : this->options().headers) append(key + ": " + value);
}

OtlpHttpSpanExporter::~OtlpHttpSpanExporter() = default;

ExportResult OtlpHttpSpanExporter::send(
    const otlp_collector_trace::ExportTraceServiceRequest& request,
    otlp_collector_trace::ExportTraceServiceResponse& response) {
    const auto& opts = options();
    std::string body;
    if (!request.SerializeToString(&body)) return ExportResult::Failure;
    if (wants_gzip(opts)) {
        body = gzip_compress(body);
        if (body.empty()) return ExportResult::Failure;
    }
    std::string reply;
    CURL* h = curl_->handle;
    curl_easy_setopt(h, CURLOPT_URL, opts.endpoint.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM from a non-main thread
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, curl_->headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, curl_->user_agent.c_str());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts.timeout.count()));
    if (!opts.certificate_path.empty()) {
        curl_easy_setopt(h, CURLOPT_CAINFO, opts.certificate_path.c_str());
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        spdlog::debug("otlp/http: {}: {}", opts.endpoint, curl_easy_strerror(rc));
        // Connection refused, reset, timeout: the collector may come back.
        return ExportResult::RetryableFailure;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        if (!reply.empty()) response.ParseFromString(reply);  // an unreadable body is no failure
        return ExportResult::Success;
    }
    spdlog::debug("otlp/http: {} answered {}", opts.endpoint, status);
    return is_retryable_http_status(status) ? ExportResult::RetryableFailure
                                            : ExportResult::Failure;
}

// ---- OTLP/gRPC

struct OtlpGrpcSpanExporter::Channel {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<otlp_collector_trace::TraceService::Stub> stub;
};

OtlpGrpcSpanExporter::OtlpGrpcSpanExporter(OtlpExporterOptions options)
    : OtlpSpanExporterBase(std::move(options)), channel_(std::make_unique<Channel>()) {
    std::string target = this->options().endpoint;
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
        if (!this->options().certificate_path.empty()) {
            std::ifstream in(this->options().certificate_path);
            if (!in) {
                throw std::runtime_error("otlp: cannot read certificate " +
                                         this->options().certificate_path);
            }
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
    channel_->channel = grpc::CreateCustomChannel(target, credentials, args);
    channel_->stub = otlp_collector_trace::TraceService::NewStub(channel_->channel);
}

OtlpGrpcSpanExporter::~OtlpGrpcSpanExporter() = default;

ExportResult OtlpGrpcSpanExporter::send(
    const otlp_collector_trace::ExportTraceServiceRequest& request,
    otlp_collector_trace::ExportTraceServiceResponse& response) {
    const auto& opts = options();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + opts.timeout);
    for (const auto& [key, value] : opts.headers) context.AddMetadata(lowercase(key), value);
    if (wants_gzip(opts)) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    grpc::Status status = channel_->stub->Export(&context, request, &response);
    if (status.ok()) return ExportResult::Success;
    spdlog::debug("otlp/grpc: {}: code {} {}", opts.endpoint, int(status.error_code()),
                  status.error_message());
    switch (status.error_code()) {
        case grpc::StatusCode::CANCELLED:
        case grpc::StatusCode::DEADLINE_EXCEEDED:
        case grpc::StatusCode::ABORTED:
        case grpc::StatusCode::OUT_OF_RANGE:
        case grpc::StatusCode::UNAVAILABLE:
        case grpc::StatusCode::DATA_LOSS:
            return ExportResult::RetryableFailure;
        case grpc::StatusCode::RESOURCE_EXHAUSTED:
            // Retryable only when the server sends RetryInfo, which travels in the details.
            return status.error_details().empty() ? ExportResult::Failure
                                                  : ExportResult::RetryableFailure;
        default:
            return ExportResult::Failure;
    }
}

std::unique_ptr<SpanExporter> make_span_exporter(OtlpExporterOptions options) {
    if (options.protocol == OtlpProtocol::Grpc) {
        return std::make_unique<OtlpGrpcSpanExporter>(std::move(options));
    }
    return std::make_unique<OtlpHttpSpanExporter>(std::move(options));
}

}  // namespace sonde::exporter::otlp
