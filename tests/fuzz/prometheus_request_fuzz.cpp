// Arbitrary bytes as a scrape request: the answer is always one of the
// statuses the server knows, and once given it never changes with more bytes,
// which is what lets the server answer before reading to the end.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "export/prometheus/prometheus_server.h"

using sonde::exporter::classify_scrape_request;

namespace {

constexpr std::string_view kPath = "/metrics";

bool known_status(int status) {
    return status == 0 || status == 200 || status == 400 || status == 404 || status == 405 ||
           status == 431;
}

std::string_view skip_blank_lines(std::string_view s) {
    while (!s.empty() && (s[0] == '\r' || s[0] == '\n')) {
        s.remove_prefix(1);
    }
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) {
        return 0;
    }
    // The first byte picks the limit, so small limits get exercised too.
    const size_t max_bytes = size_t(data[0]) * 4;
    const std::string request(reinterpret_cast<const char*>(data + 1), size - 1);

    const int status = classify_scrape_request(request, kPath, max_bytes);
    if (!known_status(status)) {
        std::abort();
    }
    if (status == 0 && request.size() > max_bytes) {
        std::abort();  // the server would read forever
    }
    if (status == 200) {
        const std::string_view start = skip_blank_lines(request);
        if (start.substr(0, 4) != "GET " && start.substr(0, 5) != "HEAD ") {
            std::abort();
        }
    }
    if (status != 0) {
        if (classify_scrape_request(request + "GET / HTTP/1.1\r\n\r\n", kPath, max_bytes) !=
            status) {
            std::abort();
        }
    }
    // Every prefix that already has an answer must have the final one.
    for (const size_t cut : {request.size() / 3, request.size() / 2, request.size() - 1}) {
        if (cut >= request.size()) {
            continue;
        }
        const int early =
            classify_scrape_request(std::string_view(request).substr(0, cut), kPath, max_bytes);
        if (early != 0 && early != status) {
            std::abort();
        }
    }
    return 0;
}
