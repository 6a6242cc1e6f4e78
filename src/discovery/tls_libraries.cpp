#include "discovery/tls_libraries.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <optional>
#include <string_view>

#include "discovery/elf_symbols.h"
#include "discovery/proc_maps.h"
#include "discovery/read_file.h"

namespace sonde::discovery {

namespace {

// A JVM or a browser can map thousands of regions; more than this is not a process we can
// afford to read on every library load.
constexpr size_t kMapsMaxBytes = 4u << 20;

constexpr std::array<std::string_view, 5> kFunctions = {
    "SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex", "SSL_free",
};

}  // namespace

TlsLibraryFinder::TlsLibraryFinder(std::string proc_root) : proc_root_(std::move(proc_root)) {}

std::vector<TlsLibrary> TlsLibraryFinder::scan(uint32_t pid) {
    std::vector<TlsLibrary> found;
    const std::string pid_dir = proc_root_ + "/" + std::to_string(pid);
    const auto maps = read_file_capped(pid_dir + "/maps", kMapsMaxBytes, stats_.maps_truncated);
    if (!maps) {
        ++stats_.unreadable;
        return found;
    }
    for (const MappedRegion& region : executable_files(parse_proc_maps(*maps))) {
        const std::pair<uint64_t, uint64_t> id{
            (uint64_t(region.dev_major) << 32) | region.dev_minor, region.inode};
        if (checked_.count(id) != 0) continue;
        constexpr std::string_view kDeleted = " (deleted)";
        if (region.path.size() >= kDeleted.size() &&
            region.path.compare(region.path.size() - kDeleted.size(), kDeleted.size(), kDeleted) ==
                0) {
            // Removed or replaced on disk (a package upgrade under a running service): the
            // path names another file now, or none, but the mapping still reaches the file
            // the process runs. Opening it there needs CAP_CHECKPOINT_RESTORE, and so does
            // the kernel when it resolves this path to attach the uprobes.
            check_file(id, fmt::format("{}/map_files/{:x}-{:x}", pid_dir, region.start, region.end),
                       region.path, found);
            continue;
        }
        // Through the process's root: the path is in its mount namespace (a container's).
        check_file(id, pid_dir + "/root" + region.path, region.path, found);
    }
    return found;
}

std::vector<TlsLibrary> TlsLibraryFinder::scan_system_libraries() {
    std::vector<TlsLibrary> found;
    for (const char* dir :
         {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
          "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}) {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
            const std::string name = entry.path().filename().string();
            if (name.rfind("libssl.so", 0) != 0) continue;
            struct stat st {};
            if (::stat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
            const FileId id{(uint64_t(major(st.st_dev)) << 32) | minor(st.st_dev), st.st_ino};
            if (checked_.count(id) != 0) continue;
            check_file(id, entry.path().string(), entry.path().string(), found);
        }
    }
    return found;
}

void TlsLibraryFinder::check_file(const FileId& id, const std::string& path,
                                  const std::string& mapped_path, std::vector<TlsLibrary>& found) {
    if (checked_.size() < kMaxRememberedFiles) checked_.insert(id);
    ++stats_.files_checked;
    std::string error;
    auto file = MappedFile::open(path, error);
    if (!file) {
        ++stats_.unreadable;
        // Said once per file (it is remembered): without the capability, a deleted library's
        // HTTPS goes untraced and the operator should know why.
        if (path.find("/map_files/") != std::string::npos)
            spdlog::warn(
                "not probing {}: {} (a deleted file's mapping opens only with "
                "CAP_CHECKPOINT_RESTORE); HTTPS through this library is not traced",
                mapped_path, error);
        else
            spdlog::debug("TLS probe scan: {}", error);
        return;
    }
    // The identity /proc/PID/maps gives can differ from the file's own (overlay file systems
    // report the lower device there): probing one file twice would report every call twice.
    if (!opened_.insert({file->device(), file->inode()}).second) return;
    const ElfFunctionLookup lookup = find_elf_functions(file->bytes(), kFunctions);
    if (!lookup.error.empty()) {
        ++stats_.unreadable;
        spdlog::debug("TLS probe scan: {}: {}", mapped_path, lookup.error);
        return;
    }
    if (lookup.found.empty()) return;
    TlsLibrary library;
    library.path = path;
    library.mapped_path = mapped_path;
    for (const ElfFunction& f : lookup.found) {
        if (f.name == "SSL_read") library.ssl_read = f.file_offset;
        if (f.name == "SSL_write") library.ssl_write = f.file_offset;
        if (f.name == "SSL_read_ex") library.ssl_read_ex = f.file_offset;
        if (f.name == "SSL_write_ex") library.ssl_write_ex = f.file_offset;
        if (f.name == "SSL_free") library.ssl_free = f.file_offset;
    }
    // Every OpenSSL since 0.9 and BoringSSL have SSL_read and SSL_write with the same
    // arguments, and the probes read nothing else of the library. Without both, this is not
    // a library we understand: leave it alone (said once: the file is remembered).
    if (library.ssl_read == 0 || library.ssl_write == 0) {
        ++stats_.unsupported;
        spdlog::info("not probing {}: it has some TLS functions but not SSL_read and SSL_write",
                     mapped_path);
        return;
    }
    ++stats_.libraries_found;
    found.push_back(std::move(library));
}

}  // namespace sonde::discovery
