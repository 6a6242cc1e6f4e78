#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "export/otlp/batch_span_processor.h"

namespace sonde::exporter::otlp {
namespace {

using namespace std::chrono_literals;

// Scripted exporter: returns queued results (default Success), can be held blocked.
class FakeExporter final : public SpanExporter {
public:
    struct State {
        std::mutex mutex;
        std::condition_variable changed;
        bool blocked = false;
        bool in_export = false;
        std::deque<ExportResult> script;
        std::vector<size_t> batch_sizes;
        size_t calls = 0;
        bool shut_down = false;
    };
    explicit FakeExporter(std::shared_ptr<State> state) : state_(std::move(state)) {}

    ExportResult Export(std::span<const pipeline::Span> spans) noexcept override {
        std::unique_lock lock(state_->mutex);
        state_->in_export = true;
        state_->changed.notify_all();
        state_->changed.wait(lock, [&] { return !state_->blocked; });
        state_->in_export = false;
        ++state_->calls;
        ExportResult result = ExportResult::Success;
        if (!state_->script.empty()) {
            result = state_->script.front();
            state_->script.pop_front();
        }
        if (result == ExportResult::Success) state_->batch_sizes.push_back(spans.size());
        state_->changed.notify_all();
        return result;
    }
    bool ForceFlush(std::chrono::milliseconds) noexcept override { return true; }
    void Shutdown() noexcept override {
        std::lock_guard lock(state_->mutex);
        state_->shut_down = true;
    }

private:
    std::shared_ptr<State> state_;
};

pipeline::Span span() {
    pipeline::Span s;
    s.method = "GET";
    return s;
}

size_t total(const std::vector<size_t>& sizes) {
    size_t n = 0;
    for (auto s : sizes) n += s;
    return n;
}

BatchSpanProcessorOptions fast_options() {
    BatchSpanProcessorOptions o;
    o.max_queue_size = 16;
    o.max_export_batch_size = 4;
    o.schedule_delay = 1h;  // only size, flush and shutdown trigger exports in these tests
    o.initial_backoff = 1ms;
    o.max_backoff = 4ms;
    o.jitter_seed = 7;
    return o;
}

TEST(BatchSpanProcessor, FlushExportsInBatchesOfAtMostTheBatchSize) {
    auto state = std::make_shared<FakeExporter::State>();
    BatchSpanProcessor processor(std::make_unique<FakeExporter>(state), fast_options());
    for (int i = 0; i < 7; ++i) EXPECT_TRUE(processor.OnEnd(span()));
    ASSERT_TRUE(processor.ForceFlush(5s));
    std::lock_guard lock(state->mutex);
    EXPECT_EQ(state->batch_sizes, (std::vector<size_t>{4, 3}));
    EXPECT_EQ(processor.counters().exported.load(), 7u);
}

TEST(BatchSpanProcessor, HalfFullQueueWakesTheWorker) {
    auto state = std::make_shared<FakeExporter::State>();
    BatchSpanProcessor processor(std::make_unique<FakeExporter>(state), fast_options());
    for (int i = 0; i < 8; ++i) processor.OnEnd(span());
    std::unique_lock lock(state->mutex);
    ASSERT_TRUE(state->changed.wait_for(lock, 5s, [&] { return total(state->batch_sizes) == 8; }));
}

TEST(BatchSpanProcessor, BlockedExporterDropsNewestAndCountsThem) {
    auto state = std::make_shared<FakeExporter::State>();
    state->blocked = true;
    BatchSpanProcessor processor(std::make_unique<FakeExporter>(state), fast_options());
    for (int i = 0; i < 8; ++i) processor.OnEnd(span());  // wakes the worker, which blocks
    {
        std::unique_lock lock(state->mutex);
        ASSERT_TRUE(state->changed.wait_for(lock, 5s, [&] { return state->in_export; }));
    }
    // The worker holds one batch of 4; the queue has room for 16 more.
    int accepted = 0;
    for (int i = 0; i < 40; ++i) accepted += processor.OnEnd(span()) ? 1 : 0;
    EXPECT_EQ(processor.queued(), 16u);
    EXPECT_EQ(accepted, 16 - 4);
    EXPECT_EQ(processor.counters().dropped_queue_full.load(), 40u - 12u);
    {
        std::lock_guard lock(state->mutex);
        state->blocked = false;
    }
    state->changed.notify_all();
    ASSERT_TRUE(processor.ForceFlush(5s));
    EXPECT_EQ(processor.counters().exported.load(), 20u);
}

TEST(BatchSpanProcessor, RetriesRetryableFailuresThenSucceeds) {
    auto state = std::make_shared<FakeExporter::State>();
    state->script = {ExportResult::RetryableFailure, ExportResult::RetryableFailure};
    BatchSpanProcessor processor(std::make_unique<FakeExporter>(state), fast_options());
    processor.OnEnd(span());
    ASSERT_TRUE(processor.ForceFlush(5s));
    EXPECT_EQ(processor.counters().retries.load(), 2u);
    EXPECT_EQ(processor.counters().exported.load(), 1u);
    EXPECT_EQ(processor.counters().dropped_export_failed.load(), 0u);
}

TEST(BatchSpanProcessor, RetriesAreBoundedAndPermanentFailuresAreNotRetried) {
    auto state = std::make_shared<FakeExporter::State>();
    auto options = fast_options();
    options.max_retries = 2;
    state->script = {ExportResult::RetryableFailure, ExportResult::RetryableFailure,
                     ExportResult::RetryableFailure, ExportResult::Failure};
    BatchSpanProcessor processor(std::make_unique<FakeExporter>(state), options);
    for (int i = 0; i < 3; ++i) processor.OnEnd(span());
    ASSERT_TRUE(processor.ForceFlush(5s));  // batch 1: 3 attempts, then dropped
    processor.OnEnd(span());
    ASSERT_TRUE(processor.ForceFlush(5s));  // batch 2: permanent failure, one attempt
    EXPECT_EQ(processor.counters().dropped_export_failed.load(), 4u);
    EXPECT_EQ(processor.counters().export_attempts_failed.load(), 4u);
    std::lock_guard lock(state->mutex);
    EXPECT_EQ(state->calls, 4u);
}

TEST(BatchSpanProcessor, ShutdownFlushesQueuedSpans) {
    auto state = std::make_shared<FakeExporter::State>();
    BatchSpanProcessor processor(std::make_unique<FakeExporter>(state), fast_options());
    for (int i = 0; i < 5; ++i) processor.OnEnd(span());
    processor.Shutdown(5s);
    EXPECT_EQ(processor.counters().exported.load(), 5u);
    EXPECT_FALSE(processor.OnEnd(span()));
    std::lock_guard lock(state->mutex);
    EXPECT_TRUE(state->shut_down);
}

TEST(BatchSpanProcessor, ShutdownGivesUpOnAFailingCollectorAtTheDeadline) {
    auto state = std::make_shared<FakeExporter::State>();
    auto options = fast_options();
    options.max_retries = 1000;
    options.initial_backoff = 50ms;
    options.max_backoff = 50ms;
    state->script.assign(100000, ExportResult::RetryableFailure);
    BatchSpanProcessor processor(std::make_unique<FakeExporter>(state), options);
    for (int i = 0; i < 10; ++i) processor.OnEnd(span());
    const auto start = std::chrono::steady_clock::now();
    processor.Shutdown(200ms);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_EQ(processor.counters().exported.load(), 0u);
    EXPECT_EQ(processor.counters().dropped_timeout.load() +
                  processor.counters().dropped_export_failed.load(),
              10u);
}

}  // namespace
}  // namespace sonde::exporter::otlp
