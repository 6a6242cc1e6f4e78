// Arbitrary bytes as a ring-buffer record: decoding must never read past the
// record nor accept segments that do not add up.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <variant>

#include "ebpf/events.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto record = sonde::ebpf::decode_record({data, size});
    if (auto* d = std::get_if<sonde::ebpf::DataRecord>(&record)) {
        uint64_t sum = 0;
        for (uint8_t b : d->payload) sum += b;  // touches every byte: ASan checks bounds
        if (d->payload.size() > SONDE_MAX_CAPTURE) std::abort();
        (void)sum;
    }
    return 0;
}
