// Trace and span ids for spans that start a trace or a hop. xoshiro256** seeded once from the
// kernel: fast, allocation-free, and good enough for ids (they need uniqueness and 56 random
// low bits for ratio sampling, not unpredictability). Not thread-safe: one per thread.
#pragma once

#include <array>
#include <cstdint>

#include "pipeline/trace_context.h"

namespace sonde::pipeline {

class IdGenerator {
public:
    // Seeds from getrandom(2). If the kernel cannot supply entropy without blocking, falls back
    // to clock and address bits; seeded_from_kernel() tells the caller to log that once.
    IdGenerator() noexcept;
    // Deterministic sequence, for tests and replays.
    explicit IdGenerator(uint64_t seed) noexcept;
    // Raw xoshiro256** state, for reference-vector tests. All zero is replaced by seed 0.
    explicit IdGenerator(const std::array<uint64_t, 4>& state) noexcept;

    TraceId new_trace_id() noexcept;  // never all zero; all 128 bits random
    SpanId new_span_id() noexcept;    // never all zero
    uint64_t next() noexcept;

    bool seeded_from_kernel() const { return seeded_from_kernel_; }

private:
    void seed_with(uint64_t seed) noexcept;

    std::array<uint64_t, 4> state_{};
    bool seeded_from_kernel_ = false;
};

}  // namespace sonde::pipeline
