// Pure parser of /proc/PID/maps: which files a process has mapped, and where.
// Discovery uses it to find the libssl.so.3 (or OpenSSL-embedding executable)
// a process actually runs, so uprobes go on the file it mapped rather than on
// whatever a path on disk names today. The text is untrusted (paths are
// chosen by other users): bounded work, no exceptions, bad lines skipped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sonde::discovery {

struct MappedRegion {
    uint64_t start = 0, end = 0, offset = 0;
    bool readable = false, writable = false, executable = false, shared = false;
    uint32_t dev_major = 0, dev_minor = 0;
    uint64_t inode = 0;
    // Kept as the kernel printed it: may be empty (anonymous), a pseudo name
    // ("[heap]", "[vdso]"), contain spaces, or end in " (deleted)". The kernel
    // escapes a newline in a path as "\012", so a line is always one region.
    std::string path;
};

// Parses the whole text; malformed lines are skipped and counted in
// *bad_lines (blank lines are neither parsed nor bad). At most max_lines lines
// are looked at: a process can have up to vm.max_map_count (65530 by default)
// mappings.
std::vector<MappedRegion> parse_proc_maps(std::string_view text, size_t* bad_lines = nullptr,
                                          size_t max_lines = 65536);

// The distinct executable file mappings (inode != 0, executable, path starting
// with '/'), one per (dev, inode) — the first executable region of each file —
// in order of first appearance.
std::vector<MappedRegion> executable_files(const std::vector<MappedRegion>& regions);

}  // namespace sonde::discovery
