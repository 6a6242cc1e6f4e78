// The ring consumer's CPU priority: idle while it keeps up, normal while it
// has fallen behind.
//
// The agent drains the ring in batches (every 1 to 50 ms, ebpf/drain_pacer.h),
// so each wake-up brings a burst of work (about a millisecond at 20k requests
// per second with a fixed 50 ms timer). At normal
// priority that burst holds a CPU against the very server it watches: a
// request that arrives meanwhile waits for it, and the server's tail latency
// grows by the burst. As a SCHED_IDLE thread the consumer runs only on CPU
// time nobody else wants, and any thread of the workload that wakes takes the
// CPU from it at once. On a saturated machine an idle-priority thread gets
// almost no CPU, though, and the ring would fill: a watcher thread at normal
// priority looks at the ring's backlog every 25 ms (a few µs each time) and,
// once a quarter of the ring waits, gives the consumer normal priority back
// until it has caught up. Not for longer: after a load spike the consumer
// would keep delaying the server's requests as above, though idle CPU time is
// back (docs/performance.md, P3 after a burst).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace sonde::ebpf {

struct ConsumerPriorityOptions {
    uint64_t escalate_at_bytes = 0;  // backlog that gives normal priority back
    // Once normal: idle again at the first check that finds the backlog below
    // this, and at least min_normal after the raise (the consumer, woken by
    // the kernel at the same backlog, needs a moment to get the CPU).
    uint64_t caught_up_below_bytes = 0;
    std::chrono::milliseconds min_normal{100};
    // How often the watcher looks at the backlog while the consumer is idle.
    // Records arriving at 26 MB/s would fill a quarter of the 4 MiB ring in
    // 40 ms and the rest in another 110 ms: room for a late check or two.
    std::chrono::milliseconds check_every{25};
};

class ConsumerPriority {
public:
    // Whether a thread of this process may return from SCHED_IDLE to normal
    // priority (CAP_SYS_NICE, or an RLIMIT_NICE that allows nice 0): tried on
    // a short-lived thread, as the kernel decides it.
    static bool can_return_from_idle();

    // Call on the consumer thread: it becomes SCHED_IDLE, and a watcher
    // thread starts; `backlog` returns the bytes waiting in the ring.
    ConsumerPriority(std::function<uint64_t()> backlog, const ConsumerPriorityOptions& options);
    // Stops the watcher; the consumer thread gets normal priority back.
    ~ConsumerPriority();
    ConsumerPriority(const ConsumerPriority&) = delete;
    ConsumerPriority& operator=(const ConsumerPriority&) = delete;

    bool yielding() const { return yielding_.load(std::memory_order_relaxed); }
    // Times the consumer was given normal priority because the backlog grew.
    uint64_t escalations() const { return escalations_.load(std::memory_order_relaxed); }

private:
    void watch();
    bool set_idle(bool idle);

    const pid_t consumer_tid_;
    std::function<uint64_t()> backlog_;
    ConsumerPriorityOptions options_;
    std::mutex mutex_;
    std::condition_variable stop_requested_;
    bool stopping_ = false;  // guarded by mutex_
    std::atomic<bool> yielding_{false};
    std::atomic<uint64_t> escalations_{0};
    std::thread watcher_;
};

}  // namespace sonde::ebpf
