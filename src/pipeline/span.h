// The span record: one observed request/response, with everything the
// exporters need. Produced by the connection tracker, consumed by the RED
// aggregator, the printer and (later) the OTLP exporter.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

namespace sonde::pipeline {

enum class SpanKind : uint8_t { Server, Client };

// Who the observed process is, resolved once per process by discovery.
struct ServiceIdentity {
    uint32_t pid = 0;
    uint64_t start_time_ticks = 0;  // /proc/PID/stat starttime, for pid-reuse safety
    std::string exe_path;           // /proc/PID/exe target
    std::string exe_name;           // basename of exe_path
    std::string service_name;
    std::string service_namespace;
    // The target's language as OTel names it ("python", "nodejs", "java"), empty when unknown.
    std::string language;
    std::string selector;  // which selector matched, for logs
};

struct NetEndpoint {
    std::string address;  // textual IP ("127.0.0.1", "::1")
    uint16_t port = 0;
};

struct Span {
    SpanKind kind = SpanKind::Server;
    uint64_t start_mono_ns = 0;  // CLOCK_MONOTONIC
    uint64_t end_mono_ns = 0;
    uint64_t start_unix_ns = 0;  // wall clock, derived from the monotonic time
    uint64_t end_unix_ns = 0;
    std::string method;
    std::string path;   // never carries a query string
    std::string route;  // low-cardinality form of path
    int status = 0;
    uint64_t request_body_bytes = 0;
    uint64_t response_body_bytes = 0;
    std::string scheme = "http";
    std::string protocol_version = "1.1";
    NetEndpoint local;
    NetEndpoint peer;
    std::shared_ptr<const ServiceIdentity> service;
    std::string traceparent;  // incoming W3C context, if any (not exported as an attribute)
    std::string tracestate;   // incoming W3C tracestate, if any

    // A gRPC call: exported as an RPC span (rpc.system.name=grpc, rpc.method = path)
    // and counted in rpc.{server,client}.call.duration instead of the HTTP histograms.
    bool rpc = false;
    int rpc_status = -1;        // gRPC status code; -1 when none was seen
    bool stream_reset = false;  // HTTP/2 stream ended by RST_STREAM: an error
    bool partial = false;       // some header fields could not be decoded (HPACK history unknown)

    // Filled by the trace-context decorator (pipeline/trace_decorator.h).
    std::array<uint8_t, 16> trace_id{};
    std::array<uint8_t, 8> span_id{};
    std::array<uint8_t, 8> parent_span_id{};  // all zero: a root span
    bool sampled = true;                      // false: counted in metrics, not traced

    bool has_parent() const { return parent_span_id != std::array<uint8_t, 8>{}; }

    double duration_seconds() const {
        return end_mono_ns > start_mono_ns ? double(end_mono_ns - start_mono_ns) / 1e9 : 0.0;
    }
    // The server's side of the connection: local for server spans, peer for client spans.
    const NetEndpoint& server_endpoint() const { return kind == SpanKind::Server ? local : peer; }
    const NetEndpoint& client_endpoint() const { return kind == SpanKind::Server ? peer : local; }
};

}  // namespace sonde::pipeline
