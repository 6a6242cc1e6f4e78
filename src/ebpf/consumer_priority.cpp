#include "ebpf/consumer_priority.h"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

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
    Clock::time_point raised_at{};
    std::unique_lock lock(mutex_);
    while (true) {
        if (stop_requested_.wait_for(lock, options_.check_every, [this] { return stopping_; }))
            return;
        const uint64_t backlog = backlog_();
        if (yielding()) {
            if (backlog >= options_.escalate_at_bytes && set_idle(false)) {
                escalations_.fetch_add(1, std::memory_order_relaxed);
                raised_at = Clock::now();
            }
        } else if (backlog < options_.caught_up_below_bytes &&
                   Clock::now() - raised_at >= options_.min_normal) {
            // Refused (it never is for a thread of our own): stay normal, once warned.
            if (!set_idle(true)) return;
        }
    }
}

}  // namespace sonde::ebpf
