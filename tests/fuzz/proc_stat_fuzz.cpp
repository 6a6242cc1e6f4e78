// Arbitrary bytes as /proc/PID/stat, /proc/stat (and as an fd link target): parsing never
// reads outside the input and comm is always a slice of it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "discovery/proc_parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (const auto stat = sonde::discovery::parse_proc_stat(text)) {
        if (stat->comm.size() + 2 > size || text.find(stat->comm) == std::string_view::npos) {
            std::abort();
        }
    }
    if (const auto cpu = sonde::discovery::parse_host_cpu_times(text)) {
        if (cpu->idle > cpu->total || text.substr(0, 4) != "cpu ") std::abort();
    }
    if (const auto inode = sonde::discovery::parse_socket_link(text)) {
        if (text.substr(0, 8) != "socket:[" || text.back() != ']') {
            std::abort();
        }
    }
    return 0;
}
