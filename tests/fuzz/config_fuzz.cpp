// Arbitrary bytes as a configuration file. Whatever the input: no crash, no
// exception, every problem on one line; and a configuration that loads without
// error renders to YAML that loads back, without error, to the same rendering.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "config/config.h"

namespace {

using sonde::config::LoadOptions;
using sonde::config::LoadResult;

// A few variables for `${...}` in the input to find; nothing else is set, so
// the environment layer adds no value of its own.
const char* fuzz_getenv(const char* name) {
    if (std::strcmp(name, "FUZZ_PORT") == 0) return "8080";
    if (std::strcmp(name, "FUZZ_NAME") == 0) return "checkout";
    if (std::strcmp(name, "FUZZ_REGEX") == 0) return "(a|b)*c";
    return nullptr;
}

void check_one_line(const LoadResult& result) {
    for (const auto& problem : result.problems) {
        const std::string line = problem.to_string();
        if (line.find('\n') != std::string::npos || line.find('\r') != std::string::npos ||
            problem.message.empty()) {
            std::abort();
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    LoadOptions options;
    options.getenv = fuzz_getenv;
    // The first byte's low bit picks --strict, so both paths are explored.
    options.strict = size > 0 && (data[0] & 1) != 0;
    const LoadResult first = sonde::config::load_from_text(text, "fuzz.yml", options);
    check_one_line(first);
    (void)sonde::config::inactive_settings(first.config);
    if (!first.ok()) {
        return 0;
    }
    const std::string rendered = sonde::config::render_effective_yaml(first.config);
    const LoadResult second = sonde::config::load_from_text(rendered, "rendered.yml", options);
    check_one_line(second);
    if (!second.ok() || sonde::config::render_effective_yaml(second.config) != rendered) {
        std::abort();
    }
    for (const auto& selector : first.config.discovery.instrument) {
        (void)sonde::config::describe_selector(selector);
    }
    return 0;
}
