#include "discovery/elf_symbols.h"

#include <dlfcn.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace sonde::discovery {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, 4> kOpenSslFunctions = {"SSL_read", "SSL_write",
                                                               "SSL_read_ex", "SSL_write_ex"};

// ---- A tiny ELF writer, so malformed cases are a few bytes changed in a
// file that is otherwise valid, rather than hand-counted hex.

struct TestSymbol {
    std::string name;
    uint64_t value = 0;
    uint64_t size = 16;
    uint8_t type = STT_FUNC;
    uint8_t bind = STB_GLOBAL;
    uint16_t shndx = 1;  // .text
};

struct TestSegment {
    uint32_t flags = PF_R | PF_X;
    uint64_t offset = 0;
    uint64_t vaddr = 0;
    uint64_t filesz = 0;
    uint64_t memsz = 0;
};

// Code lives at file offset 0x200 but address 0x10200, so a lookup that
// forgot the translation would be caught.
constexpr uint64_t kTextOffset = 0x200;
constexpr uint64_t kTextAddress = 0x10200;
constexpr uint64_t kDataOffset = 0x300;
constexpr uint64_t kDataAddress = 0x20300;
constexpr uint64_t kSegmentSize = 0x100;

struct TestElfSpec {
    std::vector<TestSegment> segments = {
        {PF_R | PF_X, kTextOffset, kTextAddress, kSegmentSize, kSegmentSize},
        {PF_R | PF_W, kDataOffset, kDataAddress, kSegmentSize, 2 * kSegmentSize}};
    std::vector<TestSymbol> dynsym;
    std::vector<TestSymbol> symtab;
};

// Section indices of what build_elf writes.
constexpr uint16_t kDynsymSection = 2;
constexpr uint16_t kDynstrSection = 3;
constexpr uint16_t kSymtabSection = 4;
constexpr uint16_t kSectionCount = 6;

template <typename T>
T get(const std::vector<uint8_t>& bytes, uint64_t offset) {
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

template <typename T>
void put(std::vector<uint8_t>& bytes, uint64_t offset, const T& value) {
    if (bytes.size() < offset + sizeof(T)) {
        bytes.resize(offset + sizeof(T));
    }
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

void align(std::vector<uint8_t>& bytes, size_t alignment) {
    bytes.resize((bytes.size() + alignment - 1) / alignment * alignment);
}

// Appends a string table and a symbol table (with its leading null symbol);
// returns {strings offset, strings size, symbols offset, symbols size}.
std::array<uint64_t, 4> append_symbols(std::vector<uint8_t>& bytes,
                                       const std::vector<TestSymbol>& symbols) {
    std::string strings(1, '\0');
    std::vector<Elf64_Sym> entries(1, Elf64_Sym{});
    for (const TestSymbol& symbol : symbols) {
        Elf64_Sym entry{};
        entry.st_name = static_cast<uint32_t>(strings.size());
        entry.st_info = ELF64_ST_INFO(symbol.bind, symbol.type);
        entry.st_shndx = symbol.shndx;
        entry.st_value = symbol.value;
        entry.st_size = symbol.size;
        entries.push_back(entry);
        strings += symbol.name;
        strings.push_back('\0');
    }
    const uint64_t strings_offset = bytes.size();
    bytes.insert(bytes.end(), strings.begin(), strings.end());
    align(bytes, 8);
    const uint64_t symbols_offset = bytes.size();
    for (const Elf64_Sym& entry : entries) {
        put(bytes, bytes.size(), entry);
    }
    return {strings_offset, strings.size(), symbols_offset, entries.size() * sizeof(Elf64_Sym)};
}

std::vector<uint8_t> build_elf(const TestElfSpec& spec) {
    std::vector<uint8_t> bytes(kDataOffset + kSegmentSize, 0);
    std::fill(bytes.begin() + kTextOffset, bytes.begin() + kTextOffset + kSegmentSize, 0xCC);

    Elf64_Ehdr header{};
    std::memcpy(header.e_ident, ELFMAG, SELFMAG);
    header.e_ident[EI_CLASS] = ELFCLASS64;
    header.e_ident[EI_DATA] = ELFDATA2LSB;
    header.e_ident[EI_VERSION] = EV_CURRENT;
    header.e_type = ET_DYN;
    header.e_machine = EM_X86_64;
    header.e_version = EV_CURRENT;
    header.e_ehsize = sizeof(Elf64_Ehdr);
    header.e_phoff = sizeof(Elf64_Ehdr);
    header.e_phentsize = sizeof(Elf64_Phdr);
    header.e_phnum = static_cast<uint16_t>(spec.segments.size());
    header.e_shentsize = sizeof(Elf64_Shdr);
    header.e_shnum = kSectionCount;
    for (size_t i = 0; i < spec.segments.size(); ++i) {
        const TestSegment& segment = spec.segments[i];
        Elf64_Phdr phdr{};
        phdr.p_type = PT_LOAD;
        phdr.p_flags = segment.flags;
        phdr.p_offset = segment.offset;
        phdr.p_vaddr = phdr.p_paddr = segment.vaddr;
        phdr.p_filesz = segment.filesz;
        phdr.p_memsz = segment.memsz;
        phdr.p_align = 0x1000;
        put(bytes, header.e_phoff + i * sizeof(Elf64_Phdr), phdr);
    }

    const auto dynamic = append_symbols(bytes, spec.dynsym);
    const auto full = append_symbols(bytes, spec.symtab);
    align(bytes, 8);
    header.e_shoff = bytes.size();

    std::array<Elf64_Shdr, kSectionCount> sections{};
    sections[1].sh_type = SHT_PROGBITS;
    sections[1].sh_flags = SHF_ALLOC | SHF_EXECINSTR;
    sections[1].sh_addr = kTextAddress;
    sections[1].sh_offset = kTextOffset;
    sections[1].sh_size = kSegmentSize;
    const auto symbol_section = [&](uint16_t index, uint32_t type, const auto& layout) {
        sections[index].sh_type = type;
        sections[index].sh_offset = layout[2];
        sections[index].sh_size = layout[3];
        sections[index].sh_entsize = sizeof(Elf64_Sym);
        sections[index].sh_link = index + 1u;
        sections[index + 1].sh_type = SHT_STRTAB;
        sections[index + 1].sh_offset = layout[0];
        sections[index + 1].sh_size = layout[1];
    };
    symbol_section(kDynsymSection, SHT_DYNSYM, dynamic);
    symbol_section(kSymtabSection, SHT_SYMTAB, full);
    for (const Elf64_Shdr& section : sections) {
        put(bytes, bytes.size(), section);
    }
    put(bytes, 0, header);
    return bytes;
}

// Rewrites one structure of a built file in place.
template <typename T>
void patch(std::vector<uint8_t>& bytes, uint64_t offset, const std::function<void(T&)>& change) {
    T value = get<T>(bytes, offset);
    change(value);
    put(bytes, offset, value);
}
void patch_header(std::vector<uint8_t>& bytes, const std::function<void(Elf64_Ehdr&)>& change) {
    patch<Elf64_Ehdr>(bytes, 0, change);
}
void patch_section(std::vector<uint8_t>& bytes, uint16_t index,
                   const std::function<void(Elf64_Shdr&)>& change) {
    const auto shoff = get<Elf64_Ehdr>(bytes, 0).e_shoff;
    patch<Elf64_Shdr>(bytes, shoff + index * sizeof(Elf64_Shdr), change);
}
// `symbol` counts from 1 for the first TestSymbol (0 is the null symbol).
void patch_symbol(std::vector<uint8_t>& bytes, uint16_t section, size_t symbol,
                  const std::function<void(Elf64_Sym&)>& change) {
    const auto shoff = get<Elf64_Ehdr>(bytes, 0).e_shoff;
    const auto table = get<Elf64_Shdr>(bytes, shoff + section * sizeof(Elf64_Shdr));
    patch<Elf64_Sym>(bytes, table.sh_offset + symbol * sizeof(Elf64_Sym), change);
}

// "name@address+offset" per function, so a failure shows every field at once.
std::vector<std::string> describe(const ElfFunctionLookup& lookup) {
    std::vector<std::string> out;
    for (const ElfFunction& function : lookup.found) {
        std::ostringstream line;
        line << function.name << "@0x" << std::hex << function.address << "+0x"
             << function.file_offset << "/" << std::dec << function.size;
        out.push_back(line.str());
    }
    return out;
}

ElfFunctionLookup lookup(const std::vector<uint8_t>& bytes,
                         std::vector<std::string_view> names = {"SSL_read", "SSL_write",
                                                                "ssl3_read_bytes"}) {
    return find_elf_functions(bytes, names);
}

TestElfSpec openssl_like_spec() {
    TestElfSpec spec;
    spec.dynsym = {{"SSL_read", kTextAddress + 0x10, 0x20}, {"SSL_write", kTextAddress + 0x40}};
    spec.symtab = {{"ssl3_read_bytes", kTextAddress + 0x80, 0x30}};
    return spec;
}

TEST(ElfSymbols, FindsDynamicAndStaticFunctionsWithFileOffsets) {
    const auto result = lookup(build_elf(openssl_like_spec()));
    EXPECT_EQ(result.error, "");
    EXPECT_EQ(describe(result),
              (std::vector<std::string>{"SSL_read@0x10210+0x210/32", "SSL_write@0x10240+0x240/16",
                                        "ssl3_read_bytes@0x10280+0x280/48"}));
}

TEST(ElfSymbols, ResultsFollowTheOrderOfNamesAndSkipDuplicates) {
    const auto bytes = build_elf(openssl_like_spec());
    const auto result = find_elf_functions(
        bytes, std::vector<std::string_view>{"SSL_write", "missing", "", "SSL_read", "SSL_write"});
    EXPECT_EQ(result.error, "");
    EXPECT_EQ(describe(result), (std::vector<std::string>{"SSL_write@0x10240+0x240/16",
                                                          "SSL_read@0x10210+0x210/32"}));
}

// Each case builds a small valid file, changes it, and states what the lookup
// of {SSL_read, SSL_write, ssl3_read_bytes} must give.
struct SyntheticCase {
    const char* name;
    std::function<void(TestElfSpec&)> change_spec;
    std::function<void(std::vector<uint8_t>&)> change_bytes;
    std::string error_contains;  // "" = no error expected
    std::vector<std::string> found;
};

const std::vector<SyntheticCase>& synthetic_cases() {
    static const std::vector<SyntheticCase> cases = {
        {"unchanged", nullptr, nullptr, "", {"SSL_read", "SSL_write", "ssl3_read_bytes"}},
        {"empty input", nullptr, [](auto& b) { b.clear(); }, "not an ELF file", {}},
        {"identification only",
         nullptr,
         [](auto& b) { b.resize(EI_NIDENT); },
         "truncated ELF header",
         {}},
        {"header cut short", nullptr, [](auto& b) { b.resize(40); }, "truncated ELF header", {}},
        {"not ELF bytes",
         nullptr,
         [](auto& b) {
             b.assign({'#', '!', '/', 'b', 'i', 'n', '/', 's', 'h', '\n'});
         },
         "not an ELF file",
         {}},
        {"32-bit class",
         nullptr,
         [](auto& b) { b[EI_CLASS] = ELFCLASS32; },
         "not a 64-bit ELF",
         {}},
        {"big-endian",
         nullptr,
         [](auto& b) { b[EI_DATA] = ELFDATA2MSB; },
         "not a little-endian",
         {}},
        {"relocatable object",
         nullptr,
         [](auto& b) { patch_header(b, [](Elf64_Ehdr& h) { h.e_type = ET_REL; }); },
         "neither ET_EXEC nor ET_DYN",
         {}},
        {"i386 machine",
         nullptr,
         [](auto& b) { patch_header(b, [](Elf64_Ehdr& h) { h.e_machine = EM_386; }); },
         "unsupported ELF machine 3",
         {}},
        {"aarch64 machine",
         nullptr,
         [](auto& b) { patch_header(b, [](Elf64_Ehdr& h) { h.e_machine = EM_AARCH64; }); },
         "",
         {"SSL_read", "SSL_write", "ssl3_read_bytes"}},
        {"e_shoff past the end",
         nullptr,
         [](auto& b) { patch_header(b, [&](Elf64_Ehdr& h) { h.e_shoff = b.size() + 8; }); },
         "section headers outside the file",
         {}},
        {"e_shoff near 2^64",
         nullptr,
         [](auto& b) { patch_header(b, [](Elf64_Ehdr& h) { h.e_shoff = ~uint64_t{0} - 8; }); },
         "section headers outside the file",
         {}},
        {"section table cut short",
         nullptr,
         [](auto& b) { b.resize(b.size() - 10); },
         "section headers outside the file",
         {}},
        {"e_shentsize wrong",
         nullptr,
         [](auto& b) { patch_header(b, [](Elf64_Ehdr& h) { h.e_shentsize = 40; }); },
         "unexpected section header size",
         {}},
        {"e_phoff past the end",
         nullptr,
         [](auto& b) { patch_header(b, [&](Elf64_Ehdr& h) { h.e_phoff = b.size(); }); },
         "program headers outside the file",
         {}},
        {"e_phentsize wrong",
         nullptr,
         [](auto& b) { patch_header(b, [](Elf64_Ehdr& h) { h.e_phentsize = 32; }); },
         "unexpected program header size",
         {}},
        {"no program headers",
         nullptr,
         [](auto& b) { patch_header(b, [](Elf64_Ehdr& h) { h.e_phnum = 0; }); },
         "",
         {}},
        {"no section headers (stripped)",
         nullptr,
         [](auto& b) {
             patch_header(b, [](Elf64_Ehdr& h) {
                 h.e_shoff = 0;
                 h.e_shnum = 0;
             });
         },
         "",
         {}},
        {"section count in section 0 (e_shnum = 0)",
         nullptr,
         [](auto& b) {
             patch_header(b, [](Elf64_Ehdr& h) { h.e_shnum = 0; });
             patch_section(b, 0, [](Elf64_Shdr& s) { s.sh_size = kSectionCount; });
         },
         "",
         {"SSL_read", "SSL_write", "ssl3_read_bytes"}},
        {"section count in section 0 too large",
         nullptr,
         [](auto& b) {
             patch_header(b, [](Elf64_Ehdr& h) { h.e_shnum = 0; });
             patch_section(b, 0, [](Elf64_Shdr& s) { s.sh_size = uint64_t{1} << 60; });
         },
         "section headers outside the file",
         {}},
        {"dynsym sh_size near 2^64",
         nullptr,
         [](auto& b) {
             patch_section(b, kDynsymSection, [](Elf64_Shdr& s) { s.sh_size = ~uint64_t{0}; });
         },
         "symbol table outside the file",
         {}},
        {"dynsym sh_offset + sh_size wraps",
         nullptr,
         [](auto& b) {
             patch_section(b, kDynsymSection,
                           [](Elf64_Shdr& s) { s.sh_offset = ~uint64_t{0} - 0x10; });
         },
         "symbol table outside the file",
         {}},
        {"dynsym entry size wrong",
         nullptr,
         [](auto& b) {
             patch_section(b, kDynsymSection, [](Elf64_Shdr& s) { s.sh_entsize = 16; });
         },
         "unexpected symbol size 16",
         {}},
        {"dynsym links past the section table",
         nullptr,
         [](auto& b) { patch_section(b, kDynsymSection, [](Elf64_Shdr& s) { s.sh_link = 99; }); },
         "string table index 99 out of range",
         {}},
        {"dynsym links to a non-STRTAB",
         nullptr,
         [](auto& b) { patch_section(b, kDynsymSection, [](Elf64_Shdr& s) { s.sh_link = 1; }); },
         "is not a STRTAB",
         {}},
        {"dynstr sh_size overflow",
         nullptr,
         [](auto& b) {
             patch_section(b, kDynstrSection, [](Elf64_Shdr& s) { s.sh_size = ~uint64_t{0}; });
         },
         "string table outside the file",
         {}},
        {"symtab damaged after dynsym was fine",
         nullptr,
         [](auto& b) {
             patch_section(b, kSymtabSection, [](Elf64_Shdr& s) { s.sh_offset = 1ull << 40; });
         },
         "section 4: symbol table outside the file",
         {}},
        {"name offset past the string table",
         nullptr,
         [](auto& b) {
             patch_symbol(b, kDynsymSection, 1, [](Elf64_Sym& s) { s.st_name = 0x7fff0000; });
         },
         "",
         {"SSL_write", "ssl3_read_bytes"}},
        {"name without NUL at the end of the string table",
         nullptr,
         [](auto& b) {
             // Cut .dynstr just before SSL_write's terminator.
             patch_section(b, kDynstrSection, [](Elf64_Shdr& s) { s.sh_size -= 1; });
         },
         "",
         {"SSL_read", "ssl3_read_bytes"}},
        {"OBJECT, not FUNC",
         [](TestElfSpec& s) { s.dynsym[0].type = STT_OBJECT; },
         nullptr,
         "",
         {"SSL_write", "ssl3_read_bytes"}},
        {"GNU IFUNC",
         [](TestElfSpec& s) { s.dynsym[0].type = STT_GNU_IFUNC; },
         nullptr,
         "",
         {"SSL_write", "ssl3_read_bytes"}},
        {"undefined (imported) symbol",
         [](TestElfSpec& s) { s.dynsym[1].shndx = SHN_UNDEF; },
         nullptr,
         "",
         {"SSL_read", "ssl3_read_bytes"}},
        {"symbol in a non-executable segment",
         [](TestElfSpec& s) { s.dynsym[0].value = kDataAddress + 0x10; },
         nullptr,
         "",
         {"SSL_write", "ssl3_read_bytes"}},
        {"symbol in memsz but past filesz",
         [](TestElfSpec& s) {
             s.segments[0].memsz = 2 * kSegmentSize;
             s.dynsym[0].value = kTextAddress + kSegmentSize + 0x10;
         },
         nullptr,
         "",
         {"SSL_write", "ssl3_read_bytes"}},
        {"symbol below every segment",
         [](TestElfSpec& s) { s.dynsym[0].value = 0x10; },
         nullptr,
         "",
         {"SSL_write", "ssl3_read_bytes"}},
        {"executable segment placed past the end of the file",
         [](TestElfSpec& s) { s.segments[0].offset = 1ull << 32; },
         nullptr,
         "",
         {}},
        {"too many executable segments",
         [](TestElfSpec& s) {
             s.segments.assign(65, TestSegment{PF_R | PF_X, kTextOffset, kTextAddress, kSegmentSize,
                                               kSegmentSize});
         },
         nullptr,
         "more than 64 executable segments",
         {}},
    };
    return cases;
}

TEST(ElfSymbols, SyntheticFilesTable) {
    for (const SyntheticCase& c : synthetic_cases()) {
        SCOPED_TRACE(c.name);
        TestElfSpec spec = openssl_like_spec();
        if (c.change_spec) {
            c.change_spec(spec);
        }
        std::vector<uint8_t> bytes = build_elf(spec);
        if (c.change_bytes) {
            c.change_bytes(bytes);
        }
        const auto result = lookup(bytes);
        if (c.error_contains.empty()) {
            EXPECT_EQ(result.error, "");
        } else {
            EXPECT_NE(result.error.find(c.error_contains), std::string::npos) << result.error;
            EXPECT_EQ(result.error.find('\n'), std::string::npos);
        }
        std::vector<std::string> names;
        for (const ElfFunction& function : result.found) {
            names.push_back(function.name);
            EXPECT_LT(function.file_offset, bytes.size());
        }
        EXPECT_EQ(names, c.found);
    }
}

TEST(ElfSymbols, DynsymWinsOverSymtab) {
    TestElfSpec spec = openssl_like_spec();
    spec.symtab.push_back({"SSL_read", kTextAddress + 0xA0});
    EXPECT_EQ(describe(lookup(build_elf(spec), {"SSL_read"})),
              std::vector<std::string>{"SSL_read@0x10210+0x210/32"});
}

TEST(ElfSymbols, GlobalWinsOverLocalOfTheSameName) {
    TestElfSpec spec;
    spec.symtab = {{"helper", kTextAddress + 0x10, 8, STT_FUNC, STB_LOCAL},
                   {"helper", kTextAddress + 0x20, 8, STT_FUNC, STB_WEAK},
                   {"helper", kTextAddress + 0x30, 8, STT_FUNC, STB_GLOBAL}};
    EXPECT_EQ(describe(lookup(build_elf(spec), {"helper"})),
              std::vector<std::string>{"helper@0x10220+0x220/8"});

    spec.symtab.resize(1);  // only the local one: still better than nothing
    EXPECT_EQ(describe(lookup(build_elf(spec), {"helper"})),
              std::vector<std::string>{"helper@0x10210+0x210/8"});
}

TEST(ElfSymbols, NamesMatchWholeNotByPrefix) {
    TestElfSpec spec;
    spec.dynsym = {{"SSL_read_ex", kTextAddress + 0x10}, {"SSL_rea", kTextAddress + 0x20}};
    EXPECT_TRUE(lookup(build_elf(spec), {"SSL_read"}).found.empty());
    EXPECT_EQ(describe(lookup(build_elf(spec), {"SSL_read_ex"})),
              std::vector<std::string>{"SSL_read_ex@0x10210+0x210/16"});
}

TEST(ElfSymbols, ScansAtMostTheSymbolCapPerTable) {
    // One symbol past the cap is never looked at, one inside it is.
    TestElfSpec spec;
    spec.dynsym.resize(kMaxElfSymbolsPerTable, TestSymbol{"filler", kTextAddress, 1, STT_OBJECT});
    spec.dynsym[kMaxElfSymbolsPerTable - 2] = {"inside", kTextAddress + 0x10};
    spec.dynsym[kMaxElfSymbolsPerTable - 1] = {"outside", kTextAddress + 0x20};
    // Index 0 is the null symbol, so "outside" is the 1'000'001st entry.
    const auto result = lookup(build_elf(spec), {"inside", "outside"});
    EXPECT_EQ(result.error, "");
    EXPECT_EQ(describe(result), std::vector<std::string>{"inside@0x10210+0x210/16"});
}

TEST(ElfSymbols, CorpusSeedHoldsSslRead) {
    // The fuzzer's hand-made seed must stay a valid file with a hit, or the
    // fuzzer would only ever explore the error paths.
    const std::string path =
        std::string(SONDE_SOURCE_DIR) + "/tests/fuzz/corpus/elf_symbols/minimal_ssl_read.elf";
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in) << path;
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    const auto result = lookup(bytes, {"SSL_read"});
    EXPECT_EQ(result.error, "");
    ASSERT_EQ(result.found.size(), 1u);
    EXPECT_EQ(result.found[0].name, "SSL_read");
}

// ---- Real files on this machine, checked against independent sources.

struct ReadelfSymbol {
    uint64_t value = 0;
    uint64_t size = 0;
};

struct ReadelfSegment {
    uint64_t offset = 0, vaddr = 0, filesz = 0;
};

std::string run_command(const std::string& command) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
    std::string out;
    if (!pipe) {
        return out;
    }
    std::array<char, 65536> chunk;
    size_t n;
    while ((n = std::fread(chunk.data(), 1, chunk.size(), pipe.get())) > 0) {
        out.append(chunk.data(), n);
    }
    return out;
}

uint64_t parse_readelf_number(const std::string& text, int base) {
    if (text.rfind("0x", 0) == 0) {
        return std::stoull(text.substr(2), nullptr, 16);
    }
    return std::stoull(text, nullptr, base);
}

// Defined FUNC symbols of .dynsym by base name, as `readelf --dyn-syms` prints them.
std::map<std::string, ReadelfSymbol> readelf_dynamic_functions(const std::string& path) {
    std::map<std::string, ReadelfSymbol> out;
    std::istringstream lines(run_command("readelf -W --dyn-syms " + path + " 2>/dev/null"));
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream fields(line);
        std::string num, value, size, type, bind, visibility, ndx, name;
        if (!(fields >> num >> value >> size >> type >> bind >> visibility >> ndx >> name) ||
            num.back() != ':' || type != "FUNC" || ndx == "UND") {
            continue;
        }
        name = name.substr(0, name.find('@'));
        out.emplace(name,
                    ReadelfSymbol{parse_readelf_number(value, 16), parse_readelf_number(size, 10)});
    }
    return out;
}

// Executable PT_LOADs as `readelf -l` prints them ("LOAD off vaddr paddr filesz memsz R E align").
std::vector<ReadelfSegment> readelf_executable_segments(const std::string& path) {
    std::vector<ReadelfSegment> out;
    std::istringstream lines(run_command("readelf -lW " + path + " 2>/dev/null"));
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream fields(line);
        std::string type, offset, vaddr, paddr, filesz, memsz;
        if (!(fields >> type >> offset >> vaddr >> paddr >> filesz >> memsz) || type != "LOAD") {
            continue;
        }
        // The flags are one to three tokens ("R E", "RWE"), then the alignment.
        std::vector<std::string> rest;
        for (std::string token; fields >> token;) {
            rest.push_back(token);
        }
        const auto executable = [](const std::string& flag) {
            return flag.find('E') != std::string::npos;
        };
        if (rest.empty() || std::none_of(rest.begin(), rest.end() - 1, executable)) {
            continue;
        }
        out.push_back({parse_readelf_number(offset, 16), parse_readelf_number(vaddr, 16),
                       parse_readelf_number(filesz, 16)});
    }
    return out;
}

// Checks every OpenSSL function is found with readelf's value and size, and
// with the file offset readelf's program headers give.
void expect_matches_readelf(const std::string& path, const ElfFunctionLookup& result,
                            uint64_t file_size) {
    const auto symbols = readelf_dynamic_functions(path);
    const auto segments = readelf_executable_segments(path);
    if (symbols.empty() || segments.empty()) {
        GTEST_SKIP() << "readelf is not available to cross-check " << path;
    }
    ASSERT_EQ(result.found.size(), kOpenSslFunctions.size()) << path;
    for (size_t i = 0; i < kOpenSslFunctions.size(); ++i) {
        const ElfFunction& function = result.found[i];
        SCOPED_TRACE(function.name);
        EXPECT_EQ(function.name, kOpenSslFunctions[i]);
        const auto expected = symbols.find(function.name);
        ASSERT_NE(expected, symbols.end());
        EXPECT_EQ(function.address, expected->second.value);
        EXPECT_EQ(function.size, expected->second.size);
        std::optional<uint64_t> offset;
        for (const ReadelfSegment& segment : segments) {
            if (function.address >= segment.vaddr &&
                function.address < segment.vaddr + segment.filesz) {
                offset = segment.offset + (function.address - segment.vaddr);
                break;
            }
        }
        ASSERT_TRUE(offset.has_value());
        EXPECT_EQ(function.file_offset, *offset);
        EXPECT_LT(function.file_offset, file_size);
    }
}

const std::string kLibssl = "/lib/x86_64-linux-gnu/libssl.so.3";
const std::string kNode = "/usr/bin/node";

TEST(ElfSymbols, LibsslExportsTheOpenSslFunctions) {
    if (!fs::exists(kLibssl)) {
        GTEST_SKIP() << kLibssl << " is not installed";
    }
    std::string error;
    const auto file = MappedFile::open(kLibssl, error);
    ASSERT_TRUE(file.has_value()) << error;
    const auto result = find_elf_functions(file->bytes(), kOpenSslFunctions);
    EXPECT_EQ(result.error, "");
    expect_matches_readelf(kLibssl, result, file->bytes().size());
}

TEST(ElfSymbols, LibsslOffsetsHoldTheCodeTheDynamicLinkerLoads) {
    // Independent of readelf: load the library, and the code at each symbol's
    // address in memory must be the bytes at file_offset in the file.
    if (!fs::exists(kLibssl)) {
        GTEST_SKIP() << kLibssl << " is not installed";
    }
    std::unique_ptr<void, int (*)(void*)> handle(::dlopen(kLibssl.c_str(), RTLD_NOW | RTLD_LOCAL),
                                                 ::dlclose);
    ASSERT_TRUE(handle) << ::dlerror();
    std::string error;
    const auto file = MappedFile::open(kLibssl, error);
    ASSERT_TRUE(file.has_value()) << error;
    const auto result = find_elf_functions(file->bytes(), kOpenSslFunctions);
    ASSERT_EQ(result.found.size(), kOpenSslFunctions.size()) << result.error;
    for (const ElfFunction& function : result.found) {
        SCOPED_TRACE(function.name);
        const void* code = ::dlsym(handle.get(), function.name.c_str());
        ASSERT_NE(code, nullptr);
        Dl_info info{};
        ASSERT_NE(::dladdr(code, &info), 0);
        struct stat loaded {};
        ASSERT_EQ(::stat(info.dli_fname, &loaded), 0);
        ASSERT_EQ(loaded.st_dev, file->device());
        ASSERT_EQ(loaded.st_ino, file->inode());
        EXPECT_EQ(static_cast<const uint8_t*>(code) - static_cast<const uint8_t*>(info.dli_fbase),
                  static_cast<ptrdiff_t>(function.address));
        constexpr size_t kCompared = 16;
        ASSERT_LE(function.file_offset + kCompared, file->bytes().size());
        EXPECT_EQ(std::memcmp(code, file->bytes().data() + function.file_offset, kCompared), 0);
    }
}

TEST(ElfSymbols, NodeEmbedsOpenSslInItsDynamicSymbols) {
    if (!fs::exists(kNode)) {
        GTEST_SKIP() << kNode << " is not installed";
    }
    std::string error;
    const auto file = MappedFile::open(kNode, error);
    ASSERT_TRUE(file.has_value()) << error;
    const auto result = find_elf_functions(file->bytes(), kOpenSslFunctions);
    EXPECT_EQ(result.error, "");
    // Node's code is not at file offset == address: the translation matters.
    ASSERT_FALSE(result.found.empty());
    EXPECT_NE(result.found[0].file_offset, result.found[0].address);
    expect_matches_readelf(kNode, result, file->bytes().size());
}

TEST(ElfSymbols, BinaryWithoutOpenSslFindsNothingWithoutError) {
    std::string error;
    const auto file = MappedFile::open("/usr/bin/true", error);
    ASSERT_TRUE(file.has_value()) << error;
    const auto result = find_elf_functions(file->bytes(), kOpenSslFunctions);
    EXPECT_EQ(result.error, "");
    EXPECT_TRUE(result.found.empty());
}

// ---- MappedFile

TEST(ElfSymbolsMappedFile, MissingFileIsACleanError) {
    std::string error;
    const auto file = MappedFile::open("/nonexistent/sonde/libssl.so.3", error);
    EXPECT_FALSE(file.has_value());
    EXPECT_EQ(error, std::string("/nonexistent/sonde/libssl.so.3: ") + std::strerror(ENOENT));
}

TEST(ElfSymbolsMappedFile, MapsARealExecutableWithItsIdentity) {
    std::string error;
    const auto file = MappedFile::open("/usr/bin/true", error);
    ASSERT_TRUE(file.has_value()) << error;
    struct stat st {};
    ASSERT_EQ(::stat("/usr/bin/true", &st), 0);
    ASSERT_EQ(file->bytes().size(), static_cast<size_t>(st.st_size));
    EXPECT_EQ(std::memcmp(file->bytes().data(), ELFMAG, SELFMAG), 0);
    EXPECT_EQ(file->device(), st.st_dev);
    EXPECT_EQ(file->inode(), st.st_ino);
}

TEST(ElfSymbolsMappedFile, MovedMappingStaysValid) {
    std::string error;
    auto file = MappedFile::open("/usr/bin/true", error);
    ASSERT_TRUE(file.has_value()) << error;
    const uint8_t* data = file->bytes().data();
    MappedFile moved = std::move(*file);
    EXPECT_EQ(moved.bytes().data(), data);
    EXPECT_TRUE(file->bytes().empty());  // NOLINT(bugprone-use-after-move): checking the move
    auto other = MappedFile::open("/usr/bin/true", error);
    ASSERT_TRUE(other.has_value()) << error;
    moved = std::move(*other);  // unmaps the first mapping
    EXPECT_EQ(std::memcmp(moved.bytes().data(), ELFMAG, SELFMAG), 0);
}

class ElfSymbolsMappedFileTempDir : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "sonde-mapped-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(ElfSymbolsMappedFileTempDir, RefusesWhatIsNotARegularFile) {
    std::string error;
    EXPECT_FALSE(MappedFile::open(dir_.string(), error).has_value());
    EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;

    // A FIFO with no writer: opening must neither block nor map it.
    const std::string fifo = (dir_ / "fifo").string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    error.clear();
    EXPECT_FALSE(MappedFile::open(fifo, error).has_value());
    EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
}

TEST_F(ElfSymbolsMappedFileTempDir, RefusesFilesOverTheLimitAndMapsEmptyOnes) {
    const std::string big = (dir_ / "big").string();
    std::ofstream(big) << std::string(4097, 'x');
    std::string error;
    EXPECT_FALSE(MappedFile::open(big, error, 4096).has_value());
    EXPECT_NE(error.find("4097 bytes, more than the limit of 4096"), std::string::npos) << error;
    EXPECT_TRUE(MappedFile::open(big, error, 4097).has_value());

    const std::string empty = (dir_ / "empty").string();
    std::ofstream{empty};
    const auto file = MappedFile::open(empty, error);
    ASSERT_TRUE(file.has_value()) << error;
    EXPECT_TRUE(file->bytes().empty());
    EXPECT_EQ(find_elf_functions(file->bytes(), kOpenSslFunctions).error, "not an ELF file");
}

}  // namespace
}  // namespace sonde::discovery
