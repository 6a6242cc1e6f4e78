#include "export/printer/span_printer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sonde::exporter {
namespace {

using pipeline::ServiceIdentity;
using pipeline::Span;
using pipeline::SpanKind;

Span sample_span() {
    auto service = std::make_shared<ServiceIdentity>();
    service->pid = 123;
    service->exe_path = "/usr/bin/checkout";
    service->exe_name = "checkout";
    service->service_name = "checkout";
    service->service_namespace = "shop";
    Span span;
    span.kind = SpanKind::Server;
    span.start_mono_ns = 5'000'000'000;
    span.end_mono_ns = 5'012'345'678;
    // 2026-11-26T05:00:00.123456789Z
    span.start_unix_ns = 1'795'669'200'123'456'789ULL;
    span.end_unix_ns = span.start_unix_ns + 12'345'678;
    span.method = "GET";
    span.path = "/orders/42";
    span.route = "/orders/*";
    span.status = 200;
    span.request_body_bytes = 0;
    span.response_body_bytes = 512;
    span.local = {"127.0.0.1", 8080};
    span.peer = {"127.0.0.1", 51234};
    span.service = service;
    span.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    return span;
}

TEST(PrinterMode, ParsesCaseInsensitively) {
    EXPECT_EQ(parse_printer_mode("disabled"), PrinterMode::Disabled);
    EXPECT_EQ(parse_printer_mode("Text"), PrinterMode::Text);
    EXPECT_EQ(parse_printer_mode("JSON"), PrinterMode::Json);
    EXPECT_EQ(parse_printer_mode(""), std::nullopt);
    EXPECT_EQ(parse_printer_mode("json "), std::nullopt);
    EXPECT_EQ(parse_printer_mode("yaml"), std::nullopt);
}

TEST(SpanText, HasEveryFieldOnOneLine) {
    EXPECT_EQ(format_span_text(sample_span()),
              "2026-11-26T05:00:00.123456Z SERVER pid=123 service=checkout GET /orders/42 "
              "route=/orders/* status=200 dur=12.345ms req=0B resp=512B "
              "local=127.0.0.1:8080 peer=127.0.0.1:51234 "
              "trace=00000000000000000000000000000000 span=0000000000000000");
}

TEST(SpanText, ClientIpv6AndMissingService) {
    Span span = sample_span();
    span.kind = SpanKind::Client;
    span.service = nullptr;
    span.local = {"::1", 40000};
    span.peer = {"::1", 443};
    span.end_mono_ns = span.start_mono_ns - 1;  // clock oddity: never a negative duration
    const std::string line = format_span_text(span);
    EXPECT_NE(line.find(" CLIENT pid=0 service=- "), std::string::npos) << line;
    EXPECT_NE(line.find(" dur=0.000ms "), std::string::npos) << line;
    EXPECT_NE(line.find(" local=[::1]:40000 peer=[::1]:443"), std::string::npos) << line;
}

TEST(SpanText, EscapesBytesThatWouldBreakTheLine) {
    Span span = sample_span();
    span.path = "/a b\r\nc\\d";
    const std::string line = format_span_text(span);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_NE(line.find(" /a\\x20b\\x0d\\x0ac\\x5cd "), std::string::npos) << line;
}

TEST(SpanText, NeverShowsTheTraceparent) {
    EXPECT_EQ(format_span_text(sample_span()).find("4bf92f3577b34da6"), std::string::npos);
    EXPECT_EQ(format_span_json(sample_span()).find("4bf92f3577b34da6"), std::string::npos);
}

TEST(SpanJson, ParsesBackWithEveryKey) {
    const std::string line = format_span_json(sample_span());
    EXPECT_EQ(line.find('\n'), std::string::npos);
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("kind"), "server");
    EXPECT_EQ(j.at("start_unix_ns"), 1'795'669'200'123'456'789ULL);
    EXPECT_EQ(j.at("end_unix_ns"), 1'795'669'200'135'802'467ULL);
    EXPECT_EQ(j.at("duration_ns"), 12'345'678);
    EXPECT_EQ(j.at("method"), "GET");
    EXPECT_EQ(j.at("path"), "/orders/42");
    EXPECT_EQ(j.at("route"), "/orders/*");
    EXPECT_EQ(j.at("status"), 200);
    EXPECT_EQ(j.at("scheme"), "http");
    EXPECT_EQ(j.at("protocol_version"), "1.1");
    EXPECT_EQ(j.at("request_body_bytes"), 0);
    EXPECT_EQ(j.at("response_body_bytes"), 512);
    EXPECT_EQ(j.at("local_address"), "127.0.0.1");
    EXPECT_EQ(j.at("local_port"), 8080);
    EXPECT_EQ(j.at("peer_address"), "127.0.0.1");
    EXPECT_EQ(j.at("peer_port"), 51234);
    EXPECT_EQ(j.at("server_address"), "127.0.0.1");
    EXPECT_EQ(j.at("server_port"), 8080);
    EXPECT_EQ(j.at("pid"), 123);
    EXPECT_EQ(j.at("service_name"), "checkout");
    EXPECT_EQ(j.at("service_namespace"), "shop");
    EXPECT_EQ(j.at("exe"), "/usr/bin/checkout");
    EXPECT_EQ(j.at("error_type"), "");
    EXPECT_EQ(j.at("stream_reset"), false);
    EXPECT_EQ(j.at("partial"), false);
    EXPECT_EQ(j.size(), 29u);  // an HTTP span has no rpc_* keys
    EXPECT_EQ(j["trace_id"], "00000000000000000000000000000000");
    EXPECT_EQ(j["parent_span_id"], "");
    EXPECT_EQ(j["sampled"], true);
}

// ---- Errors, HTTP/2 and RPC spans

Span rpc_span(int grpc_status) {
    Span span = sample_span();
    span.rpc = true;
    span.rpc_status = grpc_status;
    span.method = "POST";
    span.path = "/helloworld.Greeter/SayHello";
    span.route = "/helloworld.Greeter/SayHello";
    span.protocol_version = "2";
    span.local = {"127.0.0.1", 50051};
    span.request_body_bytes = 12;
    span.response_body_bytes = 17;
    return span;
}

TEST(SpanText, RpcShowsTheMethodAndGrpcStatus) {
    EXPECT_EQ(format_span_text(rpc_span(5)),
              "2026-11-26T05:00:00.123456Z SERVER pid=123 service=checkout grpc "
              "/helloworld.Greeter/SayHello grpc_status=NOT_FOUND dur=12.345ms req=12B resp=17B "
              "local=127.0.0.1:50051 peer=127.0.0.1:51234 "
              "trace=00000000000000000000000000000000 span=0000000000000000");
}

TEST(SpanText, ErrorsResetsAndPartialsAreAppended) {
    struct Case {
        std::string name;
        Span span;
        std::string needle;  // expected in the line
        std::string absent;  // must not be in it
    };
    Span server_error = sample_span();
    server_error.status = 503;
    Span reset = sample_span();
    reset.protocol_version = "2";
    reset.stream_reset = true;
    Span partial = sample_span();
    partial.partial = true;
    Span rpc_no_status = rpc_span(-1);
    Span rpc_reset = rpc_span(1);
    rpc_reset.stream_reset = true;
    Span rpc_capped = rpc_span(13);
    rpc_capped.route = "_OTHER";
    const std::vector<Case> cases = {
        {"http ok", sample_span(), "span=0000000000000000", " error="},
        {"http 503", server_error, " status=503 ", ""},
        {"http 503 error", server_error, "span=0000000000000000 error=503", " stream_reset"},
        {"http/2 reset", reset, " error=stream_reset stream_reset", ""},
        {"partial", partial, " partial", " error="},
        {"rpc without status", rpc_no_status, " grpc_status=- ", " error="},
        {"rpc reset as CANCELLED", rpc_reset, " error=CANCELLED stream_reset", ""},
        // The printer shows what was called; the capped name is for metrics and span names.
        {"rpc over the method cap", rpc_capped, " /helloworld.Greeter/SayHello ", "_OTHER"},
        {"rpc INTERNAL", rpc_capped, " grpc_status=INTERNAL ", " route="},
    };
    for (const Case& c : cases) {
        const std::string line = format_span_text(c.span);
        EXPECT_NE(line.find(c.needle), std::string::npos) << c.name << ": " << line;
        if (!c.absent.empty()) {
            EXPECT_EQ(line.find(c.absent), std::string::npos) << c.name << ": " << line;
        }
    }
}

TEST(SpanJson, RpcSpanCarriesItsRpcFields) {
    Span span = rpc_span(14);
    span.kind = SpanKind::Client;
    span.peer = {"10.0.0.9", 50051};
    span.stream_reset = true;
    span.partial = true;
    const auto j = nlohmann::json::parse(format_span_json(span));
    EXPECT_EQ(j.at("rpc_system_name"), "grpc");
    EXPECT_EQ(j.at("rpc_method"), "/helloworld.Greeter/SayHello");
    EXPECT_EQ(j.at("rpc_response_status_code"), "UNAVAILABLE");
    EXPECT_EQ(j.at("rpc_grpc_status_code"), 14);
    EXPECT_EQ(j.at("error_type"), "UNAVAILABLE");
    EXPECT_EQ(j.at("stream_reset"), true);
    EXPECT_EQ(j.at("partial"), true);
    EXPECT_EQ(j.at("protocol_version"), "2");
    EXPECT_EQ(j.at("path"), "/helloworld.Greeter/SayHello");
    EXPECT_EQ(j.at("server_port"), 50051);
    EXPECT_EQ(j.size(), 33u);

    const auto none = nlohmann::json::parse(format_span_json(rpc_span(-1)));
    EXPECT_TRUE(none.at("rpc_grpc_status_code").is_null());
    EXPECT_EQ(none.at("rpc_response_status_code"), "");
    EXPECT_EQ(none.at("error_type"), "");

    Span capped = rpc_span(0);
    capped.route = "_OTHER";
    EXPECT_EQ(nlohmann::json::parse(format_span_json(capped)).at("rpc_method"), "_OTHER");
}

TEST(SpanJson, Http2ResetIsAnError) {
    Span span = sample_span();
    span.protocol_version = "2";
    span.stream_reset = true;
    const auto j = nlohmann::json::parse(format_span_json(span));
    EXPECT_EQ(j.at("error_type"), "stream_reset");
    EXPECT_EQ(j.at("protocol_version"), "2");
    EXPECT_EQ(j.count("rpc_method"), 0u);
}

TEST(SpanJson, ClientServerIsThePeer) {
    Span span = sample_span();
    span.kind = SpanKind::Client;
    span.peer = {"10.1.2.3", 443};
    span.service = nullptr;
    const auto j = nlohmann::json::parse(format_span_json(span));
    EXPECT_EQ(j.at("kind"), "client");
    EXPECT_EQ(j.at("server_address"), "10.1.2.3");
    EXPECT_EQ(j.at("server_port"), 443);
    EXPECT_EQ(j.at("pid"), 0);
    EXPECT_EQ(j.at("service_name"), "");
    EXPECT_EQ(j.at("exe"), "");
}

TEST(SpanJson, InvalidUtf8DoesNotThrow) {
    Span span = sample_span();
    span.path = "/\xff\xfe\x01\"";
    std::string line;
    ASSERT_NO_THROW(line = format_span_json(span));
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("path"), "/\xef\xbf\xbd\xef\xbf\xbd\x01\"");
}

std::string printed(PrinterMode mode, const Span& span, int times) {
    std::FILE* stream = std::tmpfile();
    EXPECT_NE(stream, nullptr);
    if (stream == nullptr) {
        return "";
    }
    SpanPrinter printer(mode, stream);
    EXPECT_EQ(printer.mode(), mode);
    for (int i = 0; i < times; ++i) {
        printer.print(span);
    }
    std::rewind(stream);
    std::string out;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, stream)) > 0) {
        out.append(buffer, n);
    }
    std::fclose(stream);
    return out;
}

TEST(SpanPrinter, WritesOneLinePerSpan) {
    const Span span = sample_span();
    EXPECT_EQ(printed(PrinterMode::Text, span, 2),
              format_span_text(span) + "\n" + format_span_text(span) + "\n");
    EXPECT_EQ(printed(PrinterMode::Json, span, 1), format_span_json(span) + "\n");
    EXPECT_EQ(printed(PrinterMode::Disabled, span, 3), "");
}

TEST(SpanPrinter, FlushesEachLine) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::FILE* writer = ::fdopen(fds[1], "w");
    ASSERT_NE(writer, nullptr);
    // Fully buffered: without the printer's flush nothing would reach the pipe.
    std::setvbuf(writer, nullptr, _IOFBF, 1 << 16);
    SpanPrinter printer(PrinterMode::Json, writer);
    printer.print(sample_span());
    const std::string expected = format_span_json(sample_span()) + "\n";
    std::string got(expected.size(), '\0');
    size_t have = 0;
    while (have < got.size()) {
        const ssize_t n = ::read(fds[0], got.data() + have, got.size() - have);
        ASSERT_GT(n, 0);
        have += size_t(n);
    }
    EXPECT_EQ(got, expected);
    std::fclose(writer);
    ::close(fds[0]);
}

}  // namespace
}  // namespace sonde::exporter
