#include "pipeline/span_semantics.h"

#include <array>

namespace sonde::pipeline {

namespace {

// Indexed by code, as gRPC's status.proto numbers them.
constexpr std::array<std::string_view, 17> kGrpcStatusNames = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

constexpr std::string_view kStreamReset = "stream_reset";

}  // namespace

std::string_view grpc_status_name(int code) {
    if (code < 0 || static_cast<size_t>(code) >= kGrpcStatusNames.size()) return {};
    return kGrpcStatusNames[static_cast<size_t>(code)];
}

std::string grpc_status_text(int code) {
    if (code < 0) return {};
    const std::string_view name = grpc_status_name(code);
    return name.empty() ? std::to_string(code) : std::string(name);
}

bool is_http_error_status(SpanKind kind, int status) {
    if (kind == SpanKind::Server) return status >= 500 && status <= 599;
    return status >= 400 && status <= 599;
}

bool is_grpc_error_status(SpanKind kind, int code) {
    if (code < 0) return false;
    if (kind == SpanKind::Client) return code != 0;
    switch (code) {
        case 2:   // UNKNOWN
        case 4:   // DEADLINE_EXCEEDED
        case 12:  // UNIMPLEMENTED
        case 13:  // INTERNAL
        case 14:  // UNAVAILABLE
        case 15:  // DATA_LOSS
            return true;
        default:
            return false;
    }
}

std::string span_error_type(const Span& span) {
    if (span.rpc) {
        if (is_grpc_error_status(span.kind, span.rpc_status)) {
            return grpc_status_text(span.rpc_status);
        }
        // No gRPC status at all, but the HTTP layer failed (a proxy's 503, say): the call
        // failed whatever the RPC would have said.
        if (span.rpc_status < 0 && is_http_error_status(span.kind, span.status)) {
            return std::to_string(span.status);
        }
        // A reset stream fails even a server span whose code is not the server's fault; a
        // non-OK code (often mapped from the RST_STREAM error code) still says more.
        if (span.stream_reset && span.rpc_status > 0) return grpc_status_text(span.rpc_status);
    } else if (is_http_error_status(span.kind, span.status)) {
        return std::to_string(span.status);
    }
    // A reset stream is a failure even when the status that came before it looked fine:
    // the peer abandoned the exchange.
    if (span.stream_reset) return std::string(kStreamReset);
    return {};
}

std::string_view rpc_method(const Span& span) {
    return span.route.empty() ? std::string_view(span.path) : std::string_view(span.route);
}

}  // namespace sonde::pipeline
