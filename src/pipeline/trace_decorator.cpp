#include "pipeline/trace_decorator.h"

#include "pipeline/trace_context.h"

namespace sonde::pipeline {

void TraceDecorator::decorate(Span& span) {
    // A client request carrying a traceparent was written by the process's
    // own tracing (an SDK): its span is the parent of what we observe.
    const TraceParent parent = parse_traceparent(span.traceparent);
    if (parent.valid) {
        span.trace_id = parent.trace_id;
        span.parent_span_id = parent.parent_span_id;
        span.tracestate = sanitize_tracestate(span.tracestate);
    } else {
        span.trace_id = ids_.new_trace_id();
        span.parent_span_id = {};
        span.tracestate.clear();
    }
    span.span_id = ids_.new_span_id();
    span.sampled = sampler_.should_sample(span.trace_id, parent.valid ? &parent : nullptr);
}

}  // namespace sonde::pipeline
