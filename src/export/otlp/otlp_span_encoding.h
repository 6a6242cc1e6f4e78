// Pure conversion of Sonde spans into OTLP trace messages, following the OTel HTTP and RPC
// semantic conventions. No I/O, no clock: the caller supplies ids and the agent-wide resource
// facts.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "pipeline/span.h"

namespace sonde::exporter::otlp {

namespace otlp_trace = opentelemetry::proto::trace::v1;
namespace otlp_common = opentelemetry::proto::common::v1;
namespace otlp_resource = opentelemetry::proto::resource::v1;
namespace otlp_collector_trace = opentelemetry::proto::collector::trace::v1;

// The W3C identity of one span. Until pipeline::Span carries its own ids, an IdSource supplies
// them per span.
struct SpanIds {
    std::array<uint8_t, 16> trace_id{};
    std::array<uint8_t, 8> span_id{};
    std::array<uint8_t, 8> parent_span_id{};  // all zero: a root span
    bool sampled = true;
    bool parent_is_remote = false;  // parent came from an incoming traceparent
    std::string trace_state;        // already validated W3C tracestate, may be empty
};

using IdSource = std::function<SpanIds(const pipeline::Span&)>;

// Facts about the agent and host, the same for every span.
struct EncoderOptions {
    std::string host_name;  // empty: gethostname() at construction of the exporter
    std::string sdk_name = "sonde";
    std::string sdk_version = SONDE_VERSION;
    std::string scope_name = "sonde";
    std::string scope_version = SONDE_VERSION;
};

// HTTP: "GET /users/{id}", or just the method when the route is empty. Methods outside the
// HTTP standard set become "HTTP", as the conventions ask (their cardinality is unbounded).
// RPC: the method, "/helloworld.Greeter/SayHello"; "grpc" when it is unknown or capped.
std::string span_name(const pipeline::Span& span);

// The conventions' method value: the method itself when standard, else "_OTHER".
std::string_view normalized_method(std::string_view method);

// The status is ERROR exactly when pipeline::span_error_type() names an error, which also
// becomes the error.type attribute.
void encode_span(const pipeline::Span& span, const SpanIds& ids, otlp_trace::Span* out);

using KeyValues = google::protobuf::RepeatedPtrField<otlp_common::KeyValue>;

// One attribute appended; shared by the span and metric encoders.
void add_string(KeyValues* attrs, std::string_view key, std::string_view value);
void add_int(KeyValues* attrs, std::string_view key, int64_t value);

// host.name (when known), telemetry.sdk.name and telemetry.sdk.version: the agent facts every
// resource Sonde exports carries, whatever the signal.
void append_agent_attributes(const EncoderOptions& options, KeyValues* attrs);

// service.*, host.name, process.*, telemetry.sdk.*. A span without a service identity gets a
// resource with only the agent facts and service.name "unknown_service".
void encode_resource(const pipeline::ServiceIdentity* service, const EncoderOptions& options,
                     otlp_resource::Resource* out);

// One ResourceSpans per distinct service (same identity object, or same pid + start time), in
// order of first appearance, each with a single ScopeSpans for the agent. `ids[i]` belongs to
// `spans[i]`; both must have the same length.
void build_export_request(std::span<const pipeline::Span> spans, std::span<const SpanIds> ids,
                          const EncoderOptions& options,
                          otlp_collector_trace::ExportTraceServiceRequest* out);

}  // namespace sonde::exporter::otlp
