#include "discovery/tls_libraries.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "discovery/elf_symbols.h"

namespace sonde::discovery {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLibssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

// A /proc look-alike whose processes' roots are the real root, so that their maps can name
// real files.
class FakeProc {
public:
    FakeProc() {
        std::string pattern = (fs::temp_directory_path() / "sonde_tls_proc_XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp");
        root_ = pattern;
    }
    ~FakeProc() {
        std::error_code ignored;
        fs::remove_all(root_, ignored);
    }
    void add(uint32_t pid, const std::string& maps) {
        const fs::path dir = fs::path(root_) / std::to_string(pid);
        fs::create_directories(dir);
        std::ofstream(dir / "maps") << maps;
        fs::create_directory_symlink("/", dir / "root");
    }
    const std::string& root() const { return root_; }

private:
    std::string root_;
};

std::string maps_line(const char* perms, uint64_t inode, const std::string& path) {
    return "7f0000000000-7f0000001000 " + std::string(perms) + " 00000000 fe:01 " +
           std::to_string(inode) + "                    " + path + "\n";
}

TEST(TlsLibraryFinder, FindsLibsslOnceWithTheElfOffsets) {
    if (!fs::exists(kLibssl)) GTEST_SKIP() << kLibssl << " not installed";
    constexpr uint64_t inode = 4242;  // maps' numbers; the file itself is what is opened
    FakeProc proc;
    proc.add(10, maps_line("r--p", inode, kLibssl) + maps_line("r-xp", inode, kLibssl) +
                     maps_line("r-xp", 777, "/usr/bin/true") + maps_line("rw-p", 0, "[heap]"));
    proc.add(11, maps_line("r-xp", inode, kLibssl));
    TlsLibraryFinder finder(proc.root());

    const auto found = finder.scan(10);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].mapped_path, kLibssl);
    EXPECT_EQ(found[0].path, proc.root() + "/10/root" + kLibssl);
    std::string error;
    auto file = MappedFile::open(kLibssl, error);
    ASSERT_TRUE(file) << error;
    constexpr std::array<std::string_view, 5> names = {"SSL_read", "SSL_write", "SSL_read_ex",
                                                       "SSL_write_ex", "SSL_free"};
    const auto lookup = find_elf_functions(file->bytes(), names);
    ASSERT_EQ(lookup.found.size(), 5u);
    EXPECT_EQ(found[0].ssl_read, lookup.found[0].file_offset);
    EXPECT_EQ(found[0].ssl_write, lookup.found[1].file_offset);
    EXPECT_EQ(found[0].ssl_read_ex, lookup.found[2].file_offset);
    EXPECT_EQ(found[0].ssl_write_ex, lookup.found[3].file_offset);
    EXPECT_EQ(found[0].ssl_free, lookup.found[4].file_offset);
    EXPECT_NE(found[0].ssl_read, 0u);
    EXPECT_EQ(finder.stats().files_checked, 2u);  // libssl and true; the heap is no file

    // Once per file: not again for this process, nor for another that maps it.
    EXPECT_TRUE(finder.scan(10).empty());
    EXPECT_TRUE(finder.scan(11).empty());
    EXPECT_EQ(finder.stats().files_checked, 2u);
    EXPECT_EQ(finder.stats().libraries_found, 1u);
}

TEST(TlsLibraryFinder, SameFileUnderAnotherDeviceNumberIsNotProbedTwice) {
    if (!fs::exists(kLibssl)) GTEST_SKIP() << kLibssl << " not installed";
    FakeProc proc;
    // Overlay file systems report the lower device in maps: the ids differ, the file is one.
    proc.add(10, maps_line("r-xp", 1, kLibssl));
    proc.add(11, maps_line("r-xp", 2, kLibssl));
    TlsLibraryFinder finder(proc.root());
    EXPECT_EQ(finder.scan(10).size(), 1u);
    EXPECT_TRUE(finder.scan(11).empty());
}

TEST(TlsLibraryFinder, SystemLibsslIsFoundWithoutAnyProcess) {
    if (!fs::exists(kLibssl)) GTEST_SKIP() << kLibssl << " not installed";
    TlsLibraryFinder finder("/nonexistent");
    const auto found = finder.scan_system_libraries();
    ASSERT_EQ(found.size(), 1u);  // libssl.so and libssl.so.3 are one file
    EXPECT_NE(found[0].ssl_read, 0u);
    EXPECT_NE(found[0].ssl_write_ex, 0u);
    EXPECT_TRUE(finder.scan_system_libraries().empty());
}

TEST(TlsLibraryFinder, UnreadableOrMissingInputsAreCountedNotFatal) {
    FakeProc proc;
    // The deleted file has no map_files entry here (as when CAP_CHECKPOINT_RESTORE is missing).
    proc.add(10, maps_line("r-xp", 5, "/nonexistent/libssl.so.3") +
                     maps_line("r-xp", 6, "/usr/lib/libgone.so (deleted)") + "garbage line\n");
    TlsLibraryFinder finder(proc.root());
    EXPECT_TRUE(finder.scan(10).empty());
    EXPECT_TRUE(finder.scan(99).empty());  // no such process
    EXPECT_EQ(finder.stats().unreadable, 3u);
    EXPECT_EQ(finder.stats().libraries_found, 0u);
}

TEST(TlsLibraryFinder, DeletedLibraryIsOpenedThroughTheProcessMapping) {
    if (!fs::exists(kLibssl)) GTEST_SKIP() << kLibssl << " not installed";
    FakeProc proc;
    // Upgraded under a running process: the path names no file (or another one) now; the
    // mapping, /proc/PID/map_files/<start>-<end>, still reaches the file it runs.
    const std::string mapped = "/opt/app/lib/libssl.so.3 (deleted)";
    proc.add(10, maps_line("r-xp", 7, mapped));
    const fs::path map_files = fs::path(proc.root()) / "10" / "map_files";
    fs::create_directories(map_files);
    fs::create_symlink(kLibssl, map_files / "7f0000000000-7f0000001000");
    TlsLibraryFinder finder(proc.root());

    const auto found = finder.scan(10);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].mapped_path, mapped);
    EXPECT_EQ(found[0].path, (map_files / "7f0000000000-7f0000001000").string());
    EXPECT_NE(found[0].ssl_read, 0u);
    EXPECT_EQ(finder.stats().unreadable, 0u);
}

}  // namespace
}  // namespace sonde::discovery
