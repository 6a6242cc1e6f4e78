#include "export/otlp/otlp_span_encoding.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "otlp_attributes_test_util.h"

namespace sonde::exporter::otlp {
namespace {

using testing::Attributes;
using testing::attributes_of;
using testing::Value;

std::shared_ptr<const pipeline::ServiceIdentity> make_service(uint32_t pid, std::string name) {
    auto service = std::make_shared<pipeline::ServiceIdentity>();
    service->pid = pid;
    service->start_time_ticks = 4242;
    service->exe_path = "/usr/bin/" + name;
    service->exe_name = name;
    service->service_name = name;
    service->service_namespace = "shop";
    return service;
}

pipeline::Span server_span() {
    pipeline::Span s;
    s.kind = pipeline::SpanKind::Server;
    s.start_unix_ns = 1'700'000'000'000'000'000ULL;
    s.end_unix_ns = s.start_unix_ns + 2'500'000;
    s.method = "GET";
    s.path = "/users/42";
    s.route = "/users/{id}";
    s.status = 200;
    s.request_body_bytes = 0;
    s.response_body_bytes = 123;
    s.local = {"10.0.0.1", 8080};
    s.peer = {"10.0.0.2", 51234};
    s.service = make_service(1234, "users");
    return s;
}

SpanIds ids_with_parent() {
    SpanIds ids;
    for (size_t i = 0; i < ids.trace_id.size(); ++i) ids.trace_id[i] = uint8_t(i + 1);
    for (size_t i = 0; i < ids.span_id.size(); ++i) ids.span_id[i] = uint8_t(0xa0 + i);
    for (size_t i = 0; i < ids.parent_span_id.size(); ++i)
        ids.parent_span_id[i] = uint8_t(0xb0 + i);
    ids.sampled = true;
    ids.parent_is_remote = true;
    ids.trace_state = "vendor=abc";
    return ids;
}

// Encode, serialize, and decode again: the assertions run on what a collector would read.
otlp_trace::Span round_trip(const pipeline::Span& span, const SpanIds& ids) {
    otlp_trace::Span encoded;
    encode_span(span, ids, &encoded);
    std::string wire;
    EXPECT_TRUE(encoded.SerializeToString(&wire));
    otlp_trace::Span decoded;
    EXPECT_TRUE(decoded.ParseFromString(wire));
    return decoded;
}

TEST(OtlpSpanEncoding, ServerSpanCarriesEveryField) {
    const auto ids = ids_with_parent();
    const auto span = round_trip(server_span(), ids);

    EXPECT_EQ(span.trace_id(), std::string(ids.trace_id.begin(), ids.trace_id.end()));
    EXPECT_EQ(span.span_id(), std::string(ids.span_id.begin(), ids.span_id.end()));
    EXPECT_EQ(span.parent_span_id(),
              std::string(ids.parent_span_id.begin(), ids.parent_span_id.end()));
    EXPECT_EQ(span.trace_state(), "vendor=abc");
    EXPECT_EQ(span.flags(), 0x301u);  // sampled, parent is-remote known, parent remote
    EXPECT_EQ(span.name(), "GET /users/{id}");
    EXPECT_EQ(span.kind(), otlp_trace::Span::SPAN_KIND_SERVER);
    EXPECT_EQ(span.start_time_unix_nano(), 1'700'000'000'000'000'000ULL);
    EXPECT_EQ(span.end_time_unix_nano(), 1'700'000'000'002'500'000ULL);
    EXPECT_EQ(span.status().code(), otlp_trace::Status::STATUS_CODE_UNSET);

    const Attributes expected = {
        {"http.request.method", std::string("GET")},
        {"http.response.status_code", int64_t{200}},
        {"http.route", std::string("/users/{id}")},
        {"url.path", std::string("/users/42")},
        {"url.scheme", std::string("http")},
        {"server.address", std::string("10.0.0.1")},
        {"server.port", int64_t{8080}},
        {"client.address", std::string("10.0.0.2")},
        {"network.peer.address", std::string("10.0.0.2")},
        {"network.peer.port", int64_t{51234}},
        {"network.protocol.version", std::string("1.1")},
        {"http.request.body.size", int64_t{0}},
        {"http.response.body.size", int64_t{123}},
    };
    EXPECT_EQ(attributes_of(span.attributes()), expected);
}

TEST(OtlpSpanEncoding, ClientSpanUsesPeerAsServerAndHasFullUrl) {
    auto s = server_span();
    s.kind = pipeline::SpanKind::Client;
    s.method = "POST";
    s.route = "";
    s.path = "/api/orders";
    s.status = 201;
    s.request_body_bytes = 77;
    s.local = {"10.0.0.1", 40000};
    s.peer = {"::1", 9090};
    SpanIds ids;  // a root span
    ids.trace_id[15] = 1;
    ids.span_id[7] = 2;
    ids.sampled = false;
    const auto span = round_trip(s, ids);

    EXPECT_EQ(span.name(), "POST");
    EXPECT_EQ(span.kind(), otlp_trace::Span::SPAN_KIND_CLIENT);
    EXPECT_TRUE(span.parent_span_id().empty());
    EXPECT_EQ(span.flags(), 0u);
    auto attrs = attributes_of(span.attributes());
    EXPECT_EQ(attrs.count("client.address"), 0u);
    EXPECT_EQ(attrs.count("http.route"), 0u);
    EXPECT_EQ(std::get<std::string>(attrs["server.address"]), "::1");
    EXPECT_EQ(std::get<int64_t>(attrs["server.port"]), 9090);
    EXPECT_EQ(std::get<std::string>(attrs["network.peer.address"]), "::1");
    EXPECT_EQ(std::get<int64_t>(attrs["network.peer.port"]), 9090);
    EXPECT_EQ(attrs.count("url.full"), 0u);  // never exported: privacy by default
    EXPECT_EQ(std::get<int64_t>(attrs["http.request.body.size"]), 77);
    EXPECT_EQ(std::get<int64_t>(attrs["http.response.status_code"]), 201);
}

TEST(OtlpSpanEncoding, HttpErrorStatusRules) {
    using pipeline::SpanKind;
    for (auto [kind, code, error] :
         {std::tuple{SpanKind::Server, 404, false}, std::tuple{SpanKind::Server, 502, true},
          std::tuple{SpanKind::Client, 404, true}}) {
        auto s = server_span();
        s.kind = kind;
        s.status = code;
        const auto span = round_trip(s, ids_with_parent());
        EXPECT_EQ(span.status().code(), error ? otlp_trace::Status::STATUS_CODE_ERROR
                                              : otlp_trace::Status::STATUS_CODE_UNSET)
            << code;
        auto attrs = attributes_of(span.attributes());
        EXPECT_EQ(attrs.count("error.type"), error ? 1u : 0u);
        if (error) EXPECT_EQ(std::get<std::string>(attrs["error.type"]), std::to_string(code));
    }
}

pipeline::Span http2_span() {
    auto s = server_span();
    s.protocol_version = "2";
    return s;
}

TEST(OtlpSpanEncoding, Http2IsAnHttpSpanWithVersion2) {
    const auto span = round_trip(http2_span(), ids_with_parent());
    EXPECT_EQ(span.name(), "GET /users/{id}");
    auto attrs = attributes_of(span.attributes());
    EXPECT_EQ(std::get<std::string>(attrs["network.protocol.version"]), "2");
    EXPECT_EQ(attrs.count("network.protocol.name"), 0u);  // implied by the http.* attributes
    EXPECT_EQ(attrs.count("rpc.system.name"), 0u);
    EXPECT_EQ(attrs.count("sonde.partial"), 0u);
    EXPECT_EQ(span.status().code(), otlp_trace::Status::STATUS_CODE_UNSET);
}

TEST(OtlpSpanEncoding, ResetStreamIsAnError) {
    struct Case {
        std::string name;
        pipeline::SpanKind kind;
        int status;
        std::string error_type;
    };
    const std::vector<Case> cases = {
        {"server reset after 200", pipeline::SpanKind::Server, 200, "stream_reset"},
        {"client reset before a response", pipeline::SpanKind::Client, 0, "stream_reset"},
        {"a failing status says more", pipeline::SpanKind::Server, 503, "503"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        auto s = http2_span();
        s.kind = c.kind;
        s.status = c.status;
        s.stream_reset = true;
        const auto span = round_trip(s, ids_with_parent());
        EXPECT_EQ(span.status().code(), otlp_trace::Status::STATUS_CODE_ERROR);
        auto attrs = attributes_of(span.attributes());
        EXPECT_EQ(std::get<std::string>(attrs["error.type"]), c.error_type);
    }
}

TEST(OtlpSpanEncoding, PartialSpanIsMarked) {
    auto s = http2_span();
    s.partial = true;
    s.method.clear();  // the fields that could not be decoded are empty
    const auto span = round_trip(s, ids_with_parent());
    auto attrs = attributes_of(span.attributes());
    EXPECT_EQ(std::get<bool>(attrs["sonde.partial"]), true);
    EXPECT_EQ(std::get<std::string>(attrs["http.request.method"]), "_OTHER");
    EXPECT_EQ(attrs.count("http.request.method_original"), 0u);  // nothing to report
}

// ---- RPC spans

pipeline::Span rpc_server_span(int grpc_status) {
    auto s = http2_span();
    s.rpc = true;
    s.rpc_status = grpc_status;
    s.method = "POST";
    s.path = "/helloworld.Greeter/SayHello";
    s.route = "/helloworld.Greeter/SayHello";
    s.local = {"10.0.0.1", 50051};
    s.request_body_bytes = 12;
    s.response_body_bytes = 17;
    return s;
}

TEST(OtlpSpanEncoding, RpcServerSpanCarriesEveryField) {
    const auto span = round_trip(rpc_server_span(5), ids_with_parent());
    EXPECT_EQ(span.name(), "/helloworld.Greeter/SayHello");
    EXPECT_EQ(span.kind(), otlp_trace::Span::SPAN_KIND_SERVER);
    // NOT_FOUND is the caller's problem, not the server's.
    EXPECT_EQ(span.status().code(), otlp_trace::Status::STATUS_CODE_UNSET);
    const Attributes expected = {
        {"rpc.system.name", std::string("grpc")},
        {"rpc.method", std::string("/helloworld.Greeter/SayHello")},
        {"rpc.response.status_code", std::string("NOT_FOUND")},
        {"rpc.grpc.status_code", int64_t{5}},
        {"server.address", std::string("10.0.0.1")},
        {"server.port", int64_t{50051}},
        {"client.address", std::string("10.0.0.2")},
        {"network.peer.address", std::string("10.0.0.2")},
        {"network.peer.port", int64_t{51234}},
        {"network.protocol.name", std::string("http")},
        {"network.protocol.version", std::string("2")},
    };
    EXPECT_EQ(attributes_of(span.attributes()), expected);
}

TEST(OtlpSpanEncoding, RpcClientSpanUsesPeerAsServer) {
    auto s = rpc_server_span(0);
    s.kind = pipeline::SpanKind::Client;
    s.local = {"10.0.0.1", 40000};
    s.peer = {"10.0.0.9", 50051};
    const auto span = round_trip(s, ids_with_parent());
    EXPECT_EQ(span.name(), "/helloworld.Greeter/SayHello");
    EXPECT_EQ(span.kind(), otlp_trace::Span::SPAN_KIND_CLIENT);
    EXPECT_EQ(span.status().code(), otlp_trace::Status::STATUS_CODE_UNSET);
    const Attributes expected = {
        {"rpc.system.name", std::string("grpc")},
        {"rpc.method", std::string("/helloworld.Greeter/SayHello")},
        {"rpc.response.status_code", std::string("OK")},
        {"rpc.grpc.status_code", int64_t{0}},
        {"server.address", std::string("10.0.0.9")},
        {"server.port", int64_t{50051}},
        {"network.peer.address", std::string("10.0.0.9")},
        {"network.peer.port", int64_t{50051}},
        {"network.protocol.name", std::string("http")},
        {"network.protocol.version", std::string("2")},
    };
    EXPECT_EQ(attributes_of(span.attributes()), expected);
}

TEST(OtlpSpanEncoding, RpcStatusDecidesErrorDifferentlyForServersAndClients) {
    using pipeline::SpanKind;
    struct Case {
        SpanKind kind;
        int code;
        bool reset;
        std::string error_type;  // empty: not an error
    };
    const std::vector<Case> cases = {
        {SpanKind::Server, 0, false, ""},
        {SpanKind::Server, 1, false, ""},
        {SpanKind::Server, 2, false, "UNKNOWN"},
        {SpanKind::Server, 3, false, ""},
        {SpanKind::Server, 4, false, "DEADLINE_EXCEEDED"},
        {SpanKind::Server, 5, false, ""},
        {SpanKind::Server, 7, false, ""},
        {SpanKind::Server, 12, false, "UNIMPLEMENTED"},
        {SpanKind::Server, 13, false, "INTERNAL"},
        {SpanKind::Server, 14, false, "UNAVAILABLE"},
        {SpanKind::Server, 15, false, "DATA_LOSS"},
        {SpanKind::Server, 16, false, ""},
        {SpanKind::Server, -1, false, ""},
        {SpanKind::Client, 0, false, ""},
        {SpanKind::Client, 1, false, "CANCELLED"},
        {SpanKind::Client, 5, false, "NOT_FOUND"},
        {SpanKind::Client, 16, false, "UNAUTHENTICATED"},
        {SpanKind::Client, 20, false, "20"},
        {SpanKind::Client, -1, false, ""},
        {SpanKind::Server, -1, true, "stream_reset"},
        {SpanKind::Server, 0, true, "stream_reset"},
        {SpanKind::Server, 1, true, "CANCELLED"},
        {SpanKind::Client, -1, true, "stream_reset"},
    };
    for (const Case& c : cases) {
        auto s = rpc_server_span(c.code);
        s.kind = c.kind;
        s.stream_reset = c.reset;
        const auto span = round_trip(s, ids_with_parent());
        const std::string what = std::string(c.kind == SpanKind::Server ? "server " : "client ") +
                                 std::to_string(c.code) + (c.reset ? " reset" : "");
        EXPECT_EQ(span.status().code(), c.error_type.empty()
                                            ? otlp_trace::Status::STATUS_CODE_UNSET
                                            : otlp_trace::Status::STATUS_CODE_ERROR)
            << what;
        auto attrs = attributes_of(span.attributes());
        if (c.error_type.empty()) {
            EXPECT_EQ(attrs.count("error.type"), 0u) << what;
        } else {
            EXPECT_EQ(std::get<std::string>(attrs["error.type"]), c.error_type) << what;
        }
        // No status seen: nothing claims one.
        EXPECT_EQ(attrs.count("rpc.grpc.status_code"), c.code >= 0 ? 1u : 0u) << what;
        EXPECT_EQ(attrs.count("rpc.response.status_code"), c.code >= 0 ? 1u : 0u) << what;
    }
}

TEST(OtlpSpanEncoding, RpcSpanHasNoHttpAttributes) {
    auto s = rpc_server_span(0);
    s.path = "/helloworld.Greeter/SayHello";
    const auto span = round_trip(s, ids_with_parent());
    for (const auto& [key, value] : attributes_of(span.attributes())) {
        EXPECT_NE(key.rfind("http.", 0), 0u) << key;
        EXPECT_NE(key.rfind("url.", 0), 0u) << key;
    }
}

TEST(OtlpSpanEncoding, RpcNameFallsBackToTheSystemWhenTheMethodIsNotKnown) {
    struct Case {
        std::string name;
        std::string path;
        std::string route;
        std::string span_name;
        std::optional<std::string> method;
        std::optional<std::string> method_original;
    };
    const std::vector<Case> cases = {
        {"bounded method", "/a.S/M", "/a.S/M", "/a.S/M", "/a.S/M", std::nullopt},
        {"not through the route matcher", "/a.S/M", "", "/a.S/M", "/a.S/M", std::nullopt},
        {"over the per-service cap", "/a.S/M", "_OTHER", "grpc", "_OTHER", "/a.S/M"},
        {"undecodable", "", "", "grpc", std::nullopt, std::nullopt},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        auto s = rpc_server_span(0);
        s.path = c.path;
        s.route = c.route;
        const auto span = round_trip(s, ids_with_parent());
        EXPECT_EQ(span.name(), c.span_name);
        auto attrs = attributes_of(span.attributes());
        if (c.method) {
            EXPECT_EQ(std::get<std::string>(attrs["rpc.method"]), *c.method);
        } else {
            EXPECT_EQ(attrs.count("rpc.method"), 0u);
        }
        if (c.method_original) {
            EXPECT_EQ(std::get<std::string>(attrs["rpc.method_original"]), *c.method_original);
        } else {
            EXPECT_EQ(attrs.count("rpc.method_original"), 0u);
        }
    }
}

TEST(OtlpSpanEncoding, PartialRpcSpanIsMarked) {
    auto s = rpc_server_span(-1);
    s.partial = true;
    const auto span = round_trip(s, ids_with_parent());
    auto attrs = attributes_of(span.attributes());
    EXPECT_EQ(std::get<bool>(attrs["sonde.partial"]), true);
    EXPECT_EQ(span.status().code(), otlp_trace::Status::STATUS_CODE_UNSET);
}

TEST(OtlpSpanEncoding, NonStandardMethodBecomesOther) {
    auto s = server_span();
    s.method = "PURGE";
    const auto span = round_trip(s, ids_with_parent());
    EXPECT_EQ(span.name(), "HTTP /users/{id}");
    auto attrs = attributes_of(span.attributes());
    EXPECT_EQ(std::get<std::string>(attrs["http.request.method"]), "_OTHER");
    EXPECT_EQ(std::get<std::string>(attrs["http.request.method_original"]), "PURGE");
}

TEST(OtlpSpanEncoding, ResourceDescribesServiceHostAndAgent) {
    EncoderOptions options;
    options.host_name = "node-7";
    otlp_resource::Resource resource;
    auto service = make_service(1234, "users");
    encode_resource(service.get(), options, &resource);
    const Attributes expected = {
        {"service.name", std::string("users")},
        {"service.namespace", std::string("shop")},
        {"service.instance.id", std::string("node-7:1234")},
        {"host.name", std::string("node-7")},
        {"process.pid", int64_t{1234}},
        {"process.executable.name", std::string("users")},
        {"process.executable.path", std::string("/usr/bin/users")},
        {"telemetry.sdk.name", std::string("sonde")},
        {"telemetry.sdk.version", std::string(SONDE_VERSION)},
    };
    EXPECT_EQ(attributes_of(resource.attributes()), expected);

    // The target's language, when discovery knows it, as Beyla reports it.
    auto python = std::make_shared<pipeline::ServiceIdentity>(*service);
    python->language = "python";
    otlp_resource::Resource with_language;
    encode_resource(python.get(), options, &with_language);
    auto expected_with_language = expected;
    expected_with_language["telemetry.sdk.language"] = std::string("python");
    EXPECT_EQ(attributes_of(with_language.attributes()), expected_with_language);
}

TEST(OtlpSpanEncoding, RequestGroupsSpansByService) {
    auto users = make_service(1, "users");
    auto orders = make_service(2, "orders");
    // A second identity object for the same process still lands in the same group.
    auto users_again = std::make_shared<pipeline::ServiceIdentity>(*users);

    std::vector<pipeline::Span> spans(4, server_span());
    spans[0].service = users;
    spans[1].service = orders;
    spans[2].service = users_again;
    spans[3].service = orders;
    spans[3].route = "/orders";
    std::vector<SpanIds> ids(4, ids_with_parent());

    EncoderOptions options;
    options.host_name = "h";
    otlp_collector_trace::ExportTraceServiceRequest request;
    build_export_request(spans, ids, options, &request);
    std::string wire;
    ASSERT_TRUE(request.SerializeToString(&wire));
    otlp_collector_trace::ExportTraceServiceRequest decoded;
    ASSERT_TRUE(decoded.ParseFromString(wire));

    ASSERT_EQ(decoded.resource_spans_size(), 2);
    auto service_name = [](const otlp_trace::ResourceSpans& rs) {
        return std::get<std::string>(attributes_of(rs.resource().attributes())["service.name"]);
    };
    EXPECT_EQ(service_name(decoded.resource_spans(0)), "users");
    EXPECT_EQ(service_name(decoded.resource_spans(1)), "orders");
    for (const auto& rs : decoded.resource_spans()) {
        ASSERT_EQ(rs.scope_spans_size(), 1);
        EXPECT_EQ(rs.scope_spans(0).scope().name(), "sonde");
        EXPECT_EQ(rs.scope_spans(0).scope().version(), SONDE_VERSION);
        EXPECT_EQ(rs.scope_spans(0).spans_size(), 2);
    }
    EXPECT_EQ(decoded.resource_spans(1).scope_spans(0).spans(1).name(), "GET /orders");
}

TEST(OtlpSpanEncoding, SpanWithoutServiceGetsUnknownService) {
    auto s = server_span();
    s.service.reset();
    std::vector<pipeline::Span> spans{s};
    std::vector<SpanIds> ids{ids_with_parent()};
    otlp_collector_trace::ExportTraceServiceRequest request;
    build_export_request(spans, ids, EncoderOptions{}, &request);
    ASSERT_EQ(request.resource_spans_size(), 1);
    auto attrs = attributes_of(request.resource_spans(0).resource().attributes());
    EXPECT_EQ(std::get<std::string>(attrs["service.name"]), "unknown_service");
}

}  // namespace
}  // namespace sonde::exporter::otlp
