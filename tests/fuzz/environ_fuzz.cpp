// Input layout: byte 0 = key length (mod 64), then the key, then the rest as
// a NUL-separated environment block. Exercises environ_value and the
// OTEL_RESOURCE_ATTRIBUTES decoder on what it returns.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "discovery/proc_parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const size_t key_len = std::min<size_t>(data[0] % 64, size - 1);
    const std::string_view key(reinterpret_cast<const char*>(data + 1), key_len);
    const std::string_view environ(reinterpret_cast<const char*>(data + 1 + key_len),
                                   size - 1 - key_len);

    if (const auto value = sonde::discovery::environ_value(environ, key)) {
        if (value->size() >= environ.size() || environ.find(*value) == std::string_view::npos) {
            std::abort();
        }
    }
    // Percent-decoding only shrinks text.
    if (const auto value = sonde::discovery::resource_attribute(environ, key)) {
        if (value->size() > environ.size()) {
            std::abort();
        }
    }
    if (const auto attributes =
            sonde::discovery::environ_value(environ, "OTEL_RESOURCE_ATTRIBUTES")) {
        for (const char* name : {"service.name", "service.namespace"}) {
            if (const auto value = sonde::discovery::resource_attribute(*attributes, name)) {
                if (value->size() > attributes->size()) {
                    std::abort();
                }
            }
        }
    }
    return 0;
}
