#include "export/otlp/otlp_transport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace sonde::exporter::otlp {
namespace {

using namespace std::chrono_literals;

TEST(ParseRetryAfter, DeltaSecondsAndHttpDates) {
    // 2015-10-21 07:28:00 UTC
    constexpr int64_t kNow = 1445412480;
    struct Case {
        const char* value;
        std::optional<std::chrono::milliseconds> expected;
    };
    for (const Case& c : {
             Case{"0", 0ms},
             Case{"7", 7s},
             Case{" 120 ", 120s},
             Case{"300", 300s},
             Case{"301", kMaxServerRetryDelay},
             Case{"99999999999999999999999", kMaxServerRetryDelay},
             Case{"Wed, 21 Oct 2015 07:28:30 GMT", 30s},
             Case{"Wed, 21 Oct 2015 07:27:00 GMT", 0ms},  // already past
             Case{"Thu, 22 Oct 2015 07:28:00 GMT", kMaxServerRetryDelay},
             Case{"", std::nullopt},
             Case{"-5", std::nullopt},
             Case{"1.5", std::nullopt},
             Case{"soon", std::nullopt},
         }) {
        EXPECT_EQ(parse_retry_after(c.value, kNow), c.expected) << c.value;
    }
    EXPECT_EQ(parse_retry_after(std::string(100, '1'), kNow), std::nullopt);
}

std::string status_with_retry_info(int64_t seconds, int32_t nanos) {
    google::rpc::RetryInfo info;
    info.mutable_retry_delay()->set_seconds(seconds);
    info.mutable_retry_delay()->set_nanos(nanos);
    google::rpc::Status status;
    status.set_code(8);
    status.add_details()->PackFrom(google::rpc::Status());  // an unrelated detail first
    status.add_details()->PackFrom(info);
    return status.SerializeAsString();
}

TEST(GrpcRetryDelay, ReadsRetryInfoFromStatusDetails) {
    EXPECT_EQ(grpc_retry_delay(status_with_retry_info(2, 500'000'000)), 2500ms);
    EXPECT_EQ(grpc_retry_delay(status_with_retry_info(0, 0)), 0ms);
    EXPECT_EQ(grpc_retry_delay(status_with_retry_info(-1, 0)), 0ms);
    EXPECT_EQ(grpc_retry_delay(status_with_retry_info(INT64_MAX, 0)), kMaxServerRetryDelay);
    google::rpc::Status without;
    without.set_code(14);
    EXPECT_EQ(grpc_retry_delay(without.SerializeAsString()), std::nullopt);
    EXPECT_EQ(grpc_retry_delay(""), std::nullopt);
    EXPECT_EQ(grpc_retry_delay("\xff\xff\xff garbage"), std::nullopt);
}

TEST(RetryBackoff, DoublesUpToTheCapWithJitterInTheUpperHalf) {
    RetryBackoff backoff(100ms, 1000ms, 42);
    for (unsigned attempt = 0; attempt < 8; ++attempt) {
        const auto full = std::min<std::chrono::milliseconds>(100ms * (1 << attempt), 1000ms);
        for (int i = 0; i < 50; ++i) {
            const auto delay = backoff.delay(attempt);
            EXPECT_GE(delay, full / 2) << attempt;
            EXPECT_LE(delay, full) << attempt;
        }
    }
    // Same seed, same sequence; different seeds spread out.
    RetryBackoff a(1000ms, 1000ms, 7), b(1000ms, 1000ms, 7), c(1000ms, 1000ms, 8);
    bool differs = false;
    for (int i = 0; i < 10; ++i) {
        const auto da = a.delay(0);
        EXPECT_EQ(da, b.delay(0));
        differs = differs || da != c.delay(0);
    }
    EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace sonde::exporter::otlp
