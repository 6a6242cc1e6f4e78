#include "export/otlp/otlp_span_encoding.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "pipeline/span_semantics.h"

namespace sonde::exporter::otlp {

void add_string(KeyValues* attrs, std::string_view key, std::string_view value) {
    auto* kv = attrs->Add();
    kv->set_key(std::string(key));
    kv->mutable_value()->set_string_value(std::string(value));
}

void add_int(KeyValues* attrs, std::string_view key, int64_t value) {
    auto* kv = attrs->Add();
    kv->set_key(std::string(key));
    kv->mutable_value()->set_int_value(value);
}

namespace {

bool all_zero(std::span<const uint8_t> bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

bool same_service(const pipeline::ServiceIdentity* a, const pipeline::ServiceIdentity* b) {
    if (a == b) return true;
    if (a == nullptr || b == nullptr) return false;
    return a->pid == b->pid && a->start_time_ticks == b->start_time_ticks &&
           a->service_name == b->service_name && a->service_namespace == b->service_namespace;
}

// Bits of Span.flags above the W3C trace flags (OTLP SpanFlags).
constexpr uint32_t kFlagContextHasIsRemote = 0x100;
constexpr uint32_t kFlagContextIsRemote = 0x200;

}  // namespace

std::string_view normalized_method(std::string_view method) {
    static constexpr std::array<std::string_view, 9> kKnown = {
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (auto known : kKnown) {
        if (method == known) return known;
    }
    return "_OTHER";
}

std::string span_name(const pipeline::Span& span) {
    if (span.rpc) {
        // The conventions fall back to the system's name when the method is unknown or was
        // capped to _OTHER: a span name must stay low-cardinality.
        const std::string_view method = pipeline::rpc_method(span);
        return std::string(method.empty() || method == pipeline::kOtherRpcMethod
                               ? pipeline::kRpcSystemGrpc
                               : method);
    }
    std::string_view method = normalized_method(span.method);
    std::string name(method == "_OTHER" ? std::string_view("HTTP") : method);
    if (!span.route.empty()) {
        name += ' ';
        name += span.route;
    }
    return name;
}

namespace {

void encode_http_attributes(const pipeline::Span& span, KeyValues* attrs) {
    const bool server = span.kind == pipeline::SpanKind::Server;
    std::string_view method = normalized_method(span.method);
    add_string(attrs, "http.request.method", method);
    // An undecodable method (a partial HTTP/2 header block) has no original to report.
    if (method == "_OTHER" && !span.method.empty()) {
        add_string(attrs, "http.request.method_original", span.method);
    }
    if (span.status > 0) add_int(attrs, "http.response.status_code", span.status);
    if (server && !span.route.empty()) add_string(attrs, "http.route", span.route);
    add_string(attrs, "url.path", span.path);
    add_string(attrs, "url.scheme", span.scheme);
}

// gRPC, per the conventions. The HTTP/2 request underneath is not described again: its
// method is always POST and its path is the method.
void encode_rpc_attributes(const pipeline::Span& span, KeyValues* attrs) {
    add_string(attrs, "rpc.system.name", pipeline::kRpcSystemGrpc);
    const std::string_view method = pipeline::rpc_method(span);
    if (!method.empty()) add_string(attrs, "rpc.method", method);
    // The conventions ask for the method as called whenever rpc.method is not it.
    if (method == pipeline::kOtherRpcMethod && span.path != method) {
        add_string(attrs, "rpc.method_original", span.path);
    }
    if (span.rpc_status >= 0) {
        add_string(attrs, "rpc.response.status_code", pipeline::grpc_status_text(span.rpc_status));
        // Not in the stable conventions, but what Beyla's users query.
        add_int(attrs, "rpc.grpc.status_code", span.rpc_status);
    }
}

}  // namespace

void encode_span(const pipeline::Span& span, const SpanIds& ids, otlp_trace::Span* out) {
    const bool server = span.kind == pipeline::SpanKind::Server;
    out->set_trace_id(ids.trace_id.data(), ids.trace_id.size());
    out->set_span_id(ids.span_id.data(), ids.span_id.size());
    if (!all_zero(ids.parent_span_id)) {
        out->set_parent_span_id(ids.parent_span_id.data(), ids.parent_span_id.size());
    }
    if (!ids.trace_state.empty()) out->set_trace_state(ids.trace_state);
    uint32_t flags = ids.sampled ? 0x01 : 0x00;
    if (!all_zero(ids.parent_span_id)) {
        flags |= kFlagContextHasIsRemote;
        if (ids.parent_is_remote) flags |= kFlagContextIsRemote;
    }
    out->set_flags(flags);
    out->set_name(span_name(span));
    out->set_kind(server ? otlp_trace::Span::SPAN_KIND_SERVER : otlp_trace::Span::SPAN_KIND_CLIENT);
    out->set_start_time_unix_nano(span.start_unix_ns);
    out->set_end_time_unix_nano(std::max(span.end_unix_ns, span.start_unix_ns));

    auto* attrs = out->mutable_attributes();
    if (span.rpc) {
        encode_rpc_attributes(span, attrs);
    } else {
        encode_http_attributes(span, attrs);
    }
    const auto& srv = span.server_endpoint();
    // url.full is left out on purpose: only metadata leaves the node, and a
    // full URL is where secrets and personal data hide.
    if (!srv.address.empty()) add_string(attrs, "server.address", srv.address);
    if (srv.port != 0) add_int(attrs, "server.port", srv.port);
    if (server && !span.peer.address.empty()) {
        add_string(attrs, "client.address", span.peer.address);
    }
    if (!span.peer.address.empty()) add_string(attrs, "network.peer.address", span.peer.address);
    if (span.peer.port != 0) add_int(attrs, "network.peer.port", span.peer.port);
    // HTTP spans leave the protocol name implied by their http.* attributes; an RPC span
    // names the transport its version belongs to.
    if (span.rpc) add_string(attrs, "network.protocol.name", "http");
    if (!span.protocol_version.empty()) {
        add_string(attrs, "network.protocol.version", span.protocol_version);
    }
    if (!span.rpc) {
        add_int(attrs, "http.request.body.size", static_cast<int64_t>(span.request_body_bytes));
        add_int(attrs, "http.response.body.size", static_cast<int64_t>(span.response_body_bytes));
    }
    // Sonde's own: the values above that could not be decoded are missing, not empty.
    if (span.partial) {
        auto* kv = attrs->Add();
        kv->set_key("sonde.partial");
        kv->mutable_value()->set_bool_value(true);
    }

    if (const std::string error = pipeline::span_error_type(span); !error.empty()) {
        add_string(attrs, "error.type", error);
        out->mutable_status()->set_code(otlp_trace::Status::STATUS_CODE_ERROR);
    }
}

void append_agent_attributes(const EncoderOptions& options, KeyValues* attrs) {
    if (!options.host_name.empty()) add_string(attrs, "host.name", options.host_name);
    add_string(attrs, "telemetry.sdk.name", options.sdk_name);
    add_string(attrs, "telemetry.sdk.version", options.sdk_version);
}

void encode_resource(const pipeline::ServiceIdentity* service, const EncoderOptions& options,
                     otlp_resource::Resource* out) {
    auto* attrs = out->mutable_attributes();
    if (service != nullptr) {
        add_string(attrs, "service.name",
                   service->service_name.empty() ? "unknown_service:" + service->exe_name
                                                 : service->service_name);
        if (!service->service_namespace.empty()) {
            add_string(attrs, "service.namespace", service->service_namespace);
        }
        add_string(attrs, "service.instance.id",
                   options.host_name + ":" + std::to_string(service->pid));
        add_int(attrs, "process.pid", service->pid);
        if (!service->exe_name.empty()) {
            add_string(attrs, "process.executable.name", service->exe_name);
        }
        if (!service->exe_path.empty()) {
            add_string(attrs, "process.executable.path", service->exe_path);
        }
        // As Beyla does: the agent stands in for the target's SDK, so the language is the
        // target's, and only when discovery knows it.
        if (!service->language.empty()) {
            add_string(attrs, "telemetry.sdk.language", service->language);
        }
    } else {
        add_string(attrs, "service.name", "unknown_service");
    }
    append_agent_attributes(options, attrs);
}

void build_export_request(std::span<const pipeline::Span> spans, std::span<const SpanIds> ids,
                          const EncoderOptions& options,
                          otlp_collector_trace::ExportTraceServiceRequest* out) {
    const size_t n = std::min(spans.size(), ids.size());
    // Few services per batch: a linear scan over the groups beats hashing here.
    std::vector<std::pair<const pipeline::ServiceIdentity*, otlp_trace::ScopeSpans*>> groups;
    for (size_t i = 0; i < n; ++i) {
        const pipeline::ServiceIdentity* service = spans[i].service.get();
        otlp_trace::ScopeSpans* scope_spans = nullptr;
        for (auto& [known, scope] : groups) {
            if (same_service(known, service)) {
                scope_spans = scope;
                break;
            }
        }
        if (scope_spans == nullptr) {
            auto* resource_spans = out->add_resource_spans();
            encode_resource(service, options, resource_spans->mutable_resource());
            scope_spans = resource_spans->add_scope_spans();
            scope_spans->mutable_scope()->set_name(options.scope_name);
            scope_spans->mutable_scope()->set_version(options.scope_version);
            groups.emplace_back(service, scope_spans);
        }
        encode_span(spans[i], ids[i], scope_spans->add_spans());
    }
}

}  // namespace sonde::exporter::otlp
