// Arbitrary bytes as /proc/PID/maps: every line is parsed, skipped as blank or
// counted as bad; parsed regions are well-formed; executable_files returns a
// de-duplicated subset that satisfies its own filter; the line cap holds.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>
#include <tuple>

#include "discovery/proc_maps.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    size_t bad = 0;
    const auto regions = sonde::discovery::parse_proc_maps(text, &bad);
    if (regions.size() + bad > lines) {
        std::abort();
    }
    for (const auto& region : regions) {
        if (region.end < region.start || region.path.find('\n') != std::string::npos) {
            std::abort();
        }
    }

    std::set<std::tuple<uint32_t, uint32_t, uint64_t>> seen;
    for (const auto& file : sonde::discovery::executable_files(regions)) {
        if (file.inode == 0 || !file.executable || file.path.empty() || file.path[0] != '/' ||
            !seen.emplace(file.dev_major, file.dev_minor, file.inode).second) {
            std::abort();
        }
    }

    size_t capped_bad = 0;
    const auto capped = sonde::discovery::parse_proc_maps(text, &capped_bad, 2);
    if (capped.size() + capped_bad > 2 || capped.size() > regions.size()) {
        std::abort();
    }
    return 0;
}
