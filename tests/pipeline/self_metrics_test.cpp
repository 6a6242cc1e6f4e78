#include "pipeline/self_metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "exposition_test_util.h"

namespace sonde::pipeline {
namespace {

TEST(SelfMetrics, RendersCountersAndGauges) {
    SelfMetrics metrics;
    metrics.events_read = 7;
    metrics.kernel_ringbuf_full = 3;
    metrics.connections_tracked = 12;
    metrics.instrumented_processes = 2;
    metrics.metric_series_dropped = 5;
    std::string text = "# preceding output is kept\n";
    metrics.render_prometheus(text);
    EXPECT_EQ(text.rfind("# preceding output is kept\n", 0), 0u);

    EXPECT_NE(text.find("# TYPE sonde_events_read_total counter\nsonde_events_read_total 7\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("# HELP sonde_events_read_total "), std::string::npos);
    EXPECT_NE(text.find("\nsonde_kernel_ringbuf_full_total 3\n"), std::string::npos);
    EXPECT_NE(text.find("# TYPE sonde_connections_tracked gauge\nsonde_connections_tracked 12\n"),
              std::string::npos);
    EXPECT_NE(text.find("# TYPE sonde_instrumented_processes gauge\n"), std::string::npos);
    EXPECT_NE(text.find("\nsonde_instrumented_processes 2\n"), std::string::npos);
    EXPECT_NE(text.find("\nsonde_metric_series_dropped_total 5\n"), std::string::npos);
    EXPECT_NE(text.find("\nsonde_parse_errors_total{protocol=\"http1\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("\nsonde_parse_errors_total{protocol=\"http2\"} 0\n"), std::string::npos);
}

TEST(SelfMetrics, EveryFieldIsOneSample) {
    SelfMetrics metrics;
    std::string text;
    metrics.render_prometheus(text);
    const auto samples = test_util::parse_exposition(text);
    ASSERT_TRUE(samples.has_value()) << text;
    EXPECT_EQ(samples->size(), sizeof(SelfMetrics) / sizeof(std::atomic<uint64_t>));
    for (const auto& sample : *samples) {
        EXPECT_EQ(sample.name.rfind("sonde_", 0), 0u) << sample.name;
        // Only the drop counters are split, by reason, and parse errors by protocol.
        if (sample.name.find("_dropped_total") != std::string::npos && !sample.labels.empty()) {
            EXPECT_EQ(sample.labels.size(), 1u) << sample.name;
            EXPECT_EQ(sample.labels.begin()->first, "reason") << sample.name;
        } else if (sample.name == "sonde_parse_errors_total") {
            EXPECT_EQ(sample.labels.size(), 1u) << sample.name;
            EXPECT_EQ(sample.labels.begin()->first, "protocol") << sample.name;
        } else {
            EXPECT_TRUE(sample.labels.empty()) << sample.name;
        }
        EXPECT_EQ(sample.value, "0");
    }
}

TEST(SelfMetrics, ExportDropsAreOneMetricWithAReasonLabel) {
    SelfMetrics metrics;
    metrics.span_export_dropped_queue_full = 3;
    metrics.span_export_dropped_failed = 4;
    metrics.metric_export_dropped_failed = 5;
    std::string text;
    metrics.render_prometheus(text);
    EXPECT_NE(text.find("\nsonde_span_export_dropped_total{reason=\"queue_full\"} 3\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("\nsonde_span_export_dropped_total{reason=\"failed\"} 4\n"),
              std::string::npos);
    EXPECT_NE(text.find("\nsonde_metric_export_dropped_total{reason=\"failed\"} 5\n"),
              std::string::npos);
    // One HELP and TYPE per metric, however many reasons it has.
    size_t types = 0;
    for (size_t at = 0;
         (at = text.find("# TYPE sonde_span_export_dropped_total", at)) != std::string::npos;
         ++at) {
        ++types;
    }
    EXPECT_EQ(types, 1u);
}

TEST(SelfMetrics, PromtoolFindsNothingToComplainAbout) {
    if (!test_util::promtool_available()) {
        GTEST_SKIP() << "promtool not installed";
    }
    SelfMetrics metrics;
    metrics.spans_produced = 1'000'000'000'000ULL;
    std::string text;
    metrics.render_prometheus(text);
    const auto result = test_util::promtool_check(text);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_EQ(result.output, "");
}

using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

TEST(DropLog, NothingLostNothingLogged) {
    SelfMetrics metrics;
    metrics.events_read = 100;  // not a loss
    metrics.requests_exported = 100;
    DropLog log;
    EXPECT_TRUE(log.due(metrics, Clock::time_point{} + seconds(1)).empty());
}

TEST(DropLog, OneLinePerGrowingCounterNamingItsMetricAndLabels) {
    SelfMetrics metrics;
    metrics.kernel_ringbuf_full = 12;
    metrics.span_export_dropped_queue_full = 3;
    metrics.parse_errors_http2 = 1;
    DropLog log;
    const auto lines = log.due(metrics, Clock::time_point{} + seconds(1));
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0].rfind("data lost: sonde_kernel_ringbuf_full_total +12 (total 12): Events "
                             "the kernel programs dropped",
                             0),
              0u)
        << lines[0];
    EXPECT_EQ(lines[1].rfind("data lost: sonde_parse_errors_total{protocol=\"http2\"} +1 (total "
                             "1): Protocol bytes",
                             0),
              0u)
        << lines[1];
    // A labelled row without help of its own is explained by its metric's first row.
    EXPECT_EQ(lines[2].rfind("data lost: sonde_span_export_dropped_total{reason=\"queue_full\"} "
                             "+3 (total 3): Spans never delivered",
                             0),
              0u)
        << lines[2];
}

TEST(DropLog, AtMostOneLinePerCounterPerInterval) {
    SelfMetrics metrics;
    DropLog log(seconds(30));
    const Clock::time_point start{};
    metrics.dropped_requests = 1;
    EXPECT_EQ(log.due(metrics, start).size(), 1u);
    // A flood: the counter grows every second, the log stays quiet for 30 s.
    size_t lines = 0;
    for (int s = 1; s < 30; ++s) {
        metrics.dropped_requests += 1000;
        lines += log.due(metrics, start + seconds(s)).size();
    }
    EXPECT_EQ(lines, 0u);
    // Another counter is not held back by the first one's interval.
    metrics.connections_evicted = 2;
    EXPECT_EQ(log.due(metrics, start + seconds(29)).size(), 1u);
    // After the interval, one line with everything since the last one.
    const auto later = log.due(metrics, start + seconds(30));
    ASSERT_EQ(later.size(), 1u);
    EXPECT_NE(later[0].find("sonde_dropped_requests_total +29000 (total 29001)"), std::string::npos)
        << later[0];
    // Quiet again once the counter stops growing.
    EXPECT_TRUE(log.due(metrics, start + seconds(120)).empty());
}

}  // namespace
}  // namespace sonde::pipeline
