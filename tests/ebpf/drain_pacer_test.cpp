#include "ebpf/drain_pacer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>

namespace sonde::ebpf {
namespace {

using namespace std::chrono_literals;

TEST(DrainPacerTest, StartsWithTheLongestWait) {
    DrainPacer pacer;
    EXPECT_EQ(pacer.wait_ms(), 50);
}

TEST(DrainPacerTest, DefaultBatchIs64Records) {
    DrainPacer pacer;
    pacer.drained(400, 50ms);  // 8 records per ms
    EXPECT_EQ(pacer.wait_ms(), 8);
}

struct PaceCase {
    const char* name;
    uint64_t records;
    std::chrono::nanoseconds since_previous;
    int expected_wait_ms;
};

TEST(DrainPacerTest, WaitIsTheTargetBatchOverTheRateSeen) {
    const PaceCase cases[] = {
        // 42,000 records/s (21k requests/s, a record each way): 128 in ~3 ms.
        {"p3 rate", 2100, 50ms, 3},
        {"p3 rate, short period", 126, 3ms, 3},
        // 4,000 records/s: 128 records in 32 ms.
        {"moderate", 200, 50ms, 32},
        // Faster than one batch per ms: the floor.
        {"saturation", 10000, 50ms, 1},
        {"kernel wake-up, ring a quarter full", 12000, 5ms, 1},
        // Slower than a batch per 50 ms: the ceiling.
        {"trickle", 3, 50ms, 50},
        {"nothing", 0, 50ms, 50},
        {"no time passed", 100, 0ns, 50},
        {"clock went back", 100, -5ms, 50},
        {"huge batch", std::numeric_limits<uint64_t>::max(), 1ns, 1},
        {"long gap", 1, std::chrono::nanoseconds(std::numeric_limits<int64_t>::max()), 50},
    };
    for (const auto& c : cases) {
        DrainPacer pacer({.target_records = 128});
        pacer.drained(c.records, c.since_previous);
        EXPECT_EQ(pacer.wait_ms(), c.expected_wait_ms) << c.name;
    }
}

TEST(DrainPacerTest, FollowsTheRateBothWays) {
    DrainPacer pacer({.target_records = 128});
    pacer.drained(10000, 50ms);  // a load starts
    EXPECT_EQ(pacer.wait_ms(), 1);
    pacer.drained(2, 1ms);  // and stops
    EXPECT_EQ(pacer.wait_ms(), 50);
}

TEST(DrainPacerTest, KeepsTheLongestWaitWhileTheHostHasNoIdleCpu) {
    DrainPacer pacer({.target_records = 128});
    pacer.drained(10000, 50ms);
    ASSERT_EQ(pacer.wait_ms(), 1);
    pacer.host_idle_share(0.09);  // a saturated server: 9 % idle
    EXPECT_EQ(pacer.wait_ms(), 50);
    pacer.drained(10000, 50ms);
    EXPECT_EQ(pacer.wait_ms(), 50);
    pacer.host_idle_share(0.15);     // the threshold is idle enough
    EXPECT_EQ(pacer.wait_ms(), 50);  // until the next drain measures the rate
    pacer.drained(10000, 50ms);
    EXPECT_EQ(pacer.wait_ms(), 1);
    pacer.host_idle_share(0.0);
    pacer.host_idle_share(0.6);
    pacer.drained(400, 50ms);
    EXPECT_EQ(pacer.wait_ms(), 16);

    DrainPacer never({.target_records = 128, .min_idle_share = 0.0});
    never.host_idle_share(0.0);
    never.drained(10000, 50ms);
    EXPECT_EQ(never.wait_ms(), 1);
}

TEST(DrainPacerTest, OptionsAreHonouredAndKeptSane) {
    DrainPacer custom({.target_records = 64, .min_wait = 2ms, .max_wait = 20ms});
    EXPECT_EQ(custom.wait_ms(), 20);
    custom.drained(64000, 1000ms);  // 64 per ms: one ms, below the floor
    EXPECT_EQ(custom.wait_ms(), 2);
    custom.drained(1, 1000ms);
    EXPECT_EQ(custom.wait_ms(), 20);

    // A zero floor would make epoll spin; a ceiling below the floor is raised to it.
    DrainPacer odd({.target_records = 1, .min_wait = 0ms, .max_wait = 0ms});
    EXPECT_EQ(odd.wait_ms(), 1);
    odd.drained(1000000, 1ms);
    EXPECT_EQ(odd.wait_ms(), 1);
}

}  // namespace
}  // namespace sonde::ebpf
