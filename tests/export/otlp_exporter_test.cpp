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
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "loopback_collectors.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace sonde::exporter::otlp {
namespace {

using namespace std::chrono_literals;
using testing::closed_port;
using testing::FdCloser;
using testing::gunzip;
using testing::LoopbackHttpServer;

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

TEST(OtlpHttpExporter, PostsProtobufToTheEndpointAsGiven) {
    LoopbackHttpServer server("HTTP/1.1 200 OK");
    OtlpExporterOptions options;
    options.endpoint = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/traces";
    options.headers = {{"Authorization", "Bearer s3cret"}, {"X-Tenant", "a"}};
    options.timeout = 5s;
    OtlpSpanExporter exporter(options);

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
    OtlpSpanExporter exporter(options);
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
    OtlpSpanExporter exporter(options);
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
        OtlpSpanExporter exporter(options);
        EXPECT_EQ(exporter.Export(sample_spans(1)), expected) << line;
        EXPECT_EQ(exporter.stats().failed_requests.load(), 1u);
    }
}

TEST(OtlpHttpExporter, ConnectionRefusedIsARetryableFailureWithoutHanging) {
    OtlpExporterOptions options;
    options.endpoint = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1/traces";
    options.timeout = 2s;
    OtlpSpanExporter exporter(options);
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
    OtlpSpanExporter exporter(options);
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

TEST(OtlpHttpExporter, RetryAfterIsReported) {
    // The status line carries the extra header: the loopback server writes it as given.
    LoopbackHttpServer server("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7");
    OtlpExporterOptions options;
    options.endpoint = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/traces";
    OtlpSpanExporter exporter(options);
    EXPECT_EQ(exporter.Export(sample_spans(1)), ExportResult::RetryableFailure);
    EXPECT_EQ(exporter.retry_after(), 7s);
}

// Answers every export with `code` and, when `retry_delay` is set, a RetryInfo detail.
class RetryInfoTraceService final : public otlp_collector_trace::TraceService::Service {
public:
    RetryInfoTraceService(grpc::StatusCode code, std::optional<std::chrono::seconds> retry_delay)
        : code_(code), retry_delay_(retry_delay) {}
    grpc::Status Export(grpc::ServerContext*,
                        const otlp_collector_trace::ExportTraceServiceRequest*,
                        otlp_collector_trace::ExportTraceServiceResponse*) override {
        if (!retry_delay_) return grpc::Status(code_, "busy");
        google::rpc::RetryInfo info;
        info.mutable_retry_delay()->set_seconds(retry_delay_->count());
        google::rpc::Status details;
        details.set_code(int(code_));
        details.set_message("busy");
        details.add_details()->PackFrom(info);
        return grpc::Status(code_, "busy", details.SerializeAsString());
    }

private:
    grpc::StatusCode code_;
    std::optional<std::chrono::seconds> retry_delay_;
};

TEST(OtlpGrpcExporter, RetryInfoDecidesRetryabilityAndDelay) {
    struct Case {
        grpc::StatusCode code;
        std::optional<std::chrono::seconds> retry_delay;
        ExportResult expected;
        std::chrono::milliseconds expected_delay;
    };
    for (const Case& c : {
             Case{grpc::StatusCode::RESOURCE_EXHAUSTED, 3s, ExportResult::RetryableFailure, 3s},
             Case{grpc::StatusCode::RESOURCE_EXHAUSTED, std::nullopt, ExportResult::Failure, 0s},
             Case{grpc::StatusCode::UNAVAILABLE, 2s, ExportResult::RetryableFailure, 2s},
             Case{grpc::StatusCode::UNAVAILABLE, std::nullopt, ExportResult::RetryableFailure, 0s},
         }) {
        RetryInfoTraceService service(c.code, c.retry_delay);
        grpc::ServerBuilder builder;
        int port = 0;
        builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
        builder.RegisterService(&service);
        auto server = builder.BuildAndStart();
        OtlpExporterOptions options;
        options.protocol = OtlpProtocol::Grpc;
        options.endpoint = "127.0.0.1:" + std::to_string(port);
        OtlpSpanExporter exporter(options);
        EXPECT_EQ(exporter.Export(sample_spans(1)), c.expected) << int(c.code);
        EXPECT_EQ(exporter.retry_after(), c.expected_delay) << int(c.code);
        server->Shutdown(std::chrono::system_clock::now() + 1s);
    }
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
