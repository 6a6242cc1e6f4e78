// Arbitrary bytes as traceparent and tracestate values: parsing never crashes, a valid
// version-00 traceparent formats back to exactly its input, any valid one re-parses to the same
// ids, and a tracestate is either kept whole or dropped.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pipeline/trace_context.h"

using namespace sonde::pipeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const TraceParent parsed = parse_traceparent(input);
    if (parsed.valid) {
        const std::string formatted =
            format_traceparent(parsed.trace_id, parsed.parent_span_id, parsed.flags);
        if (formatted.size() != kTraceParentLength) std::abort();
        if (input.substr(0, 2) == "00" && formatted != input) std::abort();
        const TraceParent again = parse_traceparent(formatted);
        if (!again.valid || again.trace_id != parsed.trace_id ||
            again.parent_span_id != parsed.parent_span_id || again.flags != parsed.flags) {
            std::abort();
        }
    } else if (parsed.sampled()) {
        std::abort();
    }
    const std::string_view state = sanitize_tracestate(input);
    if (!state.empty() && state != input) std::abort();
    if (state.size() > kTraceStateMaxLength) std::abort();
    return 0;
}
