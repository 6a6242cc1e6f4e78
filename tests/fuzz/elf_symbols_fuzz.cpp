// Arbitrary bytes as an ELF file: the lookup never crashes, reports either an
// error or results (never both), finds only names it was asked for, in their
// order, and every file offset it returns lies inside the input — the offset
// becomes a uprobe position, so one past the file would be a silent failure.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "discovery/elf_symbols.h"

namespace {

constexpr std::array<std::string_view, 5> kNames = {"SSL_read", "SSL_write", "SSL_read_ex",
                                                    "SSL_write_ex", "main"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> bytes(data, size);
    const auto result = sonde::discovery::find_elf_functions(bytes, kNames);
    if (!result.error.empty() &&
        (!result.found.empty() || result.error.find('\n') != std::string::npos)) {
        std::abort();
    }
    size_t next_name = 0;
    for (const auto& function : result.found) {
        if (function.file_offset >= size) {
            std::abort();
        }
        while (next_name < kNames.size() && kNames[next_name] != function.name) {
            ++next_name;
        }
        if (next_name == kNames.size()) {
            std::abort();  // not asked for, or out of order, or reported twice
        }
        ++next_name;
    }
    return 0;
}
