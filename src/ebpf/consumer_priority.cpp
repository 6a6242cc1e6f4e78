#include "ebpf/consumer_priority.h"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sonde::ebpf {

namespace {

bool set_policy(pid_t tid, int policy) {
    sched_param param{};
    param.sched_priority = 0;
    return sched_setscheduler(tid, policy, &param) == 0;
}

}  // namespace

bool ConsumerPriority::can_return_from_idle() {
    bool ok = false;
    std::thread probe([&ok] { ok = set_policy(0, SCHED_IDLE) && set_policy(0, SCHED_OTHER); });
    probe.join();
    return ok;
}

ConsumerPriority::ConsumerPriority(std::function<uint64_t()> backlog,
                                   const ConsumerPriorityOptions& options)
    : consumer_tid_(gettid()), backlog_(std::move(backlog)), options_(options) {
    // The watcher is started first, so that it keeps normal priority.
    watcher_ = std::thread([this] { watch(); });
    set_idle(true);
}

ConsumerPriority::~ConsumerPriority() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    stop_requested_.notify_all();
    watcher_.join();
    set_idle(false);
}

bool ConsumerPriority::set_idle(bool idle) {
    if (!set_policy(consumer_tid_, idle ? SCHED_IDLE : SCHED_OTHER)) {
        spdlog::warn("cannot give the ring consumer {} priority: {}", idle ? "idle" : "normal",
                     std::strerror(errno));
        return false;
    }
    yielding_.store(idle, std::memory_order_relaxed);
    return true;
}

void ConsumerPriority::watch() {
    using Clock = std::chrono::steady_clock;
    auto backoff = options_.first_backoff;
    Clock::time_point idle_again{};    // while normal: when to yield again
    Clock::time_point last_yielded{};  // when the consumer last became idle
    std::unique_lock lock(mutex_);
    while (true) {
        const auto wake = yielding() ? Clock::now() + options_.check_every : idle_again;
        if (stop_requested_.wait_until(lock, wake, [this] { return stopping_; })) return;
        const auto now = Clock::now();
        if (yielding()) {
            if (backlog_() >= options_.escalate_at_bytes && set_idle(false)) {
                escalations_.fetch_add(1, std::memory_order_relaxed);
                // Falling behind again soon after yielding: stay normal longer.
                backoff = now - last_yielded < 2 * backoff
                              ? std::min(backoff * 2, options_.max_backoff)
                              : options_.first_backoff;
                idle_again = now + backoff;
            }
        } else if (now >= idle_again && set_idle(true)) {
            last_yielded = now;
        }
    }
}

}  // namespace sonde::ebpf
