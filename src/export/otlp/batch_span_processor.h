// Batches spans for an exporter on a background thread. Capture never waits on export: the queue
// is bounded, a full queue drops the incoming span, and every drop is counted by reason.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "export/otlp/otlp_exporter.h"
#include "pipeline/span.h"

namespace sonde::exporter::otlp {

struct BatchSpanProcessorOptions {
    size_t max_queue_size = 4096;
    size_t max_export_batch_size = 512;
    std::chrono::milliseconds schedule_delay{5000};  // export at least this often
    // Retries of one batch after a retryable failure, each after an exponential, jittered delay.
    unsigned max_retries = 5;
    std::chrono::milliseconds initial_backoff{1000};
    std::chrono::milliseconds max_backoff{30000};
    uint64_t jitter_seed = 0;  // 0: seeded from std::random_device
};

// Named to match the agent's self-metric `…_export_dropped_total{reason=…}`.
struct BatchSpanProcessorCounters {
    std::atomic<uint64_t> enqueued{0};
    std::atomic<uint64_t> exported{0};
    std::atomic<uint64_t> dropped_queue_full{0};
    std::atomic<uint64_t> dropped_export_failed{0};
    std::atomic<uint64_t> dropped_timeout{0};  // still queued when shutdown's deadline passed
    std::atomic<uint64_t> export_attempts_failed{0};
    std::atomic<uint64_t> retries{0};
};

class BatchSpanProcessor {
public:
    BatchSpanProcessor(std::unique_ptr<SpanExporter> exporter, BatchSpanProcessorOptions options);
    ~BatchSpanProcessor();  // Shutdown with the default timeout
    BatchSpanProcessor(const BatchSpanProcessor&) = delete;
    BatchSpanProcessor& operator=(const BatchSpanProcessor&) = delete;

    // Never blocks on export. False when the span was dropped (queue full or shut down).
    bool OnEnd(pipeline::Span span) noexcept;
    // Exports everything queued before the call; false if that did not finish within `timeout`.
    bool ForceFlush(std::chrono::milliseconds timeout) noexcept;
    // Flushes what it can within `timeout`, counts the rest as dropped(timeout), stops the
    // thread and shuts the exporter down. Idempotent.
    void Shutdown(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;

    const BatchSpanProcessorCounters& counters() const { return counters_; }
    size_t queued() const;

private:
    void run();
    // Exports one batch with retries; returns when done, dropped, or stopping and past deadline.
    void export_batch(std::vector<pipeline::Span>& batch, std::unique_lock<std::mutex>& lock);

    std::unique_ptr<SpanExporter> exporter_;
    BatchSpanProcessorOptions options_;
    RetryBackoff backoff_;
    BatchSpanProcessorCounters counters_;

    mutable std::mutex mutex_;
    std::condition_variable wake_worker_;
    std::condition_variable flushed_;
    std::deque<pipeline::Span> queue_;
    bool stopping_ = false;
    bool shut_down_ = false;
    std::mutex shutdown_mutex_;  // serialises Shutdown callers around the join
    std::chrono::steady_clock::time_point stop_deadline_{};
    uint64_t flush_requested_ = 0;  // generation counters for ForceFlush
    uint64_t flush_done_ = 0;
    std::thread worker_;  // last: started after everything it touches exists
};

}  // namespace sonde::exporter::otlp
