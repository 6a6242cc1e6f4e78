// How a span reads the same in every exporter: whether it failed and as what, the gRPC status
// names, and the RPC method it is exported under. The Prometheus labels, the OTLP span and
// metric encoders and the trace printer all ask here, so they can never disagree.
#pragma once

#include <string>
#include <string_view>

#include "pipeline/span.h"

namespace sonde::pipeline {

// rpc.system.name of every RPC span Sonde produces today (HTTP/2 carries no other RPC system
// it recognises).
inline constexpr std::string_view kRpcSystemGrpc = "grpc";

// The conventions' rpc.method for a method past the per-service cap (see
// RouteMatcher::classify_rpc): a method name taken from traffic has unbounded cardinality.
inline constexpr std::string_view kOtherRpcMethod = "_OTHER";

// "OK", "CANCELLED", ... "UNAUTHENTICATED" for the codes gRPC defines (0..16); empty for any
// other number.
std::string_view grpc_status_name(int code);

// The rpc.response.status_code value: the code's name, any other non-negative number as its
// decimal text, empty when no status was seen (negative codes).
std::string grpc_status_text(int code);

// HTTP, per the conventions: a server fails on 5xx only (a 4xx is the client's fault), a
// client on 4xx and 5xx.
bool is_http_error_status(SpanKind kind, int status);

// gRPC, per the conventions: a server fails only on the codes that blame the server (UNKNOWN,
// DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS); a client on any code but
// OK. Negative codes (none seen) are not failures.
bool is_grpc_error_status(SpanKind kind, int code);

// The error.type of a failed span, empty when it did not fail: the gRPC status name of a
// failing RPC, the decimal HTTP status of a failing HTTP exchange (or of an RPC answered with
// an HTTP error and no gRPC status). A stream ended by RST_STREAM always fails: as its non-OK
// gRPC status when it has one, else as "stream_reset".
std::string span_error_type(const Span& span);

// The method an RPC span is exported under: `route` once the route matcher has bounded it
// (possibly kOtherRpcMethod), else the parsed method in `path`. Empty when neither is known
// (header fields that could not be decoded).
std::string_view rpc_method(const Span& span);

}  // namespace sonde::pipeline
