// How long the ring's consumer waits between two drains.
//
// Records reach the ring without waking the consumer (bpf/socket_trace.bpf.c
// wakes it only once a quarter of the ring waits), so it drains on a timer,
// and each drain is a burst of work on one CPU. With a fixed 50 ms timer, a
// server at 21k requests per second saw bursts of about a millisecond, and
// its p99 latency rose measurably more than under the probe floor; with
// drains a millisecond or two apart it did not (docs/performance.md, "Drain
// pacing"). So the pacer aims at a batch of about `target_records` per drain:
// the wait is that batch divided by the arrival rate the last drain saw,
// within [min_wait, max_wait]. A wake-up costs the agent about 7 µs here:
// the shortest wait bounds that to under 1 % of a CPU, and a quiet host keeps
// the longest.
//
// Short waits only pay while the host has idle CPU time. At saturation the
// drain, at idle priority, runs only in the gaps anyway, and more wake-ups
// only add context switches to the server's CPUs: so while less than
// `min_idle_share` of the host's CPU time was idle (/proc/stat, sampled by
// the caller) the pacer keeps the longest wait, as the fixed timer did.
#pragma once

#include <chrono>
#include <cstdint>

namespace sonde::ebpf {

struct DrainPacerOptions {
    uint32_t target_records = 64;
    std::chrono::milliseconds min_wait{1};
    std::chrono::milliseconds max_wait{50};
    double min_idle_share = 0.15;  // of the host's CPU time; below it, the longest wait
};

class DrainPacer {
public:
    explicit DrainPacer(const DrainPacerOptions& options = {});

    // The wait before the next drain, in the milliseconds epoll takes.
    int wait_ms() const { return wait_ms_; }

    // A drain handled `records` records that arrived over `since_previous`
    // (the time since the drain before it ended).
    void drained(uint64_t records, std::chrono::nanoseconds since_previous);

    // The share of the host's CPU time that was idle lately, from 0 to 1.
    void host_idle_share(double share);

private:
    DrainPacerOptions options_;
    int wait_ms_ = 0;  // set by the constructor from the checked options
    bool host_busy_ = false;
};

}  // namespace sonde::ebpf
