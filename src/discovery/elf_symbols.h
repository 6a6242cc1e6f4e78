// Function symbols of ELF files, for attaching uprobes (OpenSSL's SSL_read /
// SSL_write in libssl.so.3, or in executables that link OpenSSL statically
// and export it, like Node). The files come from other users' processes, so
// they are untrusted input: every offset and size is checked against the
// buffer, work is bounded, and garbage yields an error string, never a crash
// or an exception.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sonde::discovery {

struct ElfFunction {
    std::string name;
    uint64_t address = 0;      // st_value (virtual address)
    uint64_t size = 0;         // st_size
    uint64_t file_offset = 0;  // where the code lives in the file: what a uprobe is attached at
};

struct ElfFunctionLookup {
    std::vector<ElfFunction> found;  // in the order of `names`, only those found
    std::string error;  // non-empty: not a usable ELF (reason, one line); found is empty
};

// Most symbols scanned in each of .dynsym and .symtab: keeps a hostile file's
// section sizes from turning one lookup into minutes of work. Node, the largest
// binary we target, has about 110'000 in .symtab.
inline constexpr size_t kMaxElfSymbolsPerTable = 1'000'000;

// Looks up `names` among the defined STT_FUNC symbols of .dynsym, then
// .symtab (a name found in .dynsym is not looked up again), of a 64-bit
// little-endian ELF (ET_DYN or ET_EXEC; EM_X86_64 or EM_AARCH64).
//  - STT_GNU_IFUNC symbols are not returned: their address is a resolver, not
//    the function a uprobe should see.
//  - Versioned .dynsym names ("SSL_read@@OPENSSL_3.0.0") match by base name;
//    .gnu.version is ignored, so with several versions of one name the first
//    in the table wins.
//  - Within a table a GLOBAL or WEAK symbol beats a LOCAL one of the same name
//    (a static helper in some other object file must not shadow the export).
//  - file_offset is st_value translated through the executable PT_LOAD that
//    holds it in its file image (p_offset + st_value - p_vaddr); a symbol
//    outside every such segment, or whose offset falls past the buffer, is
//    not returned.
//  - Structural damage (headers, or a symbol table the lookup reads, outside
//    the buffer; wrong entry sizes) is an error; a single symbol with a bad
//    name offset is skipped. .symtab is only read for names .dynsym lacks.
//  - Files without section headers (sstrip'd) find nothing and report no
//    error: their dynamic symbols are only reachable through PT_DYNAMIC,
//    which this function does not read.
ElfFunctionLookup find_elf_functions(std::span<const uint8_t> elf,
                                     std::span<const std::string_view> names);

// A file mapped read-only for parsing: only the pages the parser touches are
// read, which matters for Node's ~100 MB binary where we need a few tables.
// The descriptor is closed once mapped; the mapping keeps the file alive.
//
// Caveat: if another process truncates the file while it is mapped, touching a
// page past the new end raises SIGBUS. The files we map are executables and
// libraries that running processes have mapped too (truncating them would
// crash those processes as well), so we accept the risk rather than copy
// hundreds of megabytes.
class MappedFile {
public:
    // Files larger than max_bytes are refused. Only regular files are mapped
    // (opening a FIFO would block, a device could be endless). An empty file
    // maps to an empty span. On failure returns nullopt and sets `error` to
    // "<path>: <reason>".
    static std::optional<MappedFile> open(const std::string& path, std::string& error,
                                          size_t max_bytes = 512u << 20);

    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();

    std::span<const uint8_t> bytes() const { return {data_, size_}; }
    // st_dev / st_ino: the identity of the file, to avoid parsing one library
    // again for every process that maps it.
    uint64_t device() const { return device_; }
    uint64_t inode() const { return inode_; }

private:
    MappedFile(const uint8_t* data, size_t size, uint64_t device, uint64_t inode)
        : data_(data), size_(size), device_(device), inode_(inode) {}
    void unmap() noexcept;

    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    uint64_t device_ = 0;
    uint64_t inode_ = 0;
};

}  // namespace sonde::discovery
