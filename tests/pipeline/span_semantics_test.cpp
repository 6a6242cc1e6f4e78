#include "pipeline/span_semantics.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sonde::pipeline {
namespace {

TEST(GrpcStatus, EveryDefinedCodeHasItsName) {
    const std::vector<std::string> names = {
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
    for (int code = 0; code < static_cast<int>(names.size()); ++code) {
        EXPECT_EQ(grpc_status_name(code), names[static_cast<size_t>(code)]) << code;
        EXPECT_EQ(grpc_status_text(code), names[static_cast<size_t>(code)]) << code;
    }
}

TEST(GrpcStatus, OtherNumbersAreDecimalAndNoneIsEmpty) {
    struct Case {
        int code;
        std::string_view name;
        std::string text;
    };
    const std::vector<Case> cases = {
        {17, "", "17"},
        {1000, "", "1000"},
        {-1, "", ""},
        {-7, "", ""},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(grpc_status_name(c.code), c.name) << c.code;
        EXPECT_EQ(grpc_status_text(c.code), c.text) << c.code;
    }
}

TEST(SpanErrorRules, HttpServersFailOn5xxClientsOn4xxToo) {
    struct Case {
        SpanKind kind;
        int status;
        bool error;
    };
    const std::vector<Case> cases = {
        {SpanKind::Server, 0, false},   {SpanKind::Server, 200, false},
        {SpanKind::Server, 404, false}, {SpanKind::Server, 499, false},
        {SpanKind::Server, 500, true},  {SpanKind::Server, 503, true},
        {SpanKind::Server, 599, true},  {SpanKind::Server, 600, false},
        {SpanKind::Client, 0, false},   {SpanKind::Client, 399, false},
        {SpanKind::Client, 400, true},  {SpanKind::Client, 404, true},
        {SpanKind::Client, 599, true},  {SpanKind::Client, 600, false},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(is_http_error_status(c.kind, c.status), c.error)
            << (c.kind == SpanKind::Server ? "server " : "client ") << c.status;
    }
}

TEST(SpanErrorRules, GrpcServersFailOnlyOnTheirOwnFaultsClientsOnAnyNonOk) {
    // Codes 0..16, then one past the defined range; `server` says which a server owns.
    const std::vector<bool> server = {
        false,  // OK
        false,  // CANCELLED
        true,   // UNKNOWN
        false,  // INVALID_ARGUMENT
        true,   // DEADLINE_EXCEEDED
        false,  // NOT_FOUND
        false,  // ALREADY_EXISTS
        false,  // PERMISSION_DENIED
        false,  // RESOURCE_EXHAUSTED
        false,  // FAILED_PRECONDITION
        false,  // ABORTED
        false,  // OUT_OF_RANGE
        true,   // UNIMPLEMENTED
        true,   // INTERNAL
        true,   // UNAVAILABLE
        true,   // DATA_LOSS
        false,  // UNAUTHENTICATED
        false,  // 17: not a defined code, not blamed on the server
    };
    for (int code = 0; code < static_cast<int>(server.size()); ++code) {
        EXPECT_EQ(is_grpc_error_status(SpanKind::Server, code), server[static_cast<size_t>(code)])
            << "server " << code;
        EXPECT_EQ(is_grpc_error_status(SpanKind::Client, code), code != 0) << "client " << code;
    }
    EXPECT_FALSE(is_grpc_error_status(SpanKind::Server, -1));
    EXPECT_FALSE(is_grpc_error_status(SpanKind::Client, -1));
}

Span make_span(SpanKind kind, bool rpc, int status, int rpc_status, bool reset) {
    Span span;
    span.kind = kind;
    span.rpc = rpc;
    span.status = status;
    span.rpc_status = rpc_status;
    span.stream_reset = reset;
    return span;
}

TEST(SpanErrorType, NamesTheBestExplanationOrNothing) {
    struct Case {
        std::string name;
        Span span;
        std::string error_type;
    };
    const SpanKind server = SpanKind::Server;
    const SpanKind client = SpanKind::Client;
    const std::vector<Case> cases = {
        {"http ok", make_span(server, false, 200, -1, false), ""},
        {"http server 500", make_span(server, false, 500, -1, false), "500"},
        {"http server 404 is the client's fault", make_span(server, false, 404, -1, false), ""},
        {"http client 404", make_span(client, false, 404, -1, false), "404"},
        {"http/2 reset after 200", make_span(server, false, 200, -1, true), "stream_reset"},
        {"http/2 reset before any response", make_span(client, false, 0, -1, true), "stream_reset"},
        {"http/2 reset with a 502: the status says more", make_span(server, false, 502, -1, true),
         "502"},
        {"rpc ok", make_span(server, true, 200, 0, false), ""},
        {"rpc server NOT_FOUND is the caller's", make_span(server, true, 200, 5, false), ""},
        {"rpc client NOT_FOUND", make_span(client, true, 200, 5, false), "NOT_FOUND"},
        {"rpc server DEADLINE_EXCEEDED", make_span(server, true, 200, 4, false),
         "DEADLINE_EXCEEDED"},
        {"rpc client unknown code", make_span(client, true, 200, 42, false), "42"},
        {"rpc without status", make_span(server, true, 200, -1, false), ""},
        {"rpc without status behind an HTTP 503", make_span(client, true, 503, -1, false), "503"},
        {"rpc with a status ignores the HTTP status", make_span(client, true, 503, 0, false), ""},
        {"rpc reset, no status", make_span(server, true, 200, -1, true), "stream_reset"},
        {"rpc reset after OK", make_span(server, true, 200, 0, true), "stream_reset"},
        {"rpc server reset as CANCELLED", make_span(server, true, 200, 1, true), "CANCELLED"},
        {"rpc client reset as UNAVAILABLE", make_span(client, true, 200, 14, true), "UNAVAILABLE"},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(span_error_type(c.span), c.error_type) << c.name;
    }
}

TEST(RpcMethod, TheBoundedRouteWinsOverThePath) {
    Span span;
    span.rpc = true;
    span.path = "/helloworld.Greeter/SayHello";
    EXPECT_EQ(rpc_method(span), "/helloworld.Greeter/SayHello");
    span.route = std::string(kOtherRpcMethod);
    EXPECT_EQ(rpc_method(span), "_OTHER");
    span.path.clear();
    span.route.clear();
    EXPECT_EQ(rpc_method(span), "");
}

}  // namespace
}  // namespace sonde::pipeline
