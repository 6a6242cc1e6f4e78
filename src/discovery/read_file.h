// Reading /proc files (and other untrusted files) whole but bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace sonde::discovery {

// The file's content up to `max_bytes` (/proc files report size 0, so it reads to EOF);
// a longer file is cut there and counted in `truncated`. nullopt when it cannot be opened or
// read. Opened non-blocking: a fake or hostile tree could put a FIFO where a file should be.
std::optional<std::string> read_file_capped(const std::string& path, size_t max_bytes,
                                            uint64_t& truncated);

}  // namespace sonde::discovery
