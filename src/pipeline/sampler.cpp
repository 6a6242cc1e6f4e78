#include "pipeline/sampler.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace sonde::pipeline {
namespace {

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != b[i]) return false;
    }
    return true;
}

struct NamedKind {
    std::string_view name;
    SamplerKind kind;
};

constexpr NamedKind kSamplerNames[] = {
    {"always_on", SamplerKind::AlwaysOn},
    {"always_off", SamplerKind::AlwaysOff},
    {"traceidratio", SamplerKind::TraceIdRatio},
    {"parentbased_always_on", SamplerKind::ParentBasedAlwaysOn},
    {"parentbased_always_off", SamplerKind::ParentBasedAlwaysOff},
    {"parentbased_traceidratio", SamplerKind::ParentBasedTraceIdRatio},
};

bool uses_ratio(SamplerKind kind) noexcept {
    return kind == SamplerKind::TraceIdRatio || kind == SamplerKind::ParentBasedTraceIdRatio;
}

bool is_parent_based(SamplerKind kind) noexcept {
    return kind == SamplerKind::ParentBasedAlwaysOn || kind == SamplerKind::ParentBasedAlwaysOff ||
           kind == SamplerKind::ParentBasedTraceIdRatio;
}

}  // namespace

uint64_t trace_id_randomness(const TraceId& trace_id) noexcept {
    uint64_t r = 0;
    for (size_t i = trace_id.size() - 7; i < trace_id.size(); ++i) r = (r << 8) | trace_id[i];
    return r;
}

uint64_t ratio_to_rejection_threshold(double ratio) noexcept {
    if (!(ratio > 0.0)) return kSamplingRandomnessRange;  // 0 and NaN-free callers: never
    if (ratio >= 1.0) return 0;
    // ratio * 2^56 is exact in binary floating point; only the rounding loses precision.
    const auto keep = static_cast<uint64_t>(std::llround(ratio * 0x1p56));
    return kSamplingRandomnessRange - keep;
}

Sampler::Sampler(SamplerKind kind, double ratio) noexcept : kind_(kind) {
    if (!uses_ratio(kind)) {
        ratio =
            kind == SamplerKind::AlwaysOff || kind == SamplerKind::ParentBasedAlwaysOff ? 0.0 : 1.0;
    } else if (std::isnan(ratio)) {
        ratio = 1.0;
    }
    ratio_ = ratio < 0.0 ? 0.0 : ratio > 1.0 ? 1.0 : ratio;
    threshold_ = ratio_to_rejection_threshold(ratio_);
}

bool Sampler::root_decision(const TraceId& trace_id) const noexcept {
    switch (kind_) {
        case SamplerKind::AlwaysOn:
        case SamplerKind::ParentBasedAlwaysOn:
            return true;
        case SamplerKind::AlwaysOff:
        case SamplerKind::ParentBasedAlwaysOff:
            return false;
        case SamplerKind::TraceIdRatio:
        case SamplerKind::ParentBasedTraceIdRatio:
            return trace_id_randomness(trace_id) >= threshold_;
    }
    return false;
}

bool Sampler::should_sample(const TraceId& trace_id, const TraceParent* parent) const noexcept {
    // ParentBased with the spec's default delegates: a sampled parent (remote or local) is
    // AlwaysOn, an unsampled one AlwaysOff. The plain samplers ignore the parent's flag.
    if (is_parent_based(kind_) && parent != nullptr && parent->valid) return parent->sampled();
    return root_decision(trace_id);
}

std::string_view Sampler::name() const noexcept {
    for (const auto& entry : kSamplerNames) {
        if (entry.kind == kind_) return entry.name;
    }
    return {};
}

std::string Sampler::description() const {
    std::string root;
    switch (kind_) {
        case SamplerKind::AlwaysOn:
        case SamplerKind::ParentBasedAlwaysOn:
            root = "AlwaysOnSampler";
            break;
        case SamplerKind::AlwaysOff:
        case SamplerKind::ParentBasedAlwaysOff:
            root = "AlwaysOffSampler";
            break;
        case SamplerKind::TraceIdRatio:
        case SamplerKind::ParentBasedTraceIdRatio: {
            char buf[64];
            std::snprintf(buf, sizeof(buf), "TraceIdRatioBased{%f}", ratio_);
            root = buf;
            break;
        }
    }
    return is_parent_based(kind_) ? "ParentBased{root=" + root + "}" : root;
}

SamplerConfigResult make_sampler(std::string_view name, std::string_view arg) {
    SamplerConfigResult result;
    name = trim(name);
    if (name.empty()) return result;  // unset: ParentBased(root=AlwaysOn)
    const NamedKind* found = nullptr;
    for (const auto& entry : kSamplerNames) {
        if (iequals(name, entry.name)) found = &entry;
    }
    if (found == nullptr) {
        result.error = "unknown trace sampler \"" + std::string(name) +
                       "\" (expected always_on, always_off, traceidratio, "
                       "parentbased_always_on, parentbased_always_off or "
                       "parentbased_traceidratio)";
        return result;
    }
    double ratio = 1.0;  // the spec's default when the argument is unset
    arg = trim(arg);
    if (uses_ratio(found->kind) && !arg.empty()) {
        double parsed = 0.0;
        const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), parsed);
        if (ec != std::errc() || end != arg.data() + arg.size() || !(parsed >= 0.0) ||
            parsed > 1.0) {
            result.warning = "invalid sampler argument \"" + std::string(arg) + "\" for " +
                             std::string(found->name) + ": expected a ratio in [0, 1]; using 1.0";
        } else {
            ratio = parsed;
        }
    }
    result.sampler = Sampler(found->kind, ratio);
    return result;
}

}  // namespace sonde::pipeline
