#include "pipeline/sampler.h"

#include <gtest/gtest.h>

#include "pipeline/id_generator.h"

namespace sonde::pipeline {
namespace {

// A trace id whose rightmost 7 bytes are `randomness`; the leading 9 bytes are noise that the
// sampler must ignore.
TraceId trace_id_with_randomness(uint64_t randomness) {
    TraceId id;
    for (size_t i = 0; i < 9; ++i) id[i] = static_cast<uint8_t>(0xa5 ^ i);
    for (size_t i = 0; i < 7; ++i) id[15 - i] = static_cast<uint8_t>(randomness >> (8 * i));
    return id;
}

TEST(Sampler, RandomnessIsRightmostSevenBytesBigEndian) {
    const TraceParent p =
        parse_traceparent("00-ffffffffffffffffff0102030405060a-00f067aa0ba902b7-01");
    ASSERT_TRUE(p.valid);
    EXPECT_EQ(trace_id_randomness(p.trace_id), 0x0102030405060aULL);
    EXPECT_EQ(trace_id_randomness(trace_id_with_randomness(0xffffffffffffffULL)),
              0xffffffffffffffULL);
}

TEST(Sampler, ThresholdsMatchSpecTable) {
    // The spec's probability table (tracestate-probability-sampling.md): 0.5 -> th 8,
    // 0.25 -> c, 0.125 -> e, 0.0625 -> f (56-bit thresholds with trailing zeros dropped).
    EXPECT_EQ(ratio_to_rejection_threshold(1.0), 0u);
    EXPECT_EQ(ratio_to_rejection_threshold(0.5), 0x80000000000000ULL);
    EXPECT_EQ(ratio_to_rejection_threshold(0.25), 0xc0000000000000ULL);
    EXPECT_EQ(ratio_to_rejection_threshold(0.125), 0xe0000000000000ULL);
    EXPECT_EQ(ratio_to_rejection_threshold(0.0625), 0xf0000000000000ULL);
    EXPECT_EQ(ratio_to_rejection_threshold(0.0), kSamplingRandomnessRange);
    EXPECT_EQ(ratio_to_rejection_threshold(0x1p-56), kSamplingRandomnessRange - 1);
    EXPECT_EQ(ratio_to_rejection_threshold(0x1p-60), kSamplingRandomnessRange);
}

TEST(Sampler, RatioBoundaryIsInclusiveAtThreshold) {
    const Sampler half(SamplerKind::TraceIdRatio, 0.5);
    EXPECT_TRUE(half.should_sample(trace_id_with_randomness(0x80000000000000ULL), nullptr));
    EXPECT_FALSE(half.should_sample(trace_id_with_randomness(0x7fffffffffffffULL), nullptr));
    EXPECT_TRUE(half.should_sample(trace_id_with_randomness(0xffffffffffffffULL), nullptr));
    EXPECT_FALSE(half.should_sample(trace_id_with_randomness(0), nullptr));
    const Sampler none(SamplerKind::TraceIdRatio, 0.0);
    EXPECT_FALSE(none.should_sample(trace_id_with_randomness(0xffffffffffffffULL), nullptr));
    const Sampler all(SamplerKind::TraceIdRatio, 1.0);
    EXPECT_TRUE(all.should_sample(trace_id_with_randomness(0), nullptr));
}

TEST(Sampler, RatioDecisionIsDeterministicAcrossInstancesAndMonotonic) {
    IdGenerator gen(1234);
    const Sampler a(SamplerKind::TraceIdRatio, 0.3);
    const Sampler b = make_sampler("traceidratio", "0.3").sampler;
    const Sampler c(SamplerKind::ParentBasedTraceIdRatio, 0.3);
    const Sampler higher(SamplerKind::TraceIdRatio, 0.31);
    for (int i = 0; i < 20000; ++i) {
        const TraceId id = gen.new_trace_id();
        const bool decision = a.should_sample(id, nullptr);
        ASSERT_EQ(decision, b.should_sample(id, nullptr));
        ASSERT_EQ(decision, c.should_sample(id, nullptr));
        ASSERT_EQ(decision, a.should_sample(id, nullptr));
        if (decision) ASSERT_TRUE(higher.should_sample(id, nullptr));
    }
}

TEST(Sampler, RatioKeepsTheConfiguredFraction) {
    IdGenerator gen(99);
    constexpr int kTraces = 100000;
    for (double ratio : {0.01, 0.1, 0.25, 0.5, 0.9}) {
        const Sampler sampler(SamplerKind::TraceIdRatio, ratio);
        int kept = 0;
        for (int i = 0; i < kTraces; ++i)
            kept += sampler.should_sample(gen.new_trace_id(), nullptr);
        // sd <= sqrt(100000 * 0.25) ~ 158, i.e. 0.0016: +-0.01 is over 6 sd.
        EXPECT_NEAR(double(kept) / kTraces, ratio, 0.01) << "ratio " << ratio;
    }
}

TEST(Sampler, ParentBasedMatrix) {
    const TraceId kept = trace_id_with_randomness(0xffffffffffffffULL);  // kept by any ratio > 0
    const TraceId dropped = trace_id_with_randomness(0);                 // dropped by ratio < 1
    TraceParent sampled_parent;
    sampled_parent.trace_id = kept;
    sampled_parent.parent_span_id[7] = 1;
    sampled_parent.flags = kTraceFlagSampled;
    sampled_parent.valid = true;
    TraceParent unsampled_parent = sampled_parent;
    unsampled_parent.flags = 0;
    TraceParent invalid_parent = sampled_parent;  // treated as no parent
    invalid_parent.valid = false;

    enum Parent { kNone, kInvalid, kSampled, kUnsampled };
    const TraceParent* parents[] = {nullptr, &invalid_parent, &sampled_parent, &unsampled_parent};
    struct Row {
        SamplerKind kind;
        bool expect[4][2];  // [parent][trace id kept by ratio, dropped by ratio]
    } rows[] = {
        {SamplerKind::AlwaysOn, {{1, 1}, {1, 1}, {1, 1}, {1, 1}}},
        {SamplerKind::AlwaysOff, {{0, 0}, {0, 0}, {0, 0}, {0, 0}}},
        // TraceIdRatioBased MUST ignore the parent's sampled flag.
        {SamplerKind::TraceIdRatio, {{1, 0}, {1, 0}, {1, 0}, {1, 0}}},
        {SamplerKind::ParentBasedAlwaysOn, {{1, 1}, {1, 1}, {1, 1}, {0, 0}}},
        {SamplerKind::ParentBasedAlwaysOff, {{0, 0}, {0, 0}, {1, 1}, {0, 0}}},
        {SamplerKind::ParentBasedTraceIdRatio, {{1, 0}, {1, 0}, {1, 1}, {0, 0}}},
    };
    for (const auto& row : rows) {
        const Sampler sampler(row.kind, 0.25);
        for (int p = kNone; p <= kUnsampled; ++p) {
            SCOPED_TRACE(std::string(sampler.name()) + " parent " + std::to_string(p));
            EXPECT_EQ(sampler.should_sample(kept, parents[p]), row.expect[p][0]);
            EXPECT_EQ(sampler.should_sample(dropped, parents[p]), row.expect[p][1]);
        }
    }
}

TEST(SamplerConfig, NamesArgsAndErrors) {
    struct Case {
        const char* name;
        const char* arg;
        bool ok;
        bool warns;
        SamplerKind kind;
        double ratio;
    } cases[] = {
        {"", "", true, false, SamplerKind::ParentBasedAlwaysOn, 1.0},
        {"   ", "0.5", true, false, SamplerKind::ParentBasedAlwaysOn, 1.0},
        {"always_on", "", true, false, SamplerKind::AlwaysOn, 1.0},
        {"always_off", "", true, false, SamplerKind::AlwaysOff, 0.0},
        {"traceidratio", "0.25", true, false, SamplerKind::TraceIdRatio, 0.25},
        {"traceidratio", "", true, false, SamplerKind::TraceIdRatio, 1.0},
        {"traceidratio", " 0 ", true, false, SamplerKind::TraceIdRatio, 0.0},
        {"traceidratio", "1", true, false, SamplerKind::TraceIdRatio, 1.0},
        {"parentbased_always_on", "", true, false, SamplerKind::ParentBasedAlwaysOn, 1.0},
        {"parentbased_always_off", "", true, false, SamplerKind::ParentBasedAlwaysOff, 0.0},
        {"parentbased_traceidratio", "0.001", true, false, SamplerKind::ParentBasedTraceIdRatio,
         0.001},
        {"ParentBased_TraceIdRatio", "0.5", true, false, SamplerKind::ParentBasedTraceIdRatio, 0.5},
        {"always_on", "garbage", true, false, SamplerKind::AlwaysOn, 1.0},  // arg unused
        // Invalid ratio: warn and use the spec's default 1.0.
        {"traceidratio", "1.5", true, true, SamplerKind::TraceIdRatio, 1.0},
        {"traceidratio", "-0.1", true, true, SamplerKind::TraceIdRatio, 1.0},
        {"traceidratio", "abc", true, true, SamplerKind::TraceIdRatio, 1.0},
        {"traceidratio", "0.5x", true, true, SamplerKind::TraceIdRatio, 1.0},
        {"traceidratio", "nan", true, true, SamplerKind::TraceIdRatio, 1.0},
        {"traceidratio", "inf", true, true, SamplerKind::TraceIdRatio, 1.0},
        {"parentbased_traceidratio", "25%", true, true, SamplerKind::ParentBasedTraceIdRatio, 1.0},
        // Unknown names are configuration errors; the sampler left behind is the default.
        {"traceidratiox", "", false, false, SamplerKind::ParentBasedAlwaysOn, 1.0},
        {"jaeger_remote", "", false, false, SamplerKind::ParentBasedAlwaysOn, 1.0},
        {"always-on", "", false, false, SamplerKind::ParentBasedAlwaysOn, 1.0},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.name) + " / " + c.arg);
        const SamplerConfigResult r = make_sampler(c.name, c.arg);
        EXPECT_EQ(r.ok(), c.ok) << r.error;
        EXPECT_EQ(!r.warning.empty(), c.warns) << r.warning;
        EXPECT_EQ(r.sampler.kind(), c.kind);
        EXPECT_DOUBLE_EQ(r.sampler.ratio(), c.ratio);
        if (!c.ok) EXPECT_NE(r.error.find(c.name), std::string::npos);
    }
}

TEST(SamplerConfig, DescriptionsFollowTheSpec) {
    EXPECT_EQ(Sampler(SamplerKind::AlwaysOn, 0).description(), "AlwaysOnSampler");
    EXPECT_EQ(Sampler(SamplerKind::AlwaysOff, 1).description(), "AlwaysOffSampler");
    EXPECT_EQ(Sampler(SamplerKind::TraceIdRatio, 0.0001).description(),
              "TraceIdRatioBased{0.000100}");
    EXPECT_EQ(Sampler().description(), "ParentBased{root=AlwaysOnSampler}");
    EXPECT_EQ(Sampler(SamplerKind::ParentBasedTraceIdRatio, 0.25).description(),
              "ParentBased{root=TraceIdRatioBased{0.250000}}");
    EXPECT_EQ(Sampler().name(), "parentbased_always_on");
}

}  // namespace
}  // namespace sonde::pipeline
