#include "pipeline/red_metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "exposition_test_util.h"
#include "pipeline/self_metrics.h"

namespace sonde::pipeline {

// Readable failure output for snapshot comparisons (found by gtest through ADL).
static void PrintTo(const SeriesLabels& l, std::ostream* os) {
    *os << "{method=" << testing::PrintToString(l.method) << " status=" << l.status
        << " route=" << testing::PrintToString(l.route)
        << " server=" << testing::PrintToString(l.server_address) << ":" << l.server_port
        << " service=" << testing::PrintToString(l.service_name) << "/"
        << testing::PrintToString(l.service_namespace)
        << " scheme=" << testing::PrintToString(l.url_scheme)
        << " rpc=" << testing::PrintToString(l.rpc_system) << ":"
        << testing::PrintToString(l.rpc_method) << ":" << l.rpc_status << "}";
}

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

constexpr std::string_view kRpcServerDuration = "rpc_server_call_duration_seconds";
constexpr std::string_view kRpcClientDuration = "rpc_client_call_duration_seconds";

// A gRPC call as the HTTP/2 parser reports it, after the route matcher bounded its method.
Span rpc_span(SpanKind kind, int grpc_status, double seconds = 0.01) {
    Span span = server_span(seconds, "/helloworld.Greeter/SayHello");
    span.kind = kind;
    span.rpc = true;
    span.rpc_status = grpc_status;
    span.method = "POST";
    span.path = "/helloworld.Greeter/SayHello";
    span.protocol_version = "2";
    span.request_body_bytes = 12;
    span.response_body_bytes = 20;
    if (kind == SpanKind::Client) {
        span.local = {"10.0.0.5", 40000};
        span.peer = {"10.0.0.9", 50051};
    } else {
        span.local = {"127.0.0.1", 50051};
    }
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

// `threads` writers each record `per_thread` server spans over 7 routes, then all are joined.
void record_from_threads(RedMetrics& metrics, int threads, int per_thread) {
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
        writers.emplace_back([&metrics, t, per_thread] {
            for (int i = 0; i < per_thread; ++i) {
                metrics.record(server_span(0.001 * (i % 50), "/r" + std::to_string((t + i) % 7)));
            }
        });
    }
    for (auto& w : writers) {
        w.join();
    }
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
    record_from_threads(metrics, kThreads, kPerThread);
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

// ---- snapshot(): the structured view the OTLP exporter encodes

// Small layouts so every bucket of every family is asserted below. Spelled as vectors: a bare
// `{1000}` last would pick the two-layout constructor and become max_series.
RedMetrics small_bucket_metrics() {
    using Bounds = std::vector<double>;
    return RedMetrics(Bounds{0.1, 1}, Bounds{10, 100}, Bounds{1000});
}

Span client_span(double seconds) {
    Span span = server_span(seconds, "");
    span.kind = SpanKind::Client;
    span.method = "POST";
    span.status = 503;
    span.local = {"10.0.0.5", 40000};
    span.peer = {"10.0.0.9", 443};
    span.scheme = "https";
    return span;
}

const FamilySnapshot& family_of(const MetricsSnapshot& snapshot, MetricFamily family) {
    return snapshot.families[static_cast<size_t>(family)];
}

TEST(RedMetricsSnapshot, HoldsEveryFamilyWithItsOwnBucketsAndCounts) {
    RedMetrics metrics = small_bucket_metrics();
    Span fast = server_span(0.05);
    fast.request_body_bytes = 5;
    fast.response_body_bytes = 2000;
    metrics.record(fast);
    Span slow = server_span(0.5);
    slow.request_body_bytes = 50;
    slow.response_body_bytes = 500;
    metrics.record(slow);
    Span client = client_span(2);
    client.request_body_bytes = 500;
    client.response_body_bytes = 10;
    metrics.record(client);
    metrics.record(rpc_span(SpanKind::Server, 0, 0.05));
    metrics.record(rpc_span(SpanKind::Server, 0, 0.5));
    metrics.record(rpc_span(SpanKind::Client, 0, 0.2));

    const MetricsSnapshot snapshot = metrics.snapshot();
    struct Expected {
        MetricFamily family;
        std::vector<double> bounds;
        uint64_t count;
        double sum;
        std::vector<uint64_t> buckets;
    };
    const std::vector<Expected> table = {
        {MetricFamily::ServerDuration, {0.1, 1}, 2, 0.55, {1, 1, 0}},
        {MetricFamily::ClientDuration, {0.1, 1}, 1, 2, {0, 0, 1}},
        {MetricFamily::ServerRequestBodySize, {10, 100}, 2, 55, {1, 1, 0}},
        {MetricFamily::ServerResponseBodySize, {1000}, 2, 2500, {1, 1}},
        {MetricFamily::ClientRequestBodySize, {10, 100}, 1, 500, {0, 0, 1}},
        {MetricFamily::ClientResponseBodySize, {1000}, 1, 10, {1, 0}},
        // RPCs use the duration layout and never reach the HTTP families above.
        {MetricFamily::RpcServerDuration, {0.1, 1}, 2, 0.55, {1, 1, 0}},
        {MetricFamily::RpcClientDuration, {0.1, 1}, 1, 0.2, {0, 1, 0}},
    };
    ASSERT_EQ(table.size(), kMetricFamilyCount);
    for (size_t f = 0; f < table.size(); ++f) {
        const Expected& want = table[f];
        const FamilySnapshot& got = snapshot.families[f];
        SCOPED_TRACE("family " + std::to_string(f));
        EXPECT_EQ(got.family, want.family);
        EXPECT_EQ(got.bounds, want.bounds);
        ASSERT_EQ(got.series.size(), 1u);
        const HistogramData& histogram = got.series[0].histogram;
        EXPECT_EQ(histogram.count, want.count);
        EXPECT_DOUBLE_EQ(histogram.sum, want.sum);
        EXPECT_EQ(histogram.bucket_counts, want.buckets);
        EXPECT_EQ(histogram.bucket_counts.size(), got.bounds.size() + 1);
    }
    // A label set has one series in each family of its kind, under one key.
    EXPECT_EQ(family_of(snapshot, MetricFamily::ServerDuration).series[0].key,
              family_of(snapshot, MetricFamily::ServerResponseBodySize).series[0].key);
    EXPECT_NE(family_of(snapshot, MetricFamily::ServerDuration).series[0].key,
              family_of(snapshot, MetricFamily::ClientDuration).series[0].key);
}

TEST(RedMetricsSnapshot, EmptyMetricsStillListEveryFamily) {
    const MetricsSnapshot snapshot = small_bucket_metrics().snapshot();
    for (size_t f = 0; f < kMetricFamilyCount; ++f) {
        EXPECT_EQ(static_cast<size_t>(snapshot.families[f].family), f);
        EXPECT_FALSE(snapshot.families[f].bounds.empty());
        EXPECT_TRUE(snapshot.families[f].series.empty());
    }
}

TEST(RedMetricsSnapshot, ResponseSizesUseTheirOwnBucketsInPrometheusToo) {
    RedMetrics metrics = small_bucket_metrics();
    Span span = server_span(0.01);
    span.request_body_bytes = 10;
    span.response_body_bytes = 1000;
    metrics.record(span);
    const auto samples = render(metrics);
    auto bounds_of = [&](std::string_view family) {
        std::vector<std::string> les;
        for (const Sample& s : samples) {
            if (s.name == std::string(family) + "_bucket") les.push_back(s.labels.at("le"));
        }
        return les;
    };
    using Les = std::vector<std::string>;
    EXPECT_EQ(bounds_of("http_server_request_body_size_bytes"), (Les{"10", "100", "+Inf"}));
    EXPECT_EQ(bounds_of("http_server_response_body_size_bytes"), (Les{"1000", "+Inf"}));
    EXPECT_EQ(bounds_of(kServerDuration), (Les{"0.1", "1", "+Inf"}));
    EXPECT_EQ(bucket(samples, "http_server_request_body_size_bytes", "10"), "1");
    EXPECT_EQ(bucket(samples, "http_server_response_body_size_bytes", "1000"), "1");
}

TEST(RedMetricsSnapshot, SizeBucketsConstructorSharesOneLayout) {
    const MetricsSnapshot snapshot = default_metrics().snapshot();
    for (const MetricFamily family :
         {MetricFamily::ServerRequestBodySize, MetricFamily::ServerResponseBodySize,
          MetricFamily::ClientRequestBodySize, MetricFamily::ClientResponseBodySize}) {
        EXPECT_EQ(family_of(snapshot, family).bounds, default_size_buckets());
    }
    EXPECT_EQ(family_of(snapshot, MetricFamily::ClientDuration).bounds, default_duration_buckets());
}

TEST(RedMetricsSnapshot, LabelsReadBackAsStored) {
    struct Case {
        std::string name;
        std::function<Span()> span;
        MetricFamily family;
        SeriesLabels labels;
    };
    const std::string long_route = "/" + std::string(300, 'r');
    const std::vector<Case> cases = {
        {"server uses the local endpoint",
         [] { return server_span(0.01); },
         MetricFamily::ServerDuration,
         {"GET", 200, "/orders/*", "127.0.0.1", 8080, "checkout", "shop", "http"}},
        {"client uses the peer endpoint",
         [] { return client_span(0.01); },
         MetricFamily::ClientDuration,
         {"POST", 503, "", "10.0.0.9", 443, "checkout", "shop", "https"}},
        {"unknown status, port and service",
         [] {
             Span span = server_span(0.01);
             span.status = 0;
             span.local = {"", 0};
             span.service = nullptr;
             span.scheme = "";
             return span;
         },
         MetricFamily::ServerDuration,
         {"GET", 0, "/orders/*", "", 0, "", "", ""}},
        {"largest status and port",
         [] {
             Span span = server_span(0.01);
             span.status = 599;
             span.local.port = 65535;
             return span;
         },
         MetricFamily::ServerDuration,
         {"GET", 599, "/orders/*", "127.0.0.1", 65535, "checkout", "shop", "http"}},
        {"separator and invalid UTF-8 replaced, long values cut",
         [&] {
             Span span = server_span(0.01, long_route);
             span.method = "G\x1fT";
             span.local.address = "\xff::1";
             return span;
         },
         MetricFamily::ServerDuration,
         {"G\xef\xbf\xbdT", 200, long_route.substr(0, 256), "\xef\xbf\xbd::1", 8080, "checkout",
          "shop", "http"}},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        RedMetrics metrics = default_metrics();
        metrics.record(c.span());
        const MetricsSnapshot snapshot = metrics.snapshot();
        const FamilySnapshot& family = family_of(snapshot, c.family);
        ASSERT_EQ(family.series.size(), 1u);
        EXPECT_EQ(family.series[0].labels, c.labels);
        // The size families of the same kind carry the same labels.
        for (const FamilySnapshot& other : snapshot.families) {
            for (const SeriesSnapshot& series : other.series) {
                EXPECT_EQ(series.labels, c.labels);
            }
        }
    }
}

TEST(RedMetricsSnapshot, KeysAreStableAndCountsCumulative) {
    RedMetrics metrics = default_metrics();
    metrics.record(server_span(0.01, "/a"));
    metrics.record(server_span(0.02, "/a"));
    metrics.record(server_span(0.01, "/b"));
    const MetricsSnapshot first = metrics.snapshot();
    metrics.record(server_span(0.03, "/a"));
    metrics.record(server_span(0.01, "/c"));
    const MetricsSnapshot second = metrics.snapshot();

    auto counts_by_route = [](const MetricsSnapshot& snapshot) {
        std::map<std::string, std::pair<std::string, uint64_t>> out;  // route -> key, count
        const auto& series = family_of(snapshot, MetricFamily::ServerDuration).series;
        EXPECT_TRUE(std::is_sorted(series.begin(), series.end(),
                                   [](const auto& a, const auto& b) { return a.key < b.key; }));
        for (const SeriesSnapshot& s : series) {
            out[s.labels.route] = {s.key, s.histogram.count};
        }
        return out;
    };
    const auto before = counts_by_route(first);
    const auto after = counts_by_route(second);
    ASSERT_EQ(before.size(), 2u);
    ASSERT_EQ(after.size(), 3u);
    EXPECT_EQ(before.at("/a").second, 2u);
    EXPECT_EQ(before.at("/b").second, 1u);
    EXPECT_EQ(after.at("/a").second, 3u);
    EXPECT_EQ(after.at("/b").second, 1u);
    EXPECT_EQ(after.at("/c").second, 1u);
    for (const auto& [route, key_count] : before) {
        EXPECT_EQ(after.at(route).first, key_count.first) << route;
    }
    const auto& a_after = family_of(second, MetricFamily::ServerDuration).series;
    const auto a = std::find_if(a_after.begin(), a_after.end(),
                                [](const SeriesSnapshot& s) { return s.labels.route == "/a"; });
    ASSERT_NE(a, a_after.end());
    EXPECT_NEAR(a->histogram.sum, 0.06, 1e-12);
}

TEST(RedMetricsSnapshot, ConsistentUnderConcurrentRecords) {
    RedMetrics metrics = default_metrics();
    constexpr int kThreads = 3;
    constexpr int kPerThread = 2000;
    std::atomic<bool> done{false};
    std::atomic<int> inconsistent{0};
    std::atomic<int> snapshots{0};
    std::thread reader([&] {
        // One record updates three families under one lock, so every snapshot must show the
        // same total in each, and every histogram's buckets must add up to its count.
        while (!done.load() || snapshots.load() == 0) {
            const MetricsSnapshot snapshot = metrics.snapshot();
            uint64_t totals[kMetricFamilyCount] = {};
            for (size_t f = 0; f < kMetricFamilyCount; ++f) {
                const FamilySnapshot& family = snapshot.families[f];
                for (const SeriesSnapshot& series : family.series) {
                    uint64_t in_buckets = 0;
                    for (const uint64_t c : series.histogram.bucket_counts) in_buckets += c;
                    if (in_buckets != series.histogram.count ||
                        series.histogram.bucket_counts.size() != family.bounds.size() + 1) {
                        ++inconsistent;
                    }
                    totals[f] += series.histogram.count;
                }
            }
            if (totals[0] != totals[2] || totals[0] != totals[3]) ++inconsistent;
            ++snapshots;
        }
    });
    record_from_threads(metrics, kThreads, kPerThread);
    done = true;
    reader.join();
    EXPECT_EQ(inconsistent.load(), 0);
    uint64_t total = 0;
    const MetricsSnapshot final_snapshot = metrics.snapshot();
    for (const SeriesSnapshot& series :
         family_of(final_snapshot, MetricFamily::ServerDuration).series) {
        total += series.histogram.count;
    }
    EXPECT_EQ(total, uint64_t(kThreads * kPerThread));
}

// ---- RPC families

TEST(RedMetricsRpc, ServerCallIsCountedUnderItsStatusName) {
    RedMetrics metrics = default_metrics();
    metrics.record(rpc_span(SpanKind::Server, 5, 0.001));
    std::string text;
    metrics.render_prometheus(text);
    EXPECT_NE(text.find("# HELP rpc_server_call_duration_seconds "), std::string::npos) << text;
    EXPECT_NE(text.find("# TYPE rpc_server_call_duration_seconds histogram\n"), std::string::npos);
    EXPECT_NE(text.find("\nrpc_server_call_duration_seconds_count{rpc_grpc_status_code=\"5\","
                        "rpc_method=\"/helloworld.Greeter/SayHello\","
                        "rpc_response_status_code=\"NOT_FOUND\",rpc_system_name=\"grpc\","
                        "server_address=\"127.0.0.1\",server_port=\"50051\","
                        "service_name=\"checkout\",service_namespace=\"shop\"} 1\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("\nrpc_server_call_duration_seconds_bucket{rpc_grpc_status_code=\"5\","
                        "rpc_method=\"/helloworld.Greeter/SayHello\","
                        "rpc_response_status_code=\"NOT_FOUND\",rpc_system_name=\"grpc\","
                        "server_address=\"127.0.0.1\",server_port=\"50051\","
                        "service_name=\"checkout\",service_namespace=\"shop\",le=\"0.005\"} 1\n"),
              std::string::npos)
        << text;
    // Not an HTTP request as far as the metrics go, and RPCs have no body-size families.
    EXPECT_EQ(text.find("http_"), std::string::npos) << text;
    EXPECT_EQ(text.find("rpc_client"), std::string::npos) << text;
}

TEST(RedMetricsRpc, EveryKindAndStatusLandsInItsOwnSeries) {
    struct Case {
        std::string name;
        Span span;
        std::string_view family;
        std::map<std::string, std::string> labels;
    };
    Span no_status = rpc_span(SpanKind::Server, -1);
    Span unnamed_code = rpc_span(SpanKind::Client, 99);
    Span capped = rpc_span(SpanKind::Server, 0);
    capped.route = "_OTHER";
    Span unbounded = rpc_span(SpanKind::Server, 0);
    unbounded.route.clear();  // not through the route matcher: the parsed method
    unbounded.path = "/pkg.Svc/Raw";
    const std::vector<Case> cases = {
        {"server OK",
         rpc_span(SpanKind::Server, 0),
         kRpcServerDuration,
         {{"rpc_grpc_status_code", "0"},
          {"rpc_response_status_code", "OK"},
          {"server_address", "127.0.0.1"},
          {"server_port", "50051"}}},
        {"client uses the peer as server",
         rpc_span(SpanKind::Client, 14),
         kRpcClientDuration,
         {{"rpc_grpc_status_code", "14"},
          {"rpc_response_status_code", "UNAVAILABLE"},
          {"server_address", "10.0.0.9"},
          {"server_port", "50051"}}},
        // Empty, which Prometheus treats as absent: "0" would claim OK.
        {"no status seen",
         no_status,
         kRpcServerDuration,
         {{"rpc_grpc_status_code", ""}, {"rpc_response_status_code", ""}}},
        {"codes past 16 as decimal",
         unnamed_code,
         kRpcClientDuration,
         {{"rpc_grpc_status_code", "99"}, {"rpc_response_status_code", "99"}}},
        {"capped method", capped, kRpcServerDuration, {{"rpc_method", "_OTHER"}}},
        {"parsed method when no route was set",
         unbounded,
         kRpcServerDuration,
         {{"rpc_method", "/pkg.Svc/Raw"}}},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        RedMetrics metrics = default_metrics();
        metrics.record(c.span);
        const auto samples = render(metrics);
        std::map<std::string, std::string> labels = c.labels;
        labels.emplace("rpc_system_name", "grpc");
        labels.emplace("rpc_method", "/helloworld.Greeter/SayHello");
        labels.emplace("service_name", "checkout");
        EXPECT_EQ(only_value(samples, std::string(c.family) + "_count", labels), "1");
        size_t rendered = 0;
        for (const Sample& sample : samples) {
            if (sample.name.rfind("http_", 0) == 0) ADD_FAILURE() << sample.name;
            if (sample.name == std::string(c.family) + "_count") {
                ++rendered;
                // The RPC label set only: no HTTP label, not even an empty one.
                EXPECT_EQ(sample.labels.count("http_route"), 0u);
                EXPECT_EQ(sample.labels.count("url_scheme"), 0u);
                EXPECT_EQ(sample.labels.size(), 8u);
            }
        }
        EXPECT_EQ(rendered, 1u);
    }
}

TEST(RedMetricsRpc, HttpAndRpcOfOneServiceStaySeparate) {
    RedMetrics metrics = default_metrics();
    metrics.record(server_span(0.01));
    metrics.record(rpc_span(SpanKind::Server, 0));
    metrics.record(rpc_span(SpanKind::Server, 0));
    Span h2 = server_span(0.01);
    h2.protocol_version = "2";  // plain HTTP/2 stays HTTP
    metrics.record(h2);
    const auto samples = render(metrics);
    EXPECT_EQ(only_value(samples, std::string(kServerDuration) + "_count"), "2");
    EXPECT_EQ(only_value(samples, std::string(kRpcServerDuration) + "_count"), "2");
    EXPECT_EQ(only_value(samples, "http_server_request_body_size_bytes_count"), "2");
}

TEST(RedMetricsRpc, SnapshotLabelsReadBackAsStored) {
    RedMetrics metrics = default_metrics();
    metrics.record(rpc_span(SpanKind::Server, 13));
    metrics.record(rpc_span(SpanKind::Client, -1));
    const MetricsSnapshot snapshot = metrics.snapshot();
    SeriesLabels server;
    server.server_address = "127.0.0.1";
    server.server_port = 50051;
    server.service_name = "checkout";
    server.service_namespace = "shop";
    server.rpc_system = "grpc";
    server.rpc_method = "/helloworld.Greeter/SayHello";
    server.rpc_status = 13;
    SeriesLabels client = server;
    client.server_address = "10.0.0.9";
    client.rpc_status = -1;
    const auto& server_family = family_of(snapshot, MetricFamily::RpcServerDuration);
    const auto& client_family = family_of(snapshot, MetricFamily::RpcClientDuration);
    ASSERT_EQ(server_family.series.size(), 1u);
    ASSERT_EQ(client_family.series.size(), 1u);
    EXPECT_EQ(server_family.series[0].labels, server);
    EXPECT_EQ(client_family.series[0].labels, client);
    EXPECT_EQ(server_family.bounds, default_duration_buckets());
    for (const FamilySnapshot& family : snapshot.families) {
        if (metric_family_info(family.family).schema == LabelSchema::Http) {
            EXPECT_TRUE(family.series.empty()) << metric_family_info(family.family).prometheus_name;
        }
    }
}

TEST(RedMetricsRpc, SeriesCapCoversEveryFamily) {
    RedMetrics metrics = default_metrics(3);
    metrics.record(server_span(0.001, "/a"));
    metrics.record(rpc_span(SpanKind::Server, 0));
    metrics.record(rpc_span(SpanKind::Client, 0));
    // Full: new label sets of either schema are refused, known ones still counted.
    metrics.record(rpc_span(SpanKind::Server, 5));
    metrics.record(server_span(0.001, "/b"));
    metrics.record(rpc_span(SpanKind::Server, 0));
    EXPECT_EQ(metrics.dropped_series(), 2u);
    const auto samples = render(metrics);
    EXPECT_EQ(only_value(samples, std::string(kRpcServerDuration) + "_count"), "2");
    EXPECT_EQ(only_value(samples, std::string(kRpcClientDuration) + "_count"), "1");
    EXPECT_EQ(only_value(samples, std::string(kServerDuration) + "_count"), "1");
}

TEST(RedMetricsFamilies, TableDescribesEveryFamilyOnce) {
    std::set<std::string_view> prometheus_names;
    std::set<std::string_view> otel_names;
    for (size_t f = 0; f < kMetricFamilyCount; ++f) {
        const MetricFamilyInfo& info = kMetricFamilies[f];
        EXPECT_EQ(static_cast<size_t>(info.family), f);
        EXPECT_TRUE(prometheus_names.insert(info.prometheus_name).second) << info.prometheus_name;
        EXPECT_TRUE(otel_names.insert(info.otel_name).second) << info.otel_name;
        // Durations are seconds, sizes bytes, in both namings.
        const bool duration = info.measure == Measure::Duration;
        EXPECT_EQ(info.otel_unit, duration ? "s" : "By") << info.otel_name;
        const std::string_view suffix = duration ? "_seconds" : "_bytes";
        EXPECT_TRUE(info.prometheus_name.size() > suffix.size() &&
                    info.prometheus_name.substr(info.prometheus_name.size() - suffix.size()) ==
                        suffix)
            << info.prometheus_name;
        EXPECT_FALSE(info.help.empty());
    }
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
    metrics.record(rpc_span(SpanKind::Server, 5));
    metrics.record(rpc_span(SpanKind::Client, -1));
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
