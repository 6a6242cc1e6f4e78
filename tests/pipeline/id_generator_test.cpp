#include "pipeline/id_generator.h"

#include <gtest/gtest.h>

#include <bit>
#include <set>

namespace sonde::pipeline {
namespace {

TEST(IdGenerator, MatchesXoshiro256StarStarReferenceOutput) {
    // From the reference C implementation (https://prng.di.unimi.it/xoshiro256starstar.c)
    // started at state {1, 2, 3, 4}.
    IdGenerator gen(std::array<uint64_t, 4>{1, 2, 3, 4});
    EXPECT_EQ(gen.next(), 11520u);
    EXPECT_EQ(gen.next(), 0u);
    EXPECT_EQ(gen.next(), 1509978240u);
    EXPECT_EQ(gen.next(), 1215971899390074240u);
}

TEST(IdGenerator, SameSeedSameSequenceDifferentSeedDifferentSequence) {
    IdGenerator a(42), b(42), c(43);
    for (int i = 0; i < 100; ++i) {
        const TraceId ta = a.new_trace_id();
        EXPECT_EQ(ta, b.new_trace_id());
        EXPECT_NE(ta, c.new_trace_id());
    }
}

TEST(IdGenerator, AllZeroStateIsReplaced) {
    IdGenerator gen(std::array<uint64_t, 4>{0, 0, 0, 0});
    uint64_t any = 0;
    for (int i = 0; i < 4; ++i) any |= gen.next();
    EXPECT_NE(any, 0u);
}

TEST(IdGenerator, KernelSeededInstancesDiffer) {
    IdGenerator a, b;
    EXPECT_TRUE(a.seeded_from_kernel());
    EXPECT_TRUE(b.seeded_from_kernel());
    EXPECT_NE(a.new_trace_id(), b.new_trace_id());
    EXPECT_NE(a.new_span_id(), b.new_span_id());
}

TEST(IdGenerator, IdsAreNonZeroUniqueAndBitBalanced) {
    IdGenerator gen(7);
    std::set<TraceId> traces;
    std::set<SpanId> spans;
    constexpr int kIds = 100000;
    // Count of set bits per byte position of the trace id; each should be ~half of 8 * kIds.
    std::array<uint64_t, 16> ones{};
    for (int i = 0; i < kIds; ++i) {
        const TraceId t = gen.new_trace_id();
        const SpanId s = gen.new_span_id();
        ASSERT_FALSE(is_all_zero(t.data(), t.size()));
        ASSERT_FALSE(is_all_zero(s.data(), s.size()));
        traces.insert(t);
        spans.insert(s);
        for (size_t b = 0; b < t.size(); ++b) ones[b] += static_cast<uint64_t>(std::popcount(t[b]));
    }
    EXPECT_EQ(traces.size(), size_t{kIds});
    EXPECT_EQ(spans.size(), size_t{kIds});
    for (size_t b = 0; b < ones.size(); ++b) {
        // 800k bits per position, sd ~447: +-0.5% is over 8 sd.
        EXPECT_NEAR(double(ones[b]) / (8.0 * kIds), 0.5, 0.005) << "byte " << b;
    }
}

}  // namespace
}  // namespace sonde::pipeline
