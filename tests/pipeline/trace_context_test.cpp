#include "pipeline/trace_context.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace sonde::pipeline {
namespace {

constexpr std::string_view kSpecTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kSpecParentId = "00f067aa0ba902b7";

struct TraceParentCase {
    const char* name;
    std::string value;
    bool valid;
    uint8_t flags;  // expected when valid
};

std::string tp(std::string_view version, std::string_view trace, std::string_view parent,
               std::string_view flags, std::string_view rest = "") {
    return std::string(version) + "-" + std::string(trace) + "-" + std::string(parent) + "-" +
           std::string(flags) + std::string(rest);
}

TEST(TraceParent, TableOfSpecExamplesAndEdgeCases) {
    const TraceParentCase cases[] = {
        // Examples from https://www.w3.org/TR/trace-context/#examples-of-http-traceparent-headers
        {"spec sampled", tp("00", kSpecTraceId, kSpecParentId, "01"), true, 0x01},
        {"spec not sampled", tp("00", kSpecTraceId, kSpecParentId, "00"), true, 0x00},
        {"unknown flag bits kept for v00", tp("00", kSpecTraceId, kSpecParentId, "ff"), true, 0xff},
        {"level 2 random flag", tp("00", kSpecTraceId, kSpecParentId, "03"), true, 0x03},
        {"future version, exact length", tp("cc", kSpecTraceId, kSpecParentId, "09"), true, 0x01},
        {"future version, extra fields",
         tp("cc", kSpecTraceId, kSpecParentId, "08", "-what-the-future-will-be-like"), true, 0x00},
        {"future version, only sampled bit", tp("01", kSpecTraceId, kSpecParentId, "ff", "-x"),
         true, 0x01},
        {"empty", "", false, 0},
        {"version ff forbidden", tp("ff", kSpecTraceId, kSpecParentId, "01"), false, 0},
        {"v00 too long", tp("00", kSpecTraceId, kSpecParentId, "01", "-extra"), false, 0},
        {"v00 trailing space", tp("00", kSpecTraceId, kSpecParentId, "01", " "), false, 0},
        {"v00 too short", tp("00", kSpecTraceId, kSpecParentId, "0"), false, 0},
        {"future version, no dash after flags",
         tp("cc", kSpecTraceId, kSpecParentId, "01", ".what"), false, 0},
        {"future version too short", tp("cc", kSpecTraceId, kSpecParentId, "1"), false, 0},
        {"all-zero trace id", tp("00", "00000000000000000000000000000000", kSpecParentId, "01"),
         false, 0},
        {"all-zero parent id", tp("00", kSpecTraceId, "0000000000000000", "01"), false, 0},
        {"uppercase trace id", tp("00", "4BF92F3577B34DA6A3CE929D0E0E4736", kSpecParentId, "01"),
         false, 0},
        {"uppercase parent id", tp("00", kSpecTraceId, "00F067AA0BA902B7", "01"), false, 0},
        {"uppercase flags", tp("00", kSpecTraceId, kSpecParentId, "0A"), false, 0},
        {"uppercase version", tp("0A", kSpecTraceId, kSpecParentId, "01"), false, 0},
        {"non-hex version", tp("0g", kSpecTraceId, kSpecParentId, "01"), false, 0},
        {"non-hex in trace id", tp("00", "4bf92f3577b34da6a3ce929d0e0e473z", kSpecParentId, "01"),
         false, 0},
        {"non-hex flags", tp("00", kSpecTraceId, kSpecParentId, "0x"), false, 0},
        {"wrong separator", "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, 0},
        {"short trace id, long parent id",
         "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", false, 0},
        {"leading whitespace", " " + tp("00", kSpecTraceId, kSpecParentId, "01").substr(0, 54),
         false, 0},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const TraceParent parsed = parse_traceparent(c.value);
        EXPECT_EQ(parsed.valid, c.valid);
        if (!c.valid) {
            EXPECT_FALSE(parsed.sampled());
            continue;
        }
        EXPECT_EQ(to_hex(parsed.trace_id), kSpecTraceId);
        EXPECT_EQ(to_hex(parsed.parent_span_id), kSpecParentId);
        EXPECT_EQ(parsed.flags, c.flags);
        EXPECT_EQ(parsed.sampled(), (c.flags & kTraceFlagSampled) != 0);
    }
}

TEST(TraceParent, ParsesBytesInOrder) {
    const TraceParent parsed = parse_traceparent(tp("00", kSpecTraceId, kSpecParentId, "01"));
    ASSERT_TRUE(parsed.valid);
    EXPECT_EQ(parsed.version, 0);
    EXPECT_EQ(parsed.trace_id[0], 0x4b);
    EXPECT_EQ(parsed.trace_id[15], 0x36);
    EXPECT_EQ(parsed.parent_span_id[0], 0x00);
    EXPECT_EQ(parsed.parent_span_id[1], 0xf0);
    EXPECT_EQ(parsed.parent_span_id[7], 0xb7);
}

TEST(TraceParent, FormatRoundTripsVersion00) {
    for (const char* flags : {"00", "01", "02", "03", "80", "ff"}) {
        const std::string value = tp("00", kSpecTraceId, kSpecParentId, flags);
        const TraceParent parsed = parse_traceparent(value);
        ASSERT_TRUE(parsed.valid) << value;
        EXPECT_EQ(format_traceparent(parsed.trace_id, parsed.parent_span_id, parsed.flags), value);
    }
}

TEST(TraceParent, FormatNormalisesFutureVersionToVersion00) {
    const TraceParent parsed = parse_traceparent(tp("cc", kSpecTraceId, kSpecParentId, "09", "-z"));
    ASSERT_TRUE(parsed.valid);
    EXPECT_EQ(format_traceparent(parsed.trace_id, parsed.parent_span_id, parsed.flags),
              tp("00", kSpecTraceId, kSpecParentId, "01"));
}

TEST(TraceParent, FormatIntoFixedBuffer) {
    TraceId trace{};
    SpanId span{};
    for (size_t i = 0; i < trace.size(); ++i) trace[i] = static_cast<uint8_t>(0xf0 + i);
    for (size_t i = 0; i < span.size(); ++i) span[i] = static_cast<uint8_t>(0x0a * i);
    std::array<char, kTraceParentLength> buf;
    format_traceparent_to(trace, span, 0x01, buf);
    EXPECT_EQ(std::string_view(buf.data(), buf.size()),
              "00-f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff-000a141e28323c46-01");
}

TEST(Hex, DecodeRejectsWrongLengthAndUppercaseWithoutWriting) {
    uint8_t out[2] = {0xaa, 0xbb};
    EXPECT_FALSE(hex_decode_lower("abc", out, 2));
    EXPECT_FALSE(hex_decode_lower("abcD", out, 2));
    EXPECT_FALSE(hex_decode_lower("ab c", out, 2));
    EXPECT_EQ(out[0], 0xaa);
    EXPECT_EQ(out[1], 0xbb);
    EXPECT_TRUE(hex_decode_lower("09af", out, 2));
    EXPECT_EQ(out[0], 0x09);
    EXPECT_EQ(out[1], 0xaf);
    char enc[4];
    hex_encode(out, 2, enc);
    EXPECT_EQ(std::string_view(enc, 4), "09af");
}

TEST(TraceState, TableOfValidAndInvalidLists) {
    const std::string max_key(256, 'k');
    const std::string max_value(256, 'v');
    std::string thirty_two;
    std::string thirty_three;
    for (int i = 0; i < 33; ++i) {
        std::string member = "k" + std::to_string(i) + "=v";
        if (i < 32) thirty_two += (i ? "," : "") + member;
        thirty_three += (i ? "," : "") + member;
    }
    std::string too_long = "a=" + std::string(256, 'x') + ",b=" + std::string(256, 'y');
    struct Case {
        const char* name;
        std::string value;
        bool valid;
    } cases[] = {
        {"spec single member", "congo=t61rcWkgMzE", true},
        {"spec two members", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true},
        {"empty header", "", true},
        {"ows around members", "rojo=1 ,\tcongo=2", true},
        {"empty members ignored", "a=1,,b=2,", true},
        {"multi-tenant key", "fw529a3039@dt=FIuOOQzZnvRrezS", true},
        {"tenant starting with digit", "0tenant@sys=v", true},
        {"key with specials", "a_b-c*d/e=v", true},
        {"value with space inside", "a=x y", true},
        {"otel sub-keys", "ot=th:c;rv:7479cfb506891d", true},
        {"32 members", thirty_two, true},
        {"max key length", max_key + "=v", true},
        {"max value length", "a=" + max_value, true},
        {"33 members", thirty_three, false},
        {"key too long", max_key + "k=v", false},
        {"value too long", "a=" + max_value + "v", false},
        {"longer than 512", too_long, false},
        {"uppercase key", "Congo=x", false},
        {"key starting with digit", "1abc=x", false},
        {"missing equals", "congo", false},
        {"empty key", "=x", false},
        {"empty value", "a=", false},
        {"value ending in space", "a=x ,b=y", true},  // OWS before ',' is trimmed
        {"value with equals", "a=b=c", false},
        {"value with control char", std::string("a=b\x01"), false},
        {"value with non-ascii", "a=\xc3\xa9", false},
        {"duplicate key", "a=1,b=2,a=3", false},
        {"system id too long", "t@abcdefghijklmno=v", false},
        {"system id starting with digit", "t@1sys=v", false},
        {"two at signs", "t@s@x=v", false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        EXPECT_EQ(is_valid_tracestate(c.value), c.valid);
        EXPECT_EQ(sanitize_tracestate(c.value), c.valid ? std::string_view(c.value) : "");
    }
}

}  // namespace
}  // namespace sonde::pipeline
