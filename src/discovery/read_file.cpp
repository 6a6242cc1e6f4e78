#include "discovery/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "discovery/unique_fd.h"

namespace sonde::discovery {

std::optional<std::string> read_file_capped(const std::string& path, size_t max_bytes,
                                            uint64_t& truncated) {
    // O_NONBLOCK: a fake or hostile tree could put a FIFO where a file should be.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (fd.get() < 0) {
        return std::nullopt;
    }
    std::string out(std::min<size_t>(max_bytes, 4096), '\0');
    size_t used = 0;
    while (true) {
        if (used == out.size()) {
            if (out.size() == max_bytes) {
                char probe;
                ssize_t more;
                do {
                    more = ::read(fd.get(), &probe, 1);
                } while (more < 0 && errno == EINTR);
                if (more > 0) {
                    ++truncated;
                }
                break;
            }
            out.resize(std::min(max_bytes, out.size() * 2));
        }
        const ssize_t got = ::read(fd.get(), out.data() + used, out.size() - used);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return std::nullopt;
        }
        if (got == 0) {
            break;
        }
        used += static_cast<size_t>(got);
    }
    out.resize(used);
    return out;
}

}  // namespace sonde::discovery
