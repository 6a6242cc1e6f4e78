#include "export/otlp/batch_span_processor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

namespace sonde::exporter::otlp {

using Clock = std::chrono::steady_clock;

BatchSpanProcessor::BatchSpanProcessor(std::unique_ptr<SpanExporter> exporter,
                                       BatchSpanProcessorOptions options)
    : exporter_(std::move(exporter)),
      options_(options),
      backoff_(options_.initial_backoff, options_.max_backoff, options_.jitter_seed) {
    options_.max_queue_size = std::max<size_t>(options_.max_queue_size, 1);
    options_.max_export_batch_size =
        std::clamp<size_t>(options_.max_export_batch_size, 1, options_.max_queue_size);
    worker_ = std::thread([this] { run(); });
}

BatchSpanProcessor::~BatchSpanProcessor() {
    Shutdown();
}

size_t BatchSpanProcessor::queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

bool BatchSpanProcessor::OnEnd(pipeline::Span span) noexcept {
    const size_t wake_at = std::max<size_t>(options_.max_queue_size / 2, 1);
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return false;
        if (queue_.size() >= options_.max_queue_size) {
            counters_.dropped_queue_full.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        try {
            queue_.push_back(std::move(span));
        } catch (const std::bad_alloc&) {
            counters_.dropped_queue_full.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        counters_.enqueued.fetch_add(1, std::memory_order_relaxed);
        wake = queue_.size() == wake_at;  // once, on crossing half full
    }
    if (wake) wake_worker_.notify_one();
    return true;
}

bool BatchSpanProcessor::ForceFlush(std::chrono::milliseconds timeout) noexcept {
    std::unique_lock lock(mutex_);
    if (stopping_) return queue_.empty();
    const uint64_t target = ++flush_requested_;
    wake_worker_.notify_one();
    return flushed_.wait_for(lock, timeout, [&] { return flush_done_ >= target; });
}

void BatchSpanProcessor::Shutdown(std::chrono::milliseconds timeout) noexcept {
    std::lock_guard serial(shutdown_mutex_);
    {
        std::lock_guard lock(mutex_);
        if (shut_down_) return;
        stopping_ = true;
        stop_deadline_ = Clock::now() + timeout;
    }
    wake_worker_.notify_all();
    if (worker_.joinable()) worker_.join();
    {
        std::lock_guard lock(mutex_);
        shut_down_ = true;
    }
    flushed_.notify_all();
    exporter_->Shutdown();
}

void BatchSpanProcessor::export_batch(std::vector<pipeline::Span>& batch,
                                      std::unique_lock<std::mutex>& lock) {
    const uint64_t n = batch.size();
    for (unsigned attempt = 0;; ++attempt) {
        lock.unlock();
        const ExportResult result = exporter_->Export(batch);
        lock.lock();
        if (result == ExportResult::Success) {
            counters_.exported.fetch_add(n, std::memory_order_relaxed);
            return;
        }
        counters_.export_attempts_failed.fetch_add(1, std::memory_order_relaxed);
        if (result == ExportResult::Failure || attempt >= options_.max_retries) {
            counters_.dropped_export_failed.fetch_add(n, std::memory_order_relaxed);
            return;
        }
        // The collector's own delay (Retry-After, RetryInfo) wins when it asks for longer.
        const auto delay = std::max(backoff_.delay(attempt), exporter_->retry_after());
        const auto retry_at = Clock::now() + delay;
        // Shutdown shortens the wait: a retry that would land past the deadline is not made.
        wake_worker_.wait_until(lock, retry_at,
                                [&] { return stopping_ && retry_at >= stop_deadline_; });
        if (stopping_ && retry_at >= stop_deadline_) {
            counters_.dropped_timeout.fetch_add(n, std::memory_order_relaxed);
            return;
        }
        counters_.retries.fetch_add(1, std::memory_order_relaxed);
    }
}

void BatchSpanProcessor::run() {
    const size_t wake_at = std::max<size_t>(options_.max_queue_size / 2, 1);
    std::vector<pipeline::Span> batch;
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_worker_.wait_for(lock, options_.schedule_delay, [&] {
            return stopping_ || queue_.size() >= wake_at || flush_requested_ != flush_done_;
        });
        const uint64_t flush_target = flush_requested_;
        while (!queue_.empty()) {
            if (stopping_ && Clock::now() >= stop_deadline_) {
                counters_.dropped_timeout.fetch_add(queue_.size(), std::memory_order_relaxed);
                queue_.clear();
                break;
            }
            const size_t take = std::min(queue_.size(), options_.max_export_batch_size);
            batch.clear();
            batch.reserve(take);
            std::move(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take),
                      std::back_inserter(batch));
            queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
            export_batch(batch, lock);
        }
        flush_done_ = flush_target;
        flushed_.notify_all();
        if (stopping_) return;
    }
}

}  // namespace sonde::exporter::otlp
