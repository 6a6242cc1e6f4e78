// Head samplers as named by OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
// TraceIdRatioBased follows the current SDK spec
// (https://opentelemetry.io/docs/specs/otel/trace/sdk/#traceidratiobased): randomness R is the
// trace id's rightmost 7 bytes, the rejection threshold T = 2^56 - round(ratio * 2^56), and a
// trace is kept iff R >= T. The decision depends only on the trace id, so every agent and every
// conforming SDK keeps or drops the same traces.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pipeline/trace_context.h"

namespace sonde::pipeline {

enum class SamplerKind : uint8_t {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio,
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio,
};

inline constexpr uint64_t kSamplingRandomnessRange = uint64_t{1} << 56;  // 2^56

class Sampler {
public:
    // The spec's default: ParentBased(root=AlwaysOn).
    Sampler() noexcept : Sampler(SamplerKind::ParentBasedAlwaysOn, 1.0) {}
    // `ratio` is clamped to [0, 1]; NaN counts as 1. Ignored by the non-ratio kinds.
    Sampler(SamplerKind kind, double ratio) noexcept;

    // `parent` is the incoming context, or nullptr / an invalid one for a root span.
    bool should_sample(const TraceId& trace_id, const TraceParent* parent) const noexcept;

    SamplerKind kind() const { return kind_; }
    double ratio() const { return ratio_; }
    uint64_t rejection_threshold() const { return threshold_; }  // T, in [0, 2^56]
    std::string_view name() const noexcept;                      // the env-var spelling
    // Per the spec's GetDescription, e.g. "ParentBased{root=TraceIdRatioBased{0.250000}}".
    std::string description() const;

private:
    bool root_decision(const TraceId& trace_id) const noexcept;

    SamplerKind kind_;
    double ratio_;
    uint64_t threshold_;
};

// R: the trace id's rightmost 56 bits as an unsigned integer.
uint64_t trace_id_randomness(const TraceId& trace_id) noexcept;
// T for a ratio in [0, 1]; 2^56 (never sample) for 0 and for ratios below 2^-57.
uint64_t ratio_to_rejection_threshold(double ratio) noexcept;

struct SamplerConfigResult {
    Sampler sampler;      // always usable: the default when `error` is set
    std::string error;    // unknown sampler name: the config is wrong
    std::string warning;  // bad ratio argument: fell back to 1.0 as the spec says; log it once
    bool ok() const { return error.empty(); }
};

// `name` and `arg` as found in OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG or the YAML
// `otel_traces_export.sampler`. Empty name means unset (the default). Names are matched
// case-insensitively after trimming whitespace, as the spec asks of enum-valued variables.
SamplerConfigResult make_sampler(std::string_view name, std::string_view arg);

}  // namespace sonde::pipeline
