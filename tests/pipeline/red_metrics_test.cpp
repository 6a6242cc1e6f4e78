#include "pipeline/red_metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "exposition_test_util.h"
#include "pipeline/self_metrics.h"

namespace sonde::pipeline {
namespace {

using test_util::find_values;
using test_util::parse_exposition;
using test_util::Sample;

constexpr std::string_view kServerDuration = "http_server_request_duration_seconds";
constexpr std::string_view kClientDuration = "http_client_request_duration_seconds";

std::shared_ptr<const ServiceIdentity> checkout_service() {
    auto service = std::make_shared<ServiceIdentity>();
    service->pid = 1234;
    service->service_name = "checkout";
    service->service_namespace = "shop";
    return service;
}

Span server_span(double seconds, std::string route = "/orders/*") {
    Span span;
    span.kind = SpanKind::Server;
    span.start_mono_ns = 1'000'000'000;
    span.end_mono_ns = span.start_mono_ns + uint64_t(seconds * 1e9 + 0.5);
    span.method = "GET";
    span.path = "/orders/1";
    span.route = std::move(route);
    span.status = 200;
    span.local = {"127.0.0.1", 8080};
    span.peer = {"127.0.0.1", 51234};
    span.service = checkout_service();
    return span;
}

std::vector<Sample> render(const RedMetrics& metrics) {
    std::string text;
    metrics.render_prometheus(text);
    auto samples = parse_exposition(text);
    EXPECT_TRUE(samples.has_value()) << text;
    return samples.value_or(std::vector<Sample>{});
}

std::string only_value(const std::vector<Sample>& samples, std::string_view name,
                       const std::map<std::string, std::string>& match = {}) {
    const auto values = find_values(samples, name, match);
    EXPECT_EQ(values.size(), 1u) << name;
    return values.empty() ? "" : values[0];
}

std::string bucket(const std::vector<Sample>& samples, std::string_view family,
                   const std::string& le) {
    return only_value(samples, std::string(family) + "_bucket", {{"le", le}});
}

RedMetrics default_metrics(size_t max_series = 10000) {
    return RedMetrics(default_duration_buckets(), default_size_buckets(), max_series);
}

TEST(RedMetrics, DefaultBucketsMatchOpenTelemetry) {
    EXPECT_EQ(default_duration_buckets(),
              (std::vector<double>{0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5,
                                   5, 7.5, 10}));
    EXPECT_EQ(default_size_buckets(),
              (std::vector<double>{0, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192}));
}

TEST(RedMetrics, DurationBucketsAreInclusiveAndCumulative) {
    RedMetrics metrics = default_metrics();
    for (const double seconds : {0.0, 0.005, 0.0051, 0.3, 11.0}) {
        metrics.record(server_span(seconds));
    }
    const auto samples = render(metrics);
    const std::vector<std::pair<std::string, std::string>> expected = {
        {"0", "1"},   {"0.005", "2"}, {"0.01", "3"}, {"0.025", "3"}, {"0.05", "3"}, {"0.075", "3"},
        {"0.1", "3"}, {"0.25", "3"},  {"0.5", "4"},  {"0.75", "4"},  {"1", "4"},    {"2.5", "4"},
        {"5", "4"},   {"7.5", "4"},   {"10", "4"},   {"+Inf", "5"},
    };
    for (const auto& [le, count] : expected) {
        EXPECT_EQ(bucket(samples, kServerDuration, le), count) << "le=" << le;
    }
    EXPECT_EQ(find_values(samples, std::string(kServerDuration) + "_bucket", {}).size(),
              expected.size());
    EXPECT_EQ(only_value(samples, std::string(kServerDuration) + "_count"), "5");
    EXPECT_NEAR(std::stod(only_value(samples, std::string(kServerDuration) + "_sum")), 11.3101,
                1e-9);
}

TEST(RedMetrics, BodySizesGoToTheirOwnFamilies) {
    RedMetrics metrics = default_metrics();
    for (const uint64_t bytes : {0, 32, 33, 10000}) {
        Span span = server_span(0.01);
        span.request_body_bytes = bytes;
        span.response_body_bytes = 512;
        metrics.record(span);
    }
    const auto samples = render(metrics);
    const std::string request = "http_server_request_body_size_bytes";
    EXPECT_EQ(bucket(samples, request, "0"), "1");
    EXPECT_EQ(bucket(samples, request, "32"), "2");
    EXPECT_EQ(bucket(samples, request, "64"), "3");
    EXPECT_EQ(bucket(samples, request, "8192"), "3");
    EXPECT_EQ(bucket(samples, request, "+Inf"), "4");
    EXPECT_EQ(only_value(samples, request + "_sum"), "10065");
    const std::string response = "http_server_response_body_size_bytes";
    EXPECT_EQ(bucket(samples, response, "256"), "0");
    EXPECT_EQ(bucket(samples, response, "512"), "4");
    EXPECT_EQ(only_value(samples, response + "_sum"), "2048");
    EXPECT_TRUE(find_values(samples, "http_client_request_body_size_bytes_count", {}).empty());
}

TEST(RedMetrics, ClientSpansUseThePeerAsServer) {
    RedMetrics metrics = default_metrics();
    Span span = server_span(0.02);
    span.kind = SpanKind::Client;
    span.local = {"10.0.0.5", 40000};
    span.peer = {"10.0.0.9", 443};
    span.scheme = "https";
    span.request_body_bytes = 100;
    metrics.record(span);
    const auto samples = render(metrics);
    EXPECT_TRUE(find_values(samples, std::string(kServerDuration) + "_count", {}).empty());
    EXPECT_EQ(
        only_value(
            samples, std::string(kClientDuration) + "_count",
            {{"server_address", "10.0.0.9"}, {"server_port", "443"}, {"url_scheme", "https"}}),
        "1");
    EXPECT_EQ(only_value(samples, "http_client_request_body_size_bytes_count"), "1");
    EXPECT_EQ(only_value(samples, "http_client_response_body_size_bytes_count"), "1");
}

TEST(RedMetrics, RendersLabelsInBeylaOrder) {
    RedMetrics metrics = default_metrics();
    metrics.record(server_span(0.001));
    std::string text;
    metrics.render_prometheus(text);
    EXPECT_NE(text.find("# HELP http_server_request_duration_seconds "), std::string::npos);
    EXPECT_NE(text.find("# TYPE http_server_request_duration_seconds histogram\n"),
              std::string::npos);
    EXPECT_NE(text.find("\nhttp_server_request_duration_seconds_bucket{http_request_method=\"GET\","
                        "http_response_status_code=\"200\",http_route=\"/orders/*\","
                        "server_address=\"127.0.0.1\",server_port=\"8080\","
                        "service_name=\"checkout\",service_namespace=\"shop\","
                        "url_scheme=\"http\",le=\"0.005\"} 1\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("\nhttp_server_request_duration_seconds_count{http_request_method=\"GET\","
                        "http_response_status_code=\"200\",http_route=\"/orders/*\","
                        "server_address=\"127.0.0.1\",server_port=\"8080\","
                        "service_name=\"checkout\",service_namespace=\"shop\","
                        "url_scheme=\"http\"} 1\n"),
              std::string::npos)
        << text;
    // Client families have no data, so they are not rendered at all.
    EXPECT_EQ(text.find("http_client"), std::string::npos);
}

TEST(RedMetrics, EscapesLabelValues) {
    RedMetrics metrics = default_metrics();
    metrics.record(server_span(0.001, "/a\"b\\c\nd"));
    std::string text;
    metrics.render_prometheus(text);
    EXPECT_NE(text.find("http_route=\"/a\\\"b\\\\c\\nd\""), std::string::npos) << text;
    const auto samples = parse_exposition(text);
    ASSERT_TRUE(samples.has_value());
    EXPECT_EQ(only_value(*samples, std::string(kServerDuration) + "_count",
                         {{"http_route", "/a\"b\\c\nd"}}),
              "1");
}

TEST(RedMetrics, ReplacesInvalidUtf8AndMissingService) {
    RedMetrics metrics = default_metrics();
    Span span = server_span(0.001, "/caf\xc3\xa9/\xff\xfe");
    span.method = "G\x1fT";  // the internal key separator must not split labels
    span.service = nullptr;
    metrics.record(span);
    const auto samples = render(metrics);
    EXPECT_EQ(only_value(samples, std::string(kServerDuration) + "_count",
                         {{"http_route", "/caf\xc3\xa9/\xef\xbf\xbd\xef\xbf\xbd"},
                          {"http_request_method", "G\xef\xbf\xbdT"},
                          {"service_name", ""},
                          {"service_namespace", ""},
                          {"url_scheme", "http"}}),
              "1");
}

TEST(RedMetrics, IdenticalLabelsShareOneSeries) {
    RedMetrics metrics = default_metrics();
    metrics.record(server_span(0.001));
    metrics.record(server_span(0.002));
    Span other_status = server_span(0.003);
    other_status.status = 500;
    metrics.record(other_status);
    const auto samples = render(metrics);
    EXPECT_EQ(only_value(samples, std::string(kServerDuration) + "_count",
                         {{"http_response_status_code", "200"}}),
              "2");
    EXPECT_EQ(only_value(samples, std::string(kServerDuration) + "_count",
                         {{"http_response_status_code", "500"}}),
              "1");
}

TEST(RedMetrics, SeriesCapDropsNewLabelSetsOnly) {
    RedMetrics metrics = default_metrics(2);
    metrics.record(server_span(0.001, "/a"));
    Span client = server_span(0.001, "/b");
    client.kind = SpanKind::Client;
    metrics.record(client);
    metrics.record(server_span(0.001, "/c"));  // third label set: over the cap
    metrics.record(server_span(0.001, "/a"));  // existing: still counted
    metrics.record(server_span(0.001, "/d"));
    EXPECT_EQ(metrics.dropped_series(), 2u);
    const auto samples = render(metrics);
    EXPECT_EQ(only_value(samples, std::string(kServerDuration) + "_count", {{"http_route", "/a"}}),
              "2");
    EXPECT_EQ(only_value(samples, std::string(kClientDuration) + "_count", {{"http_route", "/b"}}),
              "1");
    EXPECT_TRUE(
        find_values(samples, std::string(kServerDuration) + "_count", {{"http_route", "/c"}})
            .empty());
    EXPECT_TRUE(
        find_values(samples, "http_server_request_body_size_bytes_count", {{"http_route", "/c"}})
            .empty());
}

TEST(RedMetrics, RenderIsConsistentUnderConcurrentRecords) {
    RedMetrics metrics = default_metrics();
    constexpr int kThreads = 4;
    constexpr int kPerThread = 2000;
    std::atomic<bool> done{false};
    std::atomic<int> inconsistent{0};
    std::atomic<int> renders{0};
    std::thread renderer([&] {
        // Every record updates three families under one lock, so any render
        // must show the same total in each of them.
        while (!done.load() || renders.load() == 0) {
            std::string text;
            metrics.render_prometheus(text);
            const auto samples = parse_exposition(text);
            if (!samples) {
                ++inconsistent;
                break;
            }
            uint64_t durations = 0;
            uint64_t requests = 0;
            uint64_t responses = 0;
            for (const Sample& s : *samples) {
                if (s.name == std::string(kServerDuration) + "_count") {
                    durations += std::stoull(s.value);
                } else if (s.name == "http_server_request_body_size_bytes_count") {
                    requests += std::stoull(s.value);
                } else if (s.name == "http_server_response_body_size_bytes_count") {
                    responses += std::stoull(s.value);
                }
            }
            if (durations != requests || durations != responses) {
                ++inconsistent;
            }
            ++renders;
        }
    });
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
        writers.emplace_back([&metrics, t] {
            for (int i = 0; i < kPerThread; ++i) {
                metrics.record(server_span(0.001 * (i % 50), "/r" + std::to_string((t + i) % 7)));
            }
        });
    }
    for (auto& w : writers) {
        w.join();
    }
    done = true;
    renderer.join();
    EXPECT_EQ(inconsistent.load(), 0);
    uint64_t total = 0;
    for (const auto& v :
         find_values(render(metrics), std::string(kServerDuration) + "_count", {})) {
        total += std::stoull(v);
    }
    EXPECT_EQ(total, uint64_t(kThreads * kPerThread));
}

TEST(RedMetrics, PromtoolFindsNothingToComplainAbout) {
    if (!test_util::promtool_available()) {
        GTEST_SKIP() << "promtool not installed";
    }
    RedMetrics metrics = default_metrics();
    metrics.record(server_span(0.001));
    metrics.record(server_span(3.0, "/items/*/reviews"));
    Span odd = server_span(0.2, "/a\"b\\c\nd/\xff");
    odd.service = nullptr;
    odd.status = 0;
    metrics.record(odd);
    Span client = server_span(0.05);
    client.kind = SpanKind::Client;
    client.peer = {"::1", 9000};
    client.response_body_bytes = 1 << 20;
    metrics.record(client);
    SelfMetrics self;
    self.events_read = 42;
    self.connections_tracked = 3;

    std::string text;
    metrics.render_prometheus(text);
    self.render_prometheus(text);
    const auto result = test_util::promtool_check(text);
    EXPECT_EQ(result.exit_code, 0) << result.output << "\n" << text;
    EXPECT_EQ(result.output, "") << text;
}

}  // namespace
}  // namespace sonde::pipeline
