#include "export/otlp/periodic_metric_exporter.h"

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <random>

#include "export/otlp/otlp_exporter.h"

namespace sonde::exporter::otlp {

namespace {

uint64_t unix_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

uint64_t count_data_points(const otlp_collector_metrics::ExportMetricsServiceRequest& request) {
    uint64_t n = 0;
    for (const auto& rm : request.resource_metrics())
        for (const auto& sm : rm.scope_metrics())
            for (const auto& metric : sm.metrics())
                n += uint64_t(metric.histogram().data_points_size());
    return n;
}

}  // namespace

PeriodicMetricExporter::PeriodicMetricExporter(MetricsCollector collect,
                                               std::unique_ptr<OtlpTransport> transport,
                                               PeriodicMetricExporterOptions options)
    : collect_(std::move(collect)),
      transport_(std::move(transport)),
      options_(std::move(options)),
      backoff_(options_.initial_backoff, options_.max_backoff, options_.jitter_seed) {
    if (options_.encoder.host_name.empty()) options_.encoder.host_name = local_host_name();
    if (options_.start_time_unix_nano == 0) options_.start_time_unix_nano = unix_now_ns();
    if (options_.interval.count() <= 0) options_.interval = std::chrono::milliseconds(1);
    interval_start_unix_ns_ = options_.start_time_unix_nano;
    worker_ = std::thread([this] { run(); });
}

PeriodicMetricExporter::~PeriodicMetricExporter() {
    Shutdown();
}

bool PeriodicMetricExporter::ForceFlush(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (stopping_) return false;
    const uint64_t target = ++flush_requested_;
    wake_.notify_all();
    return flushed_.wait_for(lock, timeout, [&] { return flush_done_ >= target || shut_down_; }) &&
           flush_done_ >= target;
}

void PeriodicMetricExporter::Shutdown(std::chrono::milliseconds timeout) {
    std::lock_guard serial(shutdown_mutex_);
    {
        std::lock_guard lock(mutex_);
        if (shut_down_) return;
        stopping_ = true;
        stop_deadline_ = Clock::now() + timeout;
    }
    wake_.notify_all();
    if (worker_.joinable()) worker_.join();
    std::lock_guard lock(mutex_);
    shut_down_ = true;
    flushed_.notify_all();
}

void PeriodicMetricExporter::export_until(Clock::time_point deadline,
                                          std::unique_lock<std::mutex>& lock) {
    lock.unlock();
    const pipeline::MetricsSnapshot cumulative = collect_();
    const uint64_t now_ns = unix_now_ns();
    MetricsEncodeOptions encode;
    encode.encoder = options_.encoder;
    encode.temporality = options_.temporality;
    encode.time_unix_nano = now_ns;
    otlp_collector_metrics::ExportMetricsServiceRequest request;
    if (options_.temporality == Temporality::Delta) {
        encode.start_time_unix_nano = interval_start_unix_ns_;
        build_metrics_request(delta_.delta(cumulative), encode, &request);
    } else {
        encode.start_time_unix_nano = options_.start_time_unix_nano;
        build_metrics_request(cumulative, encode, &request);
    }
    const uint64_t points = count_data_points(request);
    lock.lock();
    if (points == 0) {
        // Nothing recorded yet (or, for delta, nothing new): no request, nothing to lose.
        if (options_.temporality == Temporality::Delta) interval_start_unix_ns_ = now_ns;
        return;
    }
    for (unsigned attempt = 0;; ++attempt) {
        lock.unlock();
        otlp_collector_metrics::ExportMetricsServiceResponse response;
        SendResult sent;
        try {
            sent = transport_->send(request, response);
        } catch (const std::exception& e) {
            spdlog::warn("otlp: metric export failed: {}", e.what());
            sent.result = ExportResult::Failure;
        }
        lock.lock();
        if (sent.result == ExportResult::Success) {
            counters_.exports.fetch_add(1, std::memory_order_relaxed);
            counters_.data_points_exported.fetch_add(points, std::memory_order_relaxed);
            if (response.has_partial_success() &&
                (response.partial_success().rejected_data_points() > 0 ||
                 !response.partial_success().error_message().empty())) {
                // Never retried: the collector has decided about these points.
                const auto& partial = response.partial_success();
                counters_.data_points_rejected.fetch_add(
                    uint64_t(std::max<int64_t>(partial.rejected_data_points(), 0)),
                    std::memory_order_relaxed);
                spdlog::warn("otlp: collector rejected {} of {} metric data points: {}",
                             partial.rejected_data_points(), points, partial.error_message());
            }
            if (options_.temporality == Temporality::Delta) {
                delta_.commit(cumulative);
                interval_start_unix_ns_ = now_ns;
            }
            if (last_export_failed_) spdlog::info("otlp: metric export resumed");
            last_export_failed_ = false;
            return;
        }
        counters_.export_attempts_failed.fetch_add(1, std::memory_order_relaxed);
        const auto delay = std::max(backoff_.delay(attempt), sent.retry_after);
        const auto retry_at = Clock::now() + delay;
        if (sent.result == ExportResult::Failure || retry_at >= deadline ||
            (stopping_ && retry_at >= stop_deadline_)) {
            counters_.data_points_dropped_failed.fetch_add(points, std::memory_order_relaxed);
            if (!last_export_failed_)
                spdlog::warn("otlp: metric export failed; retrying at the next interval");
            last_export_failed_ = true;
            return;
        }
        wake_.wait_until(lock, retry_at, [&] { return stopping_ && retry_at >= stop_deadline_; });
        if (stopping_ && retry_at >= stop_deadline_) {
            counters_.data_points_dropped_failed.fetch_add(points, std::memory_order_relaxed);
            return;
        }
        counters_.retries.fetch_add(1, std::memory_order_relaxed);
    }
}

void PeriodicMetricExporter::run() {
    std::unique_lock lock(mutex_);
    auto next = Clock::now() + options_.interval;
    for (;;) {
        wake_.wait_until(lock, next, [&] { return stopping_ || flush_requested_ != flush_done_; });
        if (stopping_) {
            // The last export: skipped when the collector was failing, so that a collector
            // that is down does not hold up the agent's exit.
            if (!last_export_failed_) export_until(stop_deadline_, lock);
            flush_done_ = flush_requested_;
            flushed_.notify_all();
            return;
        }
        const uint64_t flush_target = flush_requested_;
        const auto now = Clock::now();
        if (now >= next) next = now + options_.interval;
        // Retries stop when the next collection is due: it supersedes this one.
        export_until(flush_target != flush_done_ ? now + options_.interval : next, lock);
        flush_done_ = flush_target;
        flushed_.notify_all();
    }
}

}  // namespace sonde::exporter::otlp
