// Gives every span its W3C identity: a server span continues the trace its
// request's traceparent names (same trace id, the header's span as parent,
// its sampled flag honoured by a parent-based sampler); any other span starts
// a new trace. Ids come from a generator seeded from the kernel.
#pragma once

#include "pipeline/id_generator.h"
#include "pipeline/sampler.h"
#include "pipeline/span.h"

namespace sonde::pipeline {

class TraceDecorator {
public:
    explicit TraceDecorator(Sampler sampler) : sampler_(sampler) {}

    void decorate(Span& span);
    const Sampler& sampler() const { return sampler_; }

private:
    IdGenerator ids_;
    Sampler sampler_;
};

}  // namespace sonde::pipeline
