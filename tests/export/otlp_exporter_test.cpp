#include "export/otlp/otlp_exporter.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace sonde::exporter::otlp {
namespace {

using namespace std::chrono_literals;

std::vector<pipeline::Span> sample_spans(size_t n) {
    auto service = std::make_shared<pipeline::ServiceIdentity>();
    service->pid = 77;
    service->service_name = "checkout";
    service->exe_name = "checkout";
    std::vector<pipeline::Span> spans(n);
    for (size_t i = 0; i < n; ++i) {
        spans[i].method = "GET";
        spans[i].route = "/items";
        spans[i].path = "/items";
        spans[i].status = 200;
        spans[i].start_unix_ns = 1000 + i;
        spans[i].end_unix_ns = 2000 + i;
        spans[i].service = service;
    }
    return spans;
}

struct FdCloser {
    int fd = -1;
    ~FdCloser() {
        if (fd >= 0) close(fd);
    }
};

// A loopback port nobody listens on: bound, then closed.
uint16_t closed_port() {
    FdCloser s{socket(AF_INET, SOCK_STREAM, 0)};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
}

std::string gunzip(const std::string& in) {
    z_stream zs{};
    EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
    std::string out(1 << 20, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
    out.resize(zs.total_out);
    inflateEnd(&zs);
    return out;
}

// One-request-per-connection HTTP/1.1 server on 127.0.0.1:0 that records what it receives.
class LoopbackHttpServer {
public:
    struct Request {
        std::string head;  // request line and headers, lowercased
        std::string body;
    };

    explicit LoopbackHttpServer(std::string status_line, std::string reply_body = {})
        : status_line_(std::move(status_line)), reply_body_(std::move(reply_body)) {
        listener_.fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(listener_.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(bind(listener_.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        EXPECT_EQ(listen(listener_.fd, 8), 0);
        socklen_t len = sizeof(addr);
        getsockname(listener_.fd, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~LoopbackHttpServer() {
        stop_ = true;
        thread_.join();
    }

    uint16_t port() const { return port_; }
    std::vector<Request> requests() {
        std::lock_guard lock(mutex_);
        return requests_;
    }

private:
    void serve() {
        while (!stop_) {
            pollfd p{listener_.fd, POLLIN, 0};
            if (poll(&p, 1, 20) <= 0) continue;
            FdCloser conn{accept(listener_.fd, nullptr, nullptr)};
            if (conn.fd < 0) continue;
            std::string data;
            char buf[4096];
            size_t head_end = std::string::npos;
            size_t content_length = 0;
            while (true) {
                ssize_t n = recv(conn.fd, buf, sizeof(buf), 0);
                if (n <= 0) break;
                data.append(buf, size_t(n));
                if (head_end == std::string::npos) {
                    head_end = data.find("\r\n\r\n");
                    if (head_end == std::string::npos) continue;
                    std::string head = data.substr(0, head_end);
                    for (auto& c : head) c = char(std::tolower(static_cast<unsigned char>(c)));
                    auto cl = head.find("content-length:");
                    if (cl != std::string::npos) content_length = std::stoul(head.substr(cl + 15));
                }
                if (data.size() >= head_end + 4 + content_length) break;
            }
            Request request;
            request.head = data.substr(0, head_end);
            for (auto& c : request.head) c = char(std::tolower(static_cast<unsigned char>(c)));
            request.body = data.substr(head_end + 4, content_length);
            {
                std::lock_guard lock(mutex_);
                requests_.push_back(std::move(request));
            }
            std::string reply =
                status_line_ + "\r\nContent-Type: application/x-protobuf\r\nContent-Length: " +
                std::to_string(reply_body_.size()) + "\r\nConnection: close\r\n\r\n" + reply_body_;
            send(conn.fd, reply.data(), reply.size(), MSG_NOSIGNAL);
        }
    }

    std::string status_line_;
    std::string reply_body_;
    FdCloser listener_;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<Request> requests_;
    std::thread thread_;
};

TEST(OtlpHttpExporter, PostsProtobufToTheEndpointAsGiven) {
    LoopbackHttpServer server("HTTP/1.1 200 OK");
    OtlpExporterOptions options;
    options.endpoint = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/traces";
    options.headers = {{"Authorization", "Bearer s3cret"}, {"X-Tenant", "a"}};
    options.timeout = 5s;
    OtlpHttpSpanExporter exporter(options);

    const auto spans = sample_spans(3);
    EXPECT_EQ(exporter.Export(spans), ExportResult::Success);
    EXPECT_EQ(exporter.stats().spans_exported.load(), 3u);

    auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    const auto& head = requests[0].head;
    EXPECT_EQ(head.rfind("post /v1/traces http/1.1\r\n", 0), 0u) << head;
    EXPECT_NE(head.find("content-type: application/x-protobuf"), std::string::npos);
    EXPECT_NE(head.find("authorization: bearer s3cret"), std::string::npos);
    EXPECT_NE(head.find("x-tenant: a"), std::string::npos);
    EXPECT_EQ(head.find("content-encoding"), std::string::npos);

    otlp_collector_trace::ExportTraceServiceRequest decoded;
    ASSERT_TRUE(decoded.ParseFromString(requests[0].body));
    ASSERT_EQ(decoded.resource_spans_size(), 1);
    ASSERT_EQ(decoded.resource_spans(0).scope_spans(0).spans_size(), 3);
    const auto& first = decoded.resource_spans(0).scope_spans(0).spans(0);
    EXPECT_EQ(first.name(), "GET /items");
    EXPECT_EQ(first.trace_id().size(), 16u);
    EXPECT_EQ(first.span_id().size(), 8u);
    EXPECT_EQ(first.start_time_unix_nano(), 1000u);
}

TEST(OtlpHttpExporter, GzipBodyWhenAsked) {
    LoopbackHttpServer server("HTTP/1.1 200 OK");
    OtlpExporterOptions options;
    options.endpoint = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/traces";
    options.compression = "gzip";
    OtlpHttpSpanExporter exporter(options);
    EXPECT_EQ(exporter.Export(sample_spans(50)), ExportResult::Success);
    auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_NE(requests[0].head.find("content-encoding: gzip"), std::string::npos);
    otlp_collector_trace::ExportTraceServiceRequest decoded;
    ASSERT_TRUE(decoded.ParseFromString(gunzip(requests[0].body)));
    EXPECT_EQ(decoded.resource_spans(0).scope_spans(0).spans_size(), 50);
}

TEST(OtlpHttpExporter, PartialSuccessIsCountedNotFailed) {
    otlp_collector_trace::ExportTraceServiceResponse reply;
    reply.mutable_partial_success()->set_rejected_spans(2);
    reply.mutable_partial_success()->set_error_message("too old");
    LoopbackHttpServer server("HTTP/1.1 200 OK", reply.SerializeAsString());
    OtlpExporterOptions options;
    options.endpoint = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/traces";
    OtlpHttpSpanExporter exporter(options);
    EXPECT_EQ(exporter.Export(sample_spans(5)), ExportResult::Success);
    EXPECT_EQ(exporter.stats().spans_rejected.load(), 2u);
}

TEST(OtlpHttpExporter, StatusCodesMapToRetryability) {
    for (auto [line, expected] :
         {std::pair{"HTTP/1.1 503 Service Unavailable", ExportResult::RetryableFailure},
          std::pair{"HTTP/1.1 429 Too Many Requests", ExportResult::RetryableFailure},
          std::pair{"HTTP/1.1 400 Bad Request", ExportResult::Failure},
          std::pair{"HTTP/1.1 404 Not Found", ExportResult::Failure}}) {
        LoopbackHttpServer server(line);
        OtlpExporterOptions options;
        options.endpoint = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/traces";
        OtlpHttpSpanExporter exporter(options);
        EXPECT_EQ(exporter.Export(sample_spans(1)), expected) << line;
        EXPECT_EQ(exporter.stats().failed_requests.load(), 1u);
    }
}

TEST(OtlpHttpExporter, ConnectionRefusedIsARetryableFailureWithoutHanging) {
    OtlpExporterOptions options;
    options.endpoint = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1/traces";
    options.timeout = 2s;
    OtlpHttpSpanExporter exporter(options);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(exporter.Export(sample_spans(1)), ExportResult::RetryableFailure);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_EQ(exporter.stats().failed_requests.load(), 1u);
}

TEST(OtlpHttpExporter, SilentCollectorIsBoundedByTheTimeout) {
    // Accepts connections (kernel backlog) but never answers.
    FdCloser listener{socket(AF_INET, SOCK_STREAM, 0)};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(listener.fd, 4), 0);
    socklen_t len = sizeof(addr);
    getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len);
    OtlpExporterOptions options;
    options.endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/v1/traces";
    options.timeout = 300ms;
    OtlpHttpSpanExporter exporter(options);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(exporter.Export(sample_spans(1)), ExportResult::RetryableFailure);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

// In-process TraceService that records requests and metadata.
class RecordingTraceService final : public otlp_collector_trace::TraceService::Service {
public:
    grpc::Status Export(grpc::ServerContext* context,
                        const otlp_collector_trace::ExportTraceServiceRequest* request,
                        otlp_collector_trace::ExportTraceServiceResponse* response) override {
        std::lock_guard lock(mutex);
        requests.push_back(*request);
        auto it = context->client_metadata().find("x-tenant");
        if (it != context->client_metadata().end()) {
            tenant.assign(it->second.data(), it->second.size());
        }
        if (reject) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad");
        return grpc::Status::OK;
    }
    std::mutex mutex;
    std::vector<otlp_collector_trace::ExportTraceServiceRequest> requests;
    std::string tenant;
    bool reject = false;
};

struct GrpcCollector {
    RecordingTraceService service;
    std::unique_ptr<grpc::Server> server;
    int port = 0;
    GrpcCollector() {
        grpc::ServerBuilder builder;
        builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
        builder.RegisterService(&service);
        server = builder.BuildAndStart();
    }
    ~GrpcCollector() { server->Shutdown(std::chrono::system_clock::now() + 1s); }
};

TEST(OtlpGrpcExporter, ExportsToTraceService) {
    GrpcCollector collector;
    ASSERT_GT(collector.port, 0);
    OtlpExporterOptions options;
    options.protocol = OtlpProtocol::Grpc;
    options.endpoint = "http://127.0.0.1:" + std::to_string(collector.port);
    options.headers = {{"X-Tenant", "blue"}};
    options.compression = "gzip";
    options.timeout = 5s;
    auto exporter = make_span_exporter(options);
    EXPECT_EQ(exporter->Export(sample_spans(4)), ExportResult::Success);

    std::lock_guard lock(collector.service.mutex);
    ASSERT_EQ(collector.service.requests.size(), 1u);
    const auto& request = collector.service.requests[0];
    ASSERT_EQ(request.resource_spans_size(), 1);
    EXPECT_EQ(request.resource_spans(0).scope_spans(0).spans_size(), 4);
    EXPECT_EQ(request.resource_spans(0).scope_spans(0).spans(3).name(), "GET /items");
    EXPECT_EQ(collector.service.tenant, "blue");
}

TEST(OtlpGrpcExporter, InvalidArgumentIsNotRetryable) {
    GrpcCollector collector;
    collector.service.reject = true;
    OtlpExporterOptions options;
    options.protocol = OtlpProtocol::Grpc;
    options.endpoint = "127.0.0.1:" + std::to_string(collector.port);
    auto exporter = make_span_exporter(options);
    EXPECT_EQ(exporter->Export(sample_spans(1)), ExportResult::Failure);
}

TEST(OtlpGrpcExporter, UnreachableCollectorIsRetryableWithinTheDeadline) {
    OtlpExporterOptions options;
    options.protocol = OtlpProtocol::Grpc;
    options.endpoint = "http://127.0.0.1:" + std::to_string(closed_port());
    options.timeout = 500ms;
    auto exporter = make_span_exporter(options);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(exporter->Export(sample_spans(1)), ExportResult::RetryableFailure);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(OtlpExporter, GzipRoundTrips) {
    std::string input(10000, 'x');
    input += "tail";
    const auto compressed = gzip_compress(input);
    ASSERT_FALSE(compressed.empty());
    EXPECT_LT(compressed.size(), input.size());
    EXPECT_EQ(gunzip(compressed), input);
}

}  // namespace
}  // namespace sonde::exporter::otlp
