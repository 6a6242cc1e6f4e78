#include "export/otlp/otlp_metric_encoding.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "otlp_attributes_test_util.h"

namespace sonde::exporter::otlp {
namespace {

using pipeline::MetricFamily;
using pipeline::MetricsSnapshot;
using testing::Attributes;
using testing::attributes_of;
using testing::Value;

std::shared_ptr<const pipeline::ServiceIdentity> make_service(std::string name,
                                                              std::string service_namespace) {
    auto service = std::make_shared<pipeline::ServiceIdentity>();
    service->pid = 1234;
    service->exe_name = name;
    service->service_name = std::move(name);
    service->service_namespace = std::move(service_namespace);
    return service;
}

pipeline::Span server_span(double seconds, std::string route = "/orders/*") {
    pipeline::Span span;
    span.kind = pipeline::SpanKind::Server;
    span.start_mono_ns = 1'000'000'000;
    span.end_mono_ns = span.start_mono_ns + uint64_t(seconds * 1e9 + 0.5);
    span.method = "GET";
    span.path = "/orders/1";
    span.route = std::move(route);
    span.status = 200;
    span.local = {"127.0.0.1", 8080};
    span.peer = {"127.0.0.1", 51234};
    span.service = make_service("checkout", "shop");
    return span;
}

pipeline::Span client_span(double seconds) {
    pipeline::Span span = server_span(seconds, "");
    span.kind = pipeline::SpanKind::Client;
    span.method = "POST";
    span.status = 503;
    span.local = {"10.0.0.5", 40000};
    span.peer = {"10.0.0.9", 443};
    span.scheme = "https";
    return span;
}

// A gRPC call as the pipeline hands it over: method bounded by the route matcher.
pipeline::Span rpc_span(pipeline::SpanKind kind, int grpc_status, double seconds) {
    pipeline::Span span = server_span(seconds, "/helloworld.Greeter/SayHello");
    span.kind = kind;
    span.rpc = true;
    span.rpc_status = grpc_status;
    span.method = "POST";
    span.path = "/helloworld.Greeter/SayHello";
    span.protocol_version = "2";
    span.local = {"127.0.0.1", 50051};
    if (kind == pipeline::SpanKind::Client) {
        span.local = {"10.0.0.5", 40000};
        span.peer = {"10.0.0.9", 50051};
    }
    return span;
}

using Bounds = std::vector<double>;

// Small layouts so every bucket is asserted. Spelled as vectors: a bare `{1000}` last would pick
// the two-layout constructor and become max_series.
pipeline::RedMetrics small_bucket_metrics() {
    return pipeline::RedMetrics(Bounds{0.1, 1}, Bounds{100}, Bounds{1000});
}

MetricsEncodeOptions options_for(Temporality temporality) {
    MetricsEncodeOptions options;
    options.encoder.host_name = "node-7";
    options.temporality = temporality;
    options.start_time_unix_nano = 1'700'000'000'000'000'000ULL;
    options.time_unix_nano = 1'700'000'060'000'000'000ULL;
    return options;
}

// Encode, serialize, and decode again: the assertions run on what a collector would read.
otlp_collector_metrics::ExportMetricsServiceRequest round_trip(
    const MetricsSnapshot& snapshot, const MetricsEncodeOptions& options) {
    otlp_collector_metrics::ExportMetricsServiceRequest request;
    build_metrics_request(snapshot, options, &request);
    std::string wire;
    EXPECT_TRUE(request.SerializeToString(&wire));
    otlp_collector_metrics::ExportMetricsServiceRequest decoded;
    EXPECT_TRUE(decoded.ParseFromString(wire));
    return decoded;
}

std::string service_name_of(const otlp_metrics::ResourceMetrics& resource_metrics) {
    auto attrs = attributes_of(resource_metrics.resource().attributes());
    return std::get<std::string>(attrs["service.name"]);
}

const otlp_metrics::Metric* find_metric(const otlp_metrics::ResourceMetrics& resource_metrics,
                                        std::string_view name) {
    for (const auto& metric : resource_metrics.scope_metrics(0).metrics()) {
        if (metric.name() == name) return &metric;
    }
    return nullptr;
}

template <typename T>
std::vector<T> to_vector(const google::protobuf::RepeatedField<T>& field) {
    return {field.begin(), field.end()};
}

TEST(OtlpMetricEncoding, NamesAndUnitsFollowTheConventions) {
    const std::vector<std::tuple<MetricFamily, std::string_view, std::string_view>> table = {
        {MetricFamily::ServerDuration, "http.server.request.duration", "s"},
        {MetricFamily::ClientDuration, "http.client.request.duration", "s"},
        {MetricFamily::ServerRequestBodySize, "http.server.request.body.size", "By"},
        {MetricFamily::ServerResponseBodySize, "http.server.response.body.size", "By"},
        {MetricFamily::ClientRequestBodySize, "http.client.request.body.size", "By"},
        {MetricFamily::ClientResponseBodySize, "http.client.response.body.size", "By"},
        {MetricFamily::RpcServerDuration, "rpc.server.call.duration", "s"},
        {MetricFamily::RpcClientDuration, "rpc.client.call.duration", "s"},
    };
    ASSERT_EQ(table.size(), pipeline::kMetricFamilyCount);
    for (const auto& [family, name, unit] : table) {
        EXPECT_EQ(otel_metric_name(family), name);
        EXPECT_EQ(otel_metric_unit(family), unit);
    }
}

TEST(OtlpMetricEncoding, CumulativeRequestCarriesEveryField) {
    pipeline::RedMetrics metrics = small_bucket_metrics();
    pipeline::Span fast = server_span(0.05);
    fast.request_body_bytes = 10;
    fast.response_body_bytes = 2000;
    metrics.record(fast);
    pipeline::Span slow = server_span(0.5);
    slow.request_body_bytes = 100;
    slow.response_body_bytes = 500;
    metrics.record(slow);
    pipeline::Span client = client_span(2);
    client.request_body_bytes = 500;
    client.response_body_bytes = 10;
    metrics.record(client);
    pipeline::Span users = server_span(0.2, "/users/{id}");
    users.status = 404;
    users.service = make_service("users", "");
    metrics.record(users);

    const auto options = options_for(Temporality::Cumulative);
    const auto request = round_trip(metrics.snapshot(), options);

    // Resources in order of first appearance: checkout's status-200 series sorts before users'
    // status-404 one in the first family.
    ASSERT_EQ(request.resource_metrics_size(), 2);
    const auto& checkout = request.resource_metrics(0);
    const auto& users_resource = request.resource_metrics(1);
    const Attributes agent = {
        {"host.name", std::string("node-7")},
        {"telemetry.sdk.name", std::string("sonde")},
        {"telemetry.sdk.version", std::string(SONDE_VERSION)},
    };
    Attributes checkout_resource = agent;
    checkout_resource["service.name"] = std::string("checkout");
    checkout_resource["service.namespace"] = std::string("shop");
    EXPECT_EQ(attributes_of(checkout.resource().attributes()), checkout_resource);
    Attributes users_attributes = agent;
    users_attributes["service.name"] = std::string("users");  // no namespace: left out
    EXPECT_EQ(attributes_of(users_resource.resource().attributes()), users_attributes);

    for (const auto& resource_metrics : request.resource_metrics()) {
        ASSERT_EQ(resource_metrics.scope_metrics_size(), 1);
        EXPECT_EQ(resource_metrics.scope_metrics(0).scope().name(), "sonde");
        EXPECT_EQ(resource_metrics.scope_metrics(0).scope().version(), SONDE_VERSION);
    }

    // Metrics come in family order, and only for families with data for that service.
    auto names_of = [](const otlp_metrics::ResourceMetrics& rm) {
        std::vector<std::string> names;
        for (const auto& metric : rm.scope_metrics(0).metrics()) names.push_back(metric.name());
        return names;
    };
    EXPECT_EQ(names_of(checkout),
              (std::vector<std::string>{
                  "http.server.request.duration", "http.client.request.duration",
                  "http.server.request.body.size", "http.server.response.body.size",
                  "http.client.request.body.size", "http.client.response.body.size"}));
    EXPECT_EQ(
        names_of(users_resource),
        (std::vector<std::string>{"http.server.request.duration", "http.server.request.body.size",
                                  "http.server.response.body.size"}));

    const Attributes checkout_server = {
        {"http.request.method", std::string("GET")},
        {"http.response.status_code", int64_t{200}},
        {"http.route", std::string("/orders/*")},
        {"server.address", std::string("127.0.0.1")},
        {"server.port", int64_t{8080}},
        {"url.scheme", std::string("http")},
    };
    const Attributes checkout_client = {
        {"http.request.method", std::string("POST")}, {"http.response.status_code", int64_t{503}},
        {"server.address", std::string("10.0.0.9")},  {"server.port", int64_t{443}},
        {"url.scheme", std::string("https")},
    };  // empty route: left out
    Attributes users_server = checkout_server;
    users_server["http.response.status_code"] = int64_t{404};
    users_server["http.route"] = std::string("/users/{id}");

    struct Expected {
        const otlp_metrics::ResourceMetrics* resource;
        std::string name;
        std::string unit;
        const Attributes* attributes;
        std::vector<double> bounds;
        uint64_t count;
        double sum;
        std::vector<uint64_t> buckets;
    };
    const std::vector<Expected> table = {
        {&checkout,
         "http.server.request.duration",
         "s",
         &checkout_server,
         {0.1, 1},
         2,
         0.55,
         {1, 1, 0}},
        {&checkout,
         "http.client.request.duration",
         "s",
         &checkout_client,
         {0.1, 1},
         1,
         2,
         {0, 0, 1}},
        {&checkout, "http.server.request.body.size", "By", &checkout_server, {100}, 2, 110, {2, 0}},
        {&checkout,
         "http.server.response.body.size",
         "By",
         &checkout_server,
         {1000},
         2,
         2500,
         {1, 1}},
        {&checkout, "http.client.request.body.size", "By", &checkout_client, {100}, 1, 500, {0, 1}},
        {&checkout,
         "http.client.response.body.size",
         "By",
         &checkout_client,
         {1000},
         1,
         10,
         {1, 0}},
        {&users_resource,
         "http.server.request.duration",
         "s",
         &users_server,
         {0.1, 1},
         1,
         0.2,
         {0, 1, 0}},
        {&users_resource,
         "http.server.request.body.size",
         "By",
         &users_server,
         {100},
         1,
         0,
         {1, 0}},
        {&users_resource,
         "http.server.response.body.size",
         "By",
         &users_server,
         {1000},
         1,
         0,
         {1, 0}},
    };
    for (const Expected& want : table) {
        SCOPED_TRACE(service_name_of(*want.resource) + " " + want.name);
        const otlp_metrics::Metric* metric = find_metric(*want.resource, want.name);
        ASSERT_NE(metric, nullptr);
        EXPECT_EQ(metric->unit(), want.unit);
        ASSERT_TRUE(metric->has_histogram());
        const auto& histogram = metric->histogram();
        EXPECT_EQ(histogram.aggregation_temporality(),
                  otlp_metrics::AGGREGATION_TEMPORALITY_CUMULATIVE);
        ASSERT_EQ(histogram.data_points_size(), 1);
        const auto& point = histogram.data_points(0);
        EXPECT_EQ(attributes_of(point.attributes()), *want.attributes);
        EXPECT_EQ(point.start_time_unix_nano(), options.start_time_unix_nano);
        EXPECT_EQ(point.time_unix_nano(), options.time_unix_nano);
        EXPECT_EQ(point.count(), want.count);
        ASSERT_TRUE(point.has_sum());
        EXPECT_DOUBLE_EQ(point.sum(), want.sum);
        EXPECT_EQ(to_vector(point.explicit_bounds()), want.bounds);
        EXPECT_EQ(to_vector(point.bucket_counts()), want.buckets);
        EXPECT_EQ(point.flags(), 0u);
        EXPECT_FALSE(point.has_min());
        EXPECT_FALSE(point.has_max());
    }
}

TEST(OtlpMetricEncoding, SeriesOfOneServiceShareOneMetric) {
    pipeline::RedMetrics metrics = small_bucket_metrics();
    metrics.record(server_span(0.01, "/a"));
    metrics.record(server_span(0.01, "/b"));
    pipeline::Span other_status = server_span(0.01, "/a");
    other_status.status = 500;
    metrics.record(other_status);
    const auto request = round_trip(metrics.snapshot(), options_for(Temporality::Cumulative));
    ASSERT_EQ(request.resource_metrics_size(), 1);
    const otlp_metrics::Metric* metric =
        find_metric(request.resource_metrics(0), "http.server.request.duration");
    ASSERT_NE(metric, nullptr);
    ASSERT_EQ(metric->histogram().data_points_size(), 3);
    std::vector<std::pair<std::string, int64_t>> identities;
    for (const auto& point : metric->histogram().data_points()) {
        auto attrs = attributes_of(point.attributes());
        identities.emplace_back(std::get<std::string>(attrs["http.route"]),
                                std::get<int64_t>(attrs["http.response.status_code"]));
    }
    // Snapshot order: by series key (method, then status, then route).
    EXPECT_EQ(identities, (std::vector<std::pair<std::string, int64_t>>{
                              {"/a", 200}, {"/b", 200}, {"/a", 500}}));
}

TEST(OtlpMetricEncoding, DeltaTemporalityIsMarkedOnEveryMetric) {
    pipeline::RedMetrics metrics = small_bucket_metrics();
    metrics.record(server_span(0.01));
    metrics.record(client_span(0.01));
    const auto request = round_trip(metrics.snapshot(), options_for(Temporality::Delta));
    ASSERT_EQ(request.resource_metrics_size(), 1);
    const auto& metric_list = request.resource_metrics(0).scope_metrics(0).metrics();
    ASSERT_EQ(metric_list.size(), 6);
    for (const auto& metric : metric_list) {
        EXPECT_EQ(metric.histogram().aggregation_temporality(),
                  otlp_metrics::AGGREGATION_TEMPORALITY_DELTA)
            << metric.name();
    }
}

TEST(OtlpMetricEncoding, UnknownLabelsAreLeftOutAndServiceDefaults) {
    pipeline::RedMetrics metrics = small_bucket_metrics();
    pipeline::Span span = server_span(0.01, "");
    span.status = 0;  // no response seen
    span.local = {"", 0};
    span.scheme = "";
    span.service = nullptr;
    metrics.record(span);
    const auto request = round_trip(metrics.snapshot(), options_for(Temporality::Cumulative));
    ASSERT_EQ(request.resource_metrics_size(), 1);
    auto resource = attributes_of(request.resource_metrics(0).resource().attributes());
    EXPECT_EQ(std::get<std::string>(resource["service.name"]), "unknown_service");
    EXPECT_EQ(resource.count("service.namespace"), 0u);
    const otlp_metrics::Metric* metric =
        find_metric(request.resource_metrics(0), "http.server.request.duration");
    ASSERT_NE(metric, nullptr);
    ASSERT_EQ(metric->histogram().data_points_size(), 1);
    EXPECT_EQ(attributes_of(metric->histogram().data_points(0).attributes()),
              (Attributes{{"http.request.method", std::string("GET")}}));
}

TEST(OtlpMetricEncoding, EmptySeriesAndServicesAreSkipped) {
    pipeline::RedMetrics metrics = small_bucket_metrics();
    metrics.record(server_span(0.01, "/kept"));
    metrics.record(server_span(0.01, "/emptied"));
    pipeline::Span idle = server_span(0.01);
    idle.service = make_service("idle", "");
    metrics.record(idle);
    MetricsSnapshot snapshot = metrics.snapshot();
    // As a delta with nothing new for those series would be: present, but zero.
    for (auto& family : snapshot.families) {
        for (auto& series : family.series) {
            if (series.labels.route == "/emptied" || series.labels.service_name == "idle") {
                series.histogram.count = 0;
                series.histogram.sum = 0;
                std::fill(series.histogram.bucket_counts.begin(),
                          series.histogram.bucket_counts.end(), 0);
            }
        }
    }
    const auto request = round_trip(snapshot, options_for(Temporality::Delta));
    ASSERT_EQ(request.resource_metrics_size(), 1);
    EXPECT_EQ(service_name_of(request.resource_metrics(0)), "checkout");
    const auto& metric_list = request.resource_metrics(0).scope_metrics(0).metrics();
    ASSERT_EQ(metric_list.size(), 3);
    for (const auto& metric : metric_list) {
        ASSERT_EQ(metric.histogram().data_points_size(), 1) << metric.name();
        auto attrs = attributes_of(metric.histogram().data_points(0).attributes());
        EXPECT_EQ(std::get<std::string>(attrs["http.route"]), "/kept");
    }

    const auto nothing =
        round_trip(small_bucket_metrics().snapshot(), options_for(Temporality::Cumulative));
    EXPECT_EQ(nothing.resource_metrics_size(), 0);
}

TEST(OtlpMetricEncoding, PointWithMismatchedBucketsIsNotSent) {
    pipeline::RedMetrics metrics = small_bucket_metrics();
    metrics.record(server_span(0.01, "/a"));
    metrics.record(server_span(0.01, "/b"));
    MetricsSnapshot snapshot = metrics.snapshot();
    auto& durations = snapshot.families[static_cast<size_t>(MetricFamily::ServerDuration)];
    ASSERT_EQ(durations.series.size(), 2u);
    durations.series[0].histogram.bucket_counts.push_back(0);
    const auto request = round_trip(snapshot, options_for(Temporality::Cumulative));
    const otlp_metrics::Metric* metric =
        find_metric(request.resource_metrics(0), "http.server.request.duration");
    ASSERT_NE(metric, nullptr);
    ASSERT_EQ(metric->histogram().data_points_size(), 1);
    auto attrs = attributes_of(metric->histogram().data_points(0).attributes());
    EXPECT_EQ(std::get<std::string>(attrs["http.route"]), "/b");
}

TEST(OtlpMetricEncoding, RpcCallsFollowTheRpcConventions) {
    pipeline::RedMetrics metrics = small_bucket_metrics();
    metrics.record(rpc_span(pipeline::SpanKind::Server, 5, 0.05));
    metrics.record(rpc_span(pipeline::SpanKind::Server, 5, 0.5));
    metrics.record(rpc_span(pipeline::SpanKind::Client, 0, 2));
    pipeline::Span no_status = rpc_span(pipeline::SpanKind::Server, -1, 0.05);
    no_status.local = {"", 0};
    metrics.record(no_status);
    const auto request = round_trip(metrics.snapshot(), options_for(Temporality::Cumulative));
    ASSERT_EQ(request.resource_metrics_size(), 1);
    const auto& resource = request.resource_metrics(0);
    // Only the RPC instruments: an RPC is not also an HTTP request.
    std::vector<std::string> names;
    for (const auto& metric : resource.scope_metrics(0).metrics()) names.push_back(metric.name());
    EXPECT_EQ(names,
              (std::vector<std::string>{"rpc.server.call.duration", "rpc.client.call.duration"}));

    struct Expected {
        std::string metric;
        Attributes attributes;
        uint64_t count;
        std::vector<uint64_t> buckets;
    };
    const std::vector<Expected> table = {
        {"rpc.server.call.duration",
         {{"rpc.system.name", std::string("grpc")},
          {"rpc.method", std::string("/helloworld.Greeter/SayHello")},
          {"rpc.response.status_code", std::string("NOT_FOUND")},
          {"rpc.grpc.status_code", int64_t{5}},
          {"server.address", std::string("127.0.0.1")},
          {"server.port", int64_t{50051}}},
         2,
         {1, 1, 0}},
        // No status seen, no server known: left out rather than invented.
        {"rpc.server.call.duration",
         {{"rpc.system.name", std::string("grpc")},
          {"rpc.method", std::string("/helloworld.Greeter/SayHello")}},
         1,
         {1, 0, 0}},
        {"rpc.client.call.duration",
         {{"rpc.system.name", std::string("grpc")},
          {"rpc.method", std::string("/helloworld.Greeter/SayHello")},
          {"rpc.response.status_code", std::string("OK")},
          {"rpc.grpc.status_code", int64_t{0}},
          {"server.address", std::string("10.0.0.9")},
          {"server.port", int64_t{50051}}},
         1,
         {0, 0, 1}},
    };
    for (const Expected& want : table) {
        const otlp_metrics::Metric* metric = find_metric(resource, want.metric);
        ASSERT_NE(metric, nullptr) << want.metric;
        EXPECT_EQ(metric->unit(), "s");
        bool found = false;
        for (const auto& point : metric->histogram().data_points()) {
            if (attributes_of(point.attributes()) != want.attributes) continue;
            found = true;
            EXPECT_EQ(point.count(), want.count);
            EXPECT_EQ(to_vector(point.explicit_bounds()), (Bounds{0.1, 1}));
            EXPECT_EQ(to_vector(point.bucket_counts()), want.buckets);
        }
        EXPECT_TRUE(found) << want.metric << " point with status "
                           << (want.attributes.count("rpc.response.status_code")
                                   ? std::get<std::string>(
                                         want.attributes.at("rpc.response.status_code"))
                                   : std::string("(none)"));
    }
}

TEST(DeltaTracker, RpcFamiliesAreTrackedLikeTheOthers) {
    pipeline::RedMetrics metrics = small_bucket_metrics();
    metrics.record(rpc_span(pipeline::SpanKind::Server, 0, 0.05));
    DeltaTracker tracker;
    tracker.commit(metrics.snapshot());
    metrics.record(rpc_span(pipeline::SpanKind::Server, 0, 0.5));
    metrics.record(rpc_span(pipeline::SpanKind::Client, 2, 0.05));
    const MetricsSnapshot delta = tracker.delta(metrics.snapshot());
    const auto& server = delta.families[static_cast<size_t>(MetricFamily::RpcServerDuration)];
    const auto& client = delta.families[static_cast<size_t>(MetricFamily::RpcClientDuration)];
    ASSERT_EQ(server.series.size(), 1u);
    EXPECT_EQ(server.series[0].histogram.count, 1u);
    EXPECT_EQ(server.series[0].histogram.bucket_counts, (std::vector<uint64_t>{0, 1, 0}));
    ASSERT_EQ(client.series.size(), 1u);
    EXPECT_EQ(client.series[0].labels.rpc_status, 2);
    const auto request = round_trip(delta, options_for(Temporality::Delta));
    ASSERT_EQ(request.resource_metrics_size(), 1);
    const otlp_metrics::Metric* metric =
        find_metric(request.resource_metrics(0), "rpc.server.call.duration");
    ASSERT_NE(metric, nullptr);
    EXPECT_EQ(metric->histogram().aggregation_temporality(),
              otlp_metrics::AGGREGATION_TEMPORALITY_DELTA);
}

// ---- DeltaTracker

const pipeline::FamilySnapshot& server_durations(const MetricsSnapshot& snapshot) {
    return snapshot.families[static_cast<size_t>(MetricFamily::ServerDuration)];
}

// route -> count of the server-duration series in `snapshot`.
std::map<std::string, uint64_t> counts_by_route(const MetricsSnapshot& snapshot) {
    std::map<std::string, uint64_t> out;
    for (const auto& series : server_durations(snapshot).series) {
        out[series.labels.route] = series.histogram.count;
    }
    return out;
}

TEST(DeltaTracker, ExportSequence) {
    struct Step {
        std::string name;
        std::vector<std::string> record;  // one 10 ms server span per route listed
        bool export_succeeds;
        std::map<std::string, uint64_t> delta;  // route -> count
    };
    const std::vector<Step> steps = {
        {"first delta is the whole snapshot", {"/a", "/a", "/b"}, true, {{"/a", 2}, {"/b", 1}}},
        {"unchanged series are left out", {"/a"}, true, {{"/a", 1}}},
        {"nothing new, nothing sent", {}, true, {}},
        {"a failed export is not committed", {"/b", "/b", "/c"}, false, {{"/b", 2}, {"/c", 1}}},
        {"so its data rides along in the next", {"/c"}, true, {{"/b", 2}, {"/c", 2}}},
        {"after that commit only new data", {"/a"}, true, {{"/a", 1}}},
    };
    pipeline::RedMetrics metrics = small_bucket_metrics();
    DeltaTracker tracker;
    for (const Step& step : steps) {
        SCOPED_TRACE(step.name);
        for (const std::string& route : step.record) metrics.record(server_span(0.01, route));
        const MetricsSnapshot cumulative = metrics.snapshot();
        const MetricsSnapshot delta = tracker.delta(cumulative);
        EXPECT_EQ(counts_by_route(delta), step.delta);
        // Every family moves together for server spans; client families stay empty.
        for (size_t f = 0; f < pipeline::kMetricFamilyCount; ++f) {
            EXPECT_EQ(delta.families[f].family, cumulative.families[f].family);
            EXPECT_EQ(delta.families[f].bounds, cumulative.families[f].bounds);
            const bool server = delta.families[f].family == MetricFamily::ServerDuration ||
                                delta.families[f].family == MetricFamily::ServerRequestBodySize ||
                                delta.families[f].family == MetricFamily::ServerResponseBodySize;
            EXPECT_EQ(delta.families[f].series.size(), server ? step.delta.size() : 0u);
        }
        if (step.export_succeeds) tracker.commit(cumulative);
    }
}

TEST(DeltaTracker, DifferenceCoversCountSumAndEveryBucket) {
    pipeline::RedMetrics metrics = small_bucket_metrics();
    metrics.record(server_span(0.05));
    metrics.record(server_span(0.5));
    DeltaTracker tracker;
    const MetricsSnapshot first = metrics.snapshot();
    tracker.commit(first);
    metrics.record(server_span(0.5));
    metrics.record(server_span(2));
    metrics.record(server_span(3));
    const MetricsSnapshot second = metrics.snapshot();
    const MetricsSnapshot delta = tracker.delta(second);

    ASSERT_EQ(server_durations(delta).series.size(), 1u);
    const auto& series = server_durations(delta).series[0];
    EXPECT_EQ(series.key, server_durations(second).series[0].key);
    EXPECT_EQ(series.labels, server_durations(second).series[0].labels);
    EXPECT_EQ(series.histogram.count, 3u);
    EXPECT_NEAR(series.histogram.sum, 5.5, 1e-9);
    EXPECT_EQ(series.histogram.bucket_counts, (std::vector<uint64_t>{0, 1, 2}));
    // The cumulative side is untouched.
    EXPECT_EQ(server_durations(second).series[0].histogram.count, 5u);
}

TEST(DeltaTracker, ResetSeriesIsReportedWhole) {
    struct Case {
        std::string name;
        std::vector<double> before;  // durations recorded into the committed source
        std::vector<double> after;   // durations recorded into a fresh source
        uint64_t count;
        std::vector<uint64_t> buckets;
    };
    const std::vector<Case> cases = {
        {"count went down", {0.05, 0.05, 0.05}, {0.5}, 1, {0, 1, 0}},
        // Same count, but a bucket shrank: the source restarted and refilled.
        {"a bucket went down", {0.05, 0.05}, {0.5, 2}, 2, {0, 1, 1}},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        pipeline::RedMetrics old_source = small_bucket_metrics();
        for (double seconds : c.before) old_source.record(server_span(seconds));
        DeltaTracker tracker;
        tracker.commit(old_source.snapshot());
        pipeline::RedMetrics new_source = small_bucket_metrics();
        for (double seconds : c.after) new_source.record(server_span(seconds));
        const MetricsSnapshot cumulative = new_source.snapshot();
        const MetricsSnapshot delta = tracker.delta(cumulative);
        ASSERT_EQ(server_durations(delta).series.size(), 1u);
        EXPECT_EQ(server_durations(delta).series[0].histogram,
                  server_durations(cumulative).series[0].histogram);
        EXPECT_EQ(server_durations(delta).series[0].histogram.count, c.count);
        EXPECT_EQ(server_durations(delta).series[0].histogram.bucket_counts, c.buckets);
    }
}

TEST(DeltaTracker, ChangedBucketLayoutIsReportedWhole) {
    pipeline::RedMetrics old_layout = small_bucket_metrics();
    old_layout.record(server_span(0.05));
    DeltaTracker tracker;
    tracker.commit(old_layout.snapshot());
    pipeline::RedMetrics new_layout(Bounds{0.01, 0.1, 1}, Bounds{100}, Bounds{1000});
    new_layout.record(server_span(0.05));
    new_layout.record(server_span(0.05));
    const MetricsSnapshot cumulative = new_layout.snapshot();
    const MetricsSnapshot delta = tracker.delta(cumulative);
    ASSERT_EQ(server_durations(delta).series.size(), 1u);
    EXPECT_EQ(server_durations(delta).series[0].histogram,
              server_durations(cumulative).series[0].histogram);
    // Size families kept their layout, so they are real differences.
    const auto& requests = delta.families[static_cast<size_t>(MetricFamily::ServerRequestBodySize)];
    ASSERT_EQ(requests.series.size(), 1u);
    EXPECT_EQ(requests.series[0].histogram.count, 1u);
}

TEST(DeltaTracker, CommitForgetsSeriesTheSourceNoLongerHas) {
    pipeline::RedMetrics first_source = small_bucket_metrics();
    first_source.record(server_span(0.01, "/a"));
    const MetricsSnapshot with_a = first_source.snapshot();
    DeltaTracker tracker;
    tracker.commit(with_a);
    pipeline::RedMetrics second_source = small_bucket_metrics();
    second_source.record(server_span(0.01, "/b"));
    tracker.commit(second_source.snapshot());
    // "/a" is no longer in the baseline, so it counts as new again.
    EXPECT_EQ(counts_by_route(tracker.delta(with_a)), (std::map<std::string, uint64_t>{{"/a", 1}}));
}

TEST(DeltaTracker, DeltaEncodesAsDeltaPoints) {
    pipeline::RedMetrics metrics = small_bucket_metrics();
    metrics.record(server_span(0.05));
    DeltaTracker tracker;
    tracker.commit(metrics.snapshot());
    metrics.record(server_span(0.5));
    const auto request =
        round_trip(tracker.delta(metrics.snapshot()), options_for(Temporality::Delta));
    ASSERT_EQ(request.resource_metrics_size(), 1);
    const otlp_metrics::Metric* metric =
        find_metric(request.resource_metrics(0), "http.server.request.duration");
    ASSERT_NE(metric, nullptr);
    EXPECT_EQ(metric->histogram().aggregation_temporality(),
              otlp_metrics::AGGREGATION_TEMPORALITY_DELTA);
    ASSERT_EQ(metric->histogram().data_points_size(), 1);
    const auto& point = metric->histogram().data_points(0);
    EXPECT_EQ(point.count(), 1u);
    EXPECT_DOUBLE_EQ(point.sum(), 0.5);
    EXPECT_EQ(to_vector(point.bucket_counts()), (std::vector<uint64_t>{0, 1, 0}));
}

}  // namespace
}  // namespace sonde::exporter::otlp
