#include "pipeline/trace_decorator.h"

#include <gtest/gtest.h>

#include "pipeline/trace_context.h"

namespace sonde::pipeline {
namespace {

constexpr const char* kSampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
constexpr const char* kNotSampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";

TEST(TraceDecorator, ServerSpanContinuesIncomingTrace) {
    TraceDecorator decorator(make_sampler("", "").sampler);
    Span span;
    span.traceparent = kSampled;
    span.tracestate = "vendor=value";
    decorator.decorate(span);
    EXPECT_EQ(to_hex(span.trace_id), "0af7651916cd43dd8448eb211c80319c");
    EXPECT_EQ(to_hex(span.parent_span_id), "b7ad6b7169203331");
    EXPECT_NE(to_hex(span.span_id), "b7ad6b7169203331");
    EXPECT_FALSE(is_all_zero(span.span_id.data(), span.span_id.size()));
    EXPECT_TRUE(span.sampled);
    EXPECT_EQ(span.tracestate, "vendor=value");
}

TEST(TraceDecorator, UnsampledParentIsHonoured) {
    TraceDecorator decorator(make_sampler("parentbased_always_on", "").sampler);
    Span span;
    span.traceparent = kNotSampled;
    decorator.decorate(span);
    EXPECT_FALSE(span.sampled);
    EXPECT_EQ(to_hex(span.trace_id), "0af7651916cd43dd8448eb211c80319c");
}

TEST(TraceDecorator, NoOrInvalidParentStartsNewTrace) {
    TraceDecorator decorator(make_sampler("always_on", "").sampler);
    for (const char* header :
         {"", "garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01"}) {
        Span span;
        span.traceparent = header;
        span.tracestate = "a=b";
        decorator.decorate(span);
        EXPECT_FALSE(is_all_zero(span.trace_id.data(), span.trace_id.size())) << header;
        EXPECT_TRUE(is_all_zero(span.parent_span_id.data(), span.parent_span_id.size()));
        EXPECT_TRUE(span.tracestate.empty());
        EXPECT_TRUE(span.sampled);
    }
    Span a, b;
    decorator.decorate(a);
    decorator.decorate(b);
    EXPECT_NE(a.trace_id, b.trace_id);
}

TEST(TraceDecorator, AlwaysOffDropsEvenSampledParents) {
    TraceDecorator decorator(make_sampler("always_off", "").sampler);
    Span span;
    span.traceparent = kSampled;
    decorator.decorate(span);
    EXPECT_FALSE(span.sampled);
}

}  // namespace
}  // namespace sonde::pipeline
