#include "ebpf/drain_pacer.h"

#include <algorithm>

namespace sonde::ebpf {

DrainPacer::DrainPacer(const DrainPacerOptions& options)
    : options_(options), wait_ms_(static_cast<int>(options.max_wait.count())) {
    options_.min_wait = std::max(options_.min_wait, std::chrono::milliseconds(1));
    options_.max_wait = std::max(options_.max_wait, options_.min_wait);
    wait_ms_ = static_cast<int>(options_.max_wait.count());
}

void DrainPacer::drained(uint64_t records, std::chrono::nanoseconds since_previous) {
    const auto min_ms = options_.min_wait.count();
    const auto max_ms = options_.max_wait.count();
    if (records == 0 || since_previous.count() <= 0) {
        wait_ms_ = static_cast<int>(max_ms);
        return;
    }
    // target / (records / since_previous), in ms; in floating point so that
    // neither a huge batch nor a long gap overflows or rounds to zero.
    const double since_ms = std::chrono::duration<double, std::milli>(since_previous).count();
    const double wait =
        static_cast<double>(options_.target_records) * since_ms / static_cast<double>(records);
    const double clamped =
        std::clamp(wait, static_cast<double>(min_ms), static_cast<double>(max_ms));
    wait_ms_ = static_cast<int>(clamped);  // down: a batch a little smaller than the target
}

}  // namespace sonde::ebpf
