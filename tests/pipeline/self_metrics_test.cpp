#include "pipeline/self_metrics.h"

#include <gtest/gtest.h>

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
    EXPECT_NE(text.find("\nsonde_parse_errors_total 0\n"), std::string::npos);
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
        // Only the drop counters are split, by reason.
        if (sample.name.find("_dropped_total") != std::string::npos && !sample.labels.empty()) {
            EXPECT_EQ(sample.labels.size(), 1u) << sample.name;
            EXPECT_EQ(sample.labels.begin()->first, "reason") << sample.name;
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

}  // namespace
}  // namespace sonde::pipeline
