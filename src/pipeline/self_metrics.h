// The agent's own metrics: every place data can be lost has a named counter.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sonde::pipeline {

struct SelfMetrics {
    std::atomic<uint64_t> events_read{0};          // ring-buffer records consumed
    std::atomic<uint64_t> events_malformed{0};     // records too short / unknown type
    std::atomic<uint64_t> kernel_ringbuf_full{0};  // mirrored from the kernel counter
    std::atomic<uint64_t> kernel_entry_missing{0};
    std::atomic<uint64_t> kernel_read_user_failed{0};
    // The ledger's two ends: requests whose start a parser saw, and requests that reached
    // an exporter (recorded in the RED metrics, or a span handed to a span exporter).
    std::atomic<uint64_t> requests_seen{0};
    std::atomic<uint64_t> requests_exported{0};
    std::atomic<uint64_t> requests_filtered{0};  // left out on purpose (ignored, unsampled)
    // Protocol bytes that did not parse, by protocol.
    std::atomic<uint64_t> parse_errors_http1{0};
    std::atomic<uint64_t> parse_errors_http2{0};
    std::atomic<uint64_t> connections_unrecognized{0};  // no protocol we parse: bytes skipped
    std::atomic<uint64_t> lost_sync{0};                 // gaps that hid a message boundary
    std::atomic<uint64_t> partial_exchanges{0};         // HTTP/2 exchanges with undecodable headers
    std::atomic<uint64_t> unpaired_responses{0};
    std::atomic<uint64_t> dropped_requests{0};
    std::atomic<uint64_t> connections_evicted{0};  // tracker over its connection cap
    std::atomic<uint64_t> connections_tracked{0};  // gauge
    std::atomic<uint64_t> spans_produced{0};
    std::atomic<uint64_t> instrumented_processes{0};  // gauge
    std::atomic<uint64_t> metric_series_dropped{0};
    std::atomic<uint64_t> routes_overflowed{0};   // requests given the overflow route
    std::atomic<uint64_t> discovery_problems{0};  // mirrored from discovery's counters
    // The ring consumer's CPU priority (ebpf/consumer_priority.h).
    std::atomic<uint64_t> consumer_yielding{0};  // gauge: 1 while it runs at idle priority
    std::atomic<uint64_t> consumer_priority_raised{0};
    std::atomic<uint64_t> ring_drains{0};  // wake-ups of the drain thread (ring_drain_batch)
    // TLS: probes, and ciphertext kept away from the parsers.
    std::atomic<uint64_t> tls_libraries_probed{0};  // gauge: library files with uprobes
    std::atomic<uint64_t> tls_probes_failed{0};     // uprobes the kernel refused
    std::atomic<uint64_t> tls_ciphertext_ignored{0};
    std::atomic<uint64_t> kernel_tls_ciphertext_skipped{0};
    std::atomic<uint64_t> kernel_tls_socket_unknown{0};
    // Mirrored from the OTLP span pipeline.
    std::atomic<uint64_t> spans_exported{0};
    std::atomic<uint64_t> span_export_dropped_queue_full{0};
    std::atomic<uint64_t> span_export_dropped_failed{0};
    std::atomic<uint64_t> span_export_dropped_timeout{0};
    std::atomic<uint64_t> span_export_rejected{0};  // partial success
    // Mirrored from the OTLP metric exporter.
    std::atomic<uint64_t> metric_exports{0};
    std::atomic<uint64_t> metric_points_exported{0};
    std::atomic<uint64_t> metric_export_dropped_failed{0};
    std::atomic<uint64_t> metric_export_rejected{0};  // partial success
    std::atomic<uint64_t> metric_export_retries{0};

    void render_prometheus(std::string& out) const;
};

// Adds to a counter that only the calling thread writes: the ring's drain thread is the
// one writer of every per-request counter. A relaxed load and store instead of a locked
// read-modify-write: the drain thread bumps a dozen counters per request, and each locked
// instruction drains the store buffer. Other threads still read whole values.
inline void add_owned(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Logs the growth of every counter of lost data (ring full, queue overflow, eviction, parse
// failure, export drop, ...), at most one line per counter per interval, so that a flood of
// drops shows in the log without becoming a flood of log lines.
class DropLog {
public:
    explicit DropLog(std::chrono::steady_clock::duration interval = std::chrono::seconds(30));

    // The lines due at `now`: one per loss counter that grew since its last line, if that
    // line is at least one interval old.
    std::vector<std::string> due(const SelfMetrics& metrics,
                                 std::chrono::steady_clock::time_point now);

private:
    struct Reported {
        uint64_t value = 0;
        std::chrono::steady_clock::time_point next{};
    };
    std::chrono::steady_clock::duration interval_;
    std::vector<Reported> reported_;  // one per loss counter
};

}  // namespace sonde::pipeline
