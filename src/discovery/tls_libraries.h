// Finds the TLS libraries a process has mapped: the system libssl, or an
// executable with OpenSSL/BoringSSL built in that exports its functions (Node).
// Each library file is looked at once, however many processes map it, so the
// uprobes on it are attached once and serve every process.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sonde::discovery {

struct TlsLibrary {
    // Where to open it from here: /proc/PID/root/<mapped path>, or for a file deleted on
    // disk /proc/PID/map_files/<start>-<end> (the process's mapping of it).
    std::string path;
    std::string mapped_path;  // as the process names it
    // File offsets of the probed functions; 0: the library does not have it.
    uint64_t ssl_read = 0;
    uint64_t ssl_write = 0;
    uint64_t ssl_read_ex = 0;  // OpenSSL 1.1.1 and later; Python's ssl module uses only these
    uint64_t ssl_write_ex = 0;
    uint64_t ssl_free = 0;
};

struct TlsLibraryStats {
    uint64_t files_checked = 0;  // distinct executable files looked into
    uint64_t libraries_found = 0;
    uint64_t unsupported = 0;     // some TLS functions, not the set Sonde understands
    uint64_t unreadable = 0;      // maps or files that could not be read or parsed
    uint64_t maps_truncated = 0;  // /proc/PID/maps longer than Sonde reads: the rest unseen
};

class TlsLibraryFinder {
public:
    explicit TlsLibraryFinder(std::string proc_root = "/proc");

    // TLS libraries `pid` maps that no earlier call reported.
    std::vector<TlsLibrary> scan(uint32_t pid);

    // The host's own libssl (the usual library directories), probed before any process needs
    // it: a short-lived client (curl) can finish its first request in less time than it takes
    // to notice it, find its libssl and attach.
    std::vector<TlsLibrary> scan_system_libraries();

    const TlsLibraryStats& stats() const { return stats_; }

private:
    using FileId = std::pair<uint64_t, uint64_t>;  // (major << 32 | minor, inode)
    // Looks into one file not looked into before; appends it to `found` if it is a TLS library.
    void check_file(const FileId& id, const std::string& path, const std::string& mapped_path,
                    std::vector<TlsLibrary>& found);

    std::string proc_root_;
    // (device, inode) of every file looked into, as /proc/PID/maps names them. Bounded:
    // past the cap files are looked into again rather than remembered.
    static constexpr size_t kMaxRememberedFiles = 65536;
    std::set<FileId> checked_;
    std::set<std::pair<uint64_t, uint64_t>> opened_;  // (st_dev, st_ino) of the files looked into
    TlsLibraryStats stats_;
};

}  // namespace sonde::discovery
