#include "ebpf/drain_pacer.h"

#include <algorithm>

namespace sonde::ebpf {

DrainPacer::DrainPacer(const DrainPacerOptions& options) : options_(options) {
    options_.min_wait = std::max(options_.min_wait, std::chrono::milliseconds(1));
    options_.max_wait = std::max(options_.max_wait, options_.min_wait);
    wait_ms_ = static_cast<int>(options_.max_wait.count());
}

void DrainPacer::drained(uint64_t records, std::chrono::nanoseconds since_previous) {
    const double min_ms = static_cast<double>(options_.min_wait.count());
    const double max_ms = static_cast<double>(options_.max_wait.count());
    if (host_busy_ || records == 0 || since_previous.count() <= 0) {
        wait_ms_ = static_cast<int>(max_ms);
        return;
    }
    // target / (records / since_previous), in ms; in floating point so that
    // neither a huge batch nor a long gap overflows or rounds to zero.
    const double since_ms = std::chrono::duration<double, std::milli>(since_previous).count();
    const double wait =
        static_cast<double>(options_.target_records) * since_ms / static_cast<double>(records);
    // Rounded down: a batch a little below the target.
    wait_ms_ = static_cast<int>(std::clamp(wait, min_ms, max_ms));
}

void DrainPacer::host_idle_share(double share) {
    host_busy_ = share < options_.min_idle_share;
    if (host_busy_) wait_ms_ = static_cast<int>(options_.max_wait.count());
}

}  // namespace sonde::ebpf
