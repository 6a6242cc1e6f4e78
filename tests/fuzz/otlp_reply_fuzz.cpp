// Arbitrary bytes as what a collector answers: a Retry-After header value and the serialized
// google.rpc.Status of a gRPC error. Neither may crash, and any delay read is within the cap.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "export/otlp/otlp_transport.h"

using namespace sonde::exporter::otlp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    constexpr int64_t kNow = 1'700'000'000;
    for (const auto delay : {parse_retry_after(input, kNow), grpc_retry_delay(input)}) {
        if (delay && (delay->count() < 0 || *delay > kMaxServerRetryDelay)) std::abort();
    }
    return 0;
}
