#include "discovery/elf_symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "discovery/unique_fd.h"

namespace sonde::discovery {

namespace {

// The structs of <elf.h> are read with memcpy, which only yields the file's
// little-endian values on a little-endian host. Sonde targets x86-64 and
// arm64 Linux, both little-endian.
static_assert(std::endian::native == std::endian::little);

// The kernel refuses to exec a file whose program headers exceed one page, so
// no real executable has more than 73; shared objects are not bounded by that
// rule, but hundreds would already be absurd. The cap keeps per-symbol address
// translation cheap on hostile input.
constexpr size_t kMaxProgramHeaders = 4096;
constexpr size_t kMaxExecutableSegments = 64;

// Reads a T at `offset` if it lies wholly inside `bytes`. memcpy because the
// buffer has no alignment guarantee (a fuzzer's input, a truncated file).
template <typename T>
std::optional<T> read_at(std::span<const uint8_t> bytes, uint64_t offset) {
    if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) {
        return std::nullopt;
    }
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

// True when [offset, offset + count * entry_size) lies inside a buffer of
// `size` bytes, written so that no product or sum can overflow.
bool table_fits(uint64_t size, uint64_t offset, uint64_t count, uint64_t entry_size) {
    if (offset > size) {
        return false;
    }
    return count == 0 || (size - offset) / entry_size >= count;
}

struct ExecutableSegment {
    uint64_t vaddr = 0;
    uint64_t filesz = 0;
    uint64_t offset = 0;
};

struct ElfLayout {
    std::vector<ExecutableSegment> segments;
    // The section header table, already checked to lie inside the buffer;
    // headers are read on demand rather than copied, since a hostile file can
    // claim millions of them.
    uint64_t section_offset = 0;
    uint64_t section_count = 0;  // 0 when the file has no section headers

    Elf64_Shdr section(std::span<const uint8_t> elf, uint64_t index) const {
        return read_at<Elf64_Shdr>(elf, section_offset + index * sizeof(Elf64_Shdr))
            .value_or(Elf64_Shdr{});
    }
};

// Checks the identification and header, then collects the executable
// segments and the section headers. Returns an error message, empty on success.
std::string read_layout(std::span<const uint8_t> elf, ElfLayout& layout) {
    if (elf.size() < EI_NIDENT || std::memcmp(elf.data(), ELFMAG, SELFMAG) != 0) {
        return "not an ELF file";
    }
    if (elf[EI_CLASS] != ELFCLASS64) {
        return "not a 64-bit ELF (class " + std::to_string(elf[EI_CLASS]) + ")";
    }
    if (elf[EI_DATA] != ELFDATA2LSB) {
        return "not a little-endian ELF (data encoding " + std::to_string(elf[EI_DATA]) + ")";
    }
    const auto header = read_at<Elf64_Ehdr>(elf, 0);
    if (!header) {
        return "truncated ELF header";
    }
    if (header->e_type != ET_EXEC && header->e_type != ET_DYN) {
        return "ELF type " + std::to_string(header->e_type) + " is neither ET_EXEC nor ET_DYN";
    }
    if (header->e_machine != EM_X86_64 && header->e_machine != EM_AARCH64) {
        return "unsupported ELF machine " + std::to_string(header->e_machine);
    }

    // Section 0 holds the real counts when they overflow the 16-bit header
    // fields (e_shnum == 0 / e_phnum == PN_XNUM), so read it first.
    std::optional<Elf64_Shdr> section_zero;
    if (header->e_shoff != 0) {
        if (header->e_shentsize != sizeof(Elf64_Shdr)) {
            return "unexpected section header size " + std::to_string(header->e_shentsize);
        }
        section_zero = read_at<Elf64_Shdr>(elf, header->e_shoff);
        if (!section_zero) {
            return "section headers outside the file";
        }
    }

    uint64_t section_count = header->e_shnum;
    if (section_zero && section_count == 0) {
        section_count = section_zero->sh_size;
    }
    if (section_zero) {
        if (!table_fits(elf.size(), header->e_shoff, section_count, sizeof(Elf64_Shdr))) {
            return "section headers outside the file";
        }
        layout.section_offset = header->e_shoff;
        layout.section_count = section_count;
    }

    uint64_t segment_count = header->e_phnum;
    if (segment_count == PN_XNUM && section_zero) {
        segment_count = section_zero->sh_info;
    }
    if (segment_count == 0) {
        return "";  // nothing is loaded, so no symbol can be translated
    }
    if (header->e_phentsize != sizeof(Elf64_Phdr)) {
        return "unexpected program header size " + std::to_string(header->e_phentsize);
    }
    if (segment_count > kMaxProgramHeaders) {
        return std::to_string(segment_count) + " program headers, more than " +
               std::to_string(kMaxProgramHeaders);
    }
    if (!table_fits(elf.size(), header->e_phoff, segment_count, sizeof(Elf64_Phdr))) {
        return "program headers outside the file";
    }
    for (uint64_t i = 0; i < segment_count; ++i) {
        const auto phdr = read_at<Elf64_Phdr>(elf, header->e_phoff + i * sizeof(Elf64_Phdr));
        if (!phdr) {
            return "program headers outside the file";  // table_fits said otherwise: a bug
        }
        if (phdr->p_type != PT_LOAD || (phdr->p_flags & PF_X) == 0 || phdr->p_filesz == 0) {
            continue;
        }
        if (layout.segments.size() == kMaxExecutableSegments) {
            return "more than " + std::to_string(kMaxExecutableSegments) + " executable segments";
        }
        layout.segments.push_back({phdr->p_vaddr, phdr->p_filesz, phdr->p_offset});
    }
    return "";
}

// The file offset of the code at `address`, if an executable segment holds it
// in its file image and that offset lies inside the buffer. The first segment
// in header order wins when hostile headers overlap.
std::optional<uint64_t> file_offset_of(const ElfLayout& layout, uint64_t address,
                                       uint64_t file_size) {
    for (const ExecutableSegment& segment : layout.segments) {
        if (address < segment.vaddr || address - segment.vaddr >= segment.filesz) {
            continue;
        }
        const uint64_t delta = address - segment.vaddr;
        if (segment.offset > file_size || file_size - segment.offset <= delta) {
            return std::nullopt;
        }
        return segment.offset + delta;
    }
    return std::nullopt;
}

struct Candidate {
    bool present = false;
    bool local = false;
    ElfFunction function;
};

// Scans one symbol table (section `index`, of type SHT_DYNSYM or SHT_SYMTAB)
// for the wanted names not yet found. Returns an error message, empty on success.
std::string scan_symbol_table(std::span<const uint8_t> elf, const ElfLayout& layout, uint64_t index,
                              const std::unordered_map<std::string_view, size_t>& wanted,
                              size_t longest_name, std::vector<Candidate>& candidates) {
    const Elf64_Shdr table = layout.section(elf, index);
    const std::string where = "section " + std::to_string(index);
    if (table.sh_entsize != sizeof(Elf64_Sym)) {
        return where + ": unexpected symbol size " + std::to_string(table.sh_entsize);
    }
    const uint64_t symbol_count = table.sh_size / sizeof(Elf64_Sym);
    if (!table_fits(elf.size(), table.sh_offset, symbol_count, sizeof(Elf64_Sym))) {
        return where + ": symbol table outside the file";
    }
    if (table.sh_link == SHN_UNDEF || table.sh_link >= layout.section_count) {
        return where + ": string table index " + std::to_string(table.sh_link) + " out of range";
    }
    const Elf64_Shdr strings = layout.section(elf, table.sh_link);
    if (strings.sh_type != SHT_STRTAB) {
        return where + ": linked section " + std::to_string(table.sh_link) + " is not a STRTAB";
    }
    if (!table_fits(elf.size(), strings.sh_offset, strings.sh_size, 1)) {
        return where + ": string table outside the file";
    }
    // A view into the buffer: names are compared in place, never copied.
    const std::string_view string_table(
        reinterpret_cast<const char*>(elf.data()) + strings.sh_offset, strings.sh_size);

    const uint64_t scanned = std::min<uint64_t>(symbol_count, kMaxElfSymbolsPerTable);
    for (uint64_t i = 0; i < scanned; ++i) {
        const auto symbol = read_at<Elf64_Sym>(elf, table.sh_offset + i * sizeof(Elf64_Sym));
        if (!symbol) {
            return where + ": symbol table outside the file";  // table_fits said otherwise: a bug
        }
        if (ELF64_ST_TYPE(symbol->st_info) != STT_FUNC || symbol->st_shndx == SHN_UNDEF ||
            symbol->st_name >= string_table.size()) {
            continue;
        }
        // Looking no further than the longest wanted name (plus its NUL) keeps
        // the cost per symbol bounded even when a hostile table has no NULs.
        const std::string_view window = string_table.substr(symbol->st_name, longest_name + 1);
        const size_t nul = window.find('\0');
        if (nul == std::string_view::npos) {
            continue;
        }
        const auto match = wanted.find(window.substr(0, nul));
        if (match == wanted.end()) {
            continue;
        }
        Candidate& candidate = candidates[match->second];
        const bool local = ELF64_ST_BIND(symbol->st_info) == STB_LOCAL;
        if (candidate.present && (local || !candidate.local)) {
            continue;
        }
        const auto offset = file_offset_of(layout, symbol->st_value, elf.size());
        if (!offset) {
            continue;
        }
        candidate.present = true;
        candidate.local = local;
        candidate.function.name = std::string(match->first);
        candidate.function.address = symbol->st_value;
        candidate.function.size = symbol->st_size;
        candidate.function.file_offset = *offset;
    }
    return "";
}

// The first section of `type`, if any.
std::optional<uint64_t> find_section(std::span<const uint8_t> elf, const ElfLayout& layout,
                                     uint32_t type) {
    for (uint64_t i = 0; i < layout.section_count; ++i) {
        if (layout.section(elf, i).sh_type == type) {
            return i;
        }
    }
    return std::nullopt;
}

}  // namespace

ElfFunctionLookup find_elf_functions(std::span<const uint8_t> elf,
                                     std::span<const std::string_view> names) {
    ElfFunctionLookup result;
    ElfLayout layout;
    result.error = read_layout(elf, layout);
    if (!result.error.empty()) {
        return result;
    }

    // Name -> position of its first occurrence in `names`; duplicates and
    // empty names are looked up (and reported) at most once.
    std::unordered_map<std::string_view, size_t> wanted;
    size_t longest_name = 0;
    for (size_t i = 0; i < names.size(); ++i) {
        if (!names[i].empty() && wanted.emplace(names[i], i).second) {
            longest_name = std::max(longest_name, names[i].size());
        }
    }
    std::vector<Candidate> candidates(names.size());

    for (const uint32_t type : {SHT_DYNSYM, SHT_SYMTAB}) {
        if (wanted.empty()) {
            break;  // all found: don't page in Node's 2.6 MB .symtab for nothing
        }
        const auto index = find_section(elf, layout, type);
        if (!index) {
            continue;
        }
        result.error = scan_symbol_table(elf, layout, *index, wanted, longest_name, candidates);
        if (!result.error.empty()) {
            return result;
        }
        // .dynsym is what the dynamic linker resolves, so what it says wins.
        for (const Candidate& candidate : candidates) {
            if (candidate.present) {
                wanted.erase(candidate.function.name);
            }
        }
    }

    for (Candidate& candidate : candidates) {
        if (candidate.present) {
            result.found.push_back(std::move(candidate.function));
        }
    }
    return result;
}

std::optional<MappedFile> MappedFile::open(const std::string& path, std::string& error,
                                           size_t max_bytes) {
    const auto fail = [&](const std::string& reason) {
        error = path + ": " + reason;
        return std::nullopt;
    };
    // O_NONBLOCK: a hostile path may name a FIFO, and opening one for reading
    // would otherwise wait for a writer forever.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (fd.get() < 0) {
        return fail(std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return fail(std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return fail("not a regular file");
    }
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size > max_bytes) {
        return fail(std::to_string(size) + " bytes, more than the limit of " +
                    std::to_string(max_bytes));
    }
    if (size == 0) {
        return MappedFile(nullptr, 0, st.st_dev, st.st_ino);  // mmap rejects length 0
    }
    void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (data == MAP_FAILED) {
        return fail(std::string("mmap: ") + std::strerror(errno));
    }
    return MappedFile(static_cast<const uint8_t*>(data), size, st.st_dev, st.st_ino);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      device_(other.device_),
      inode_(other.inode_) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        unmap();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        device_ = other.device_;
        inode_ = other.inode_;
    }
    return *this;
}

MappedFile::~MappedFile() {
    unmap();
}

void MappedFile::unmap() noexcept {
    if (data_ != nullptr) {
        ::munmap(const_cast<uint8_t*>(data_), size_);
        data_ = nullptr;
        size_ = 0;
    }
}

}  // namespace sonde::discovery
