#include "discovery/proc_maps.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace sonde::discovery {
namespace {

// Every field of a region on one line, so a failing case shows all of them.
std::string describe(const MappedRegion& r) {
    std::ostringstream out;
    out << std::hex << r.start << "-" << r.end << " " << (r.readable ? 'r' : '-')
        << (r.writable ? 'w' : '-') << (r.executable ? 'x' : '-') << (r.shared ? 's' : 'p') << " "
        << r.offset << " " << r.dev_major << ":" << r.dev_minor << " " << std::dec << r.inode
        << " [" << r.path << "]";
    return out.str();
}

struct MapsLineCase {
    const char* name;
    std::string line;
    std::string expected;  // describe() of the region; "" = the line is bad
};

TEST(ProcMaps, LinesTable) {
    const std::vector<MapsLineCase> cases = {
        {"executable file",
         "7f1c2a000000-7f1c2a021000 r-xp 0001f000 fe:00 333427                     "
         "/usr/lib/x86_64-linux-gnu/libssl.so.3",
         "7f1c2a000000-7f1c2a021000 r-xp 1f000 fe:0 333427 "
         "[/usr/lib/x86_64-linux-gnu/libssl.so.3]"},
        {"anonymous, kernel's trailing blank", "7f1c2a021000-7f1c2a030000 rw-p 00000000 00:00 0 ",
         "7f1c2a021000-7f1c2a030000 rw-p 0 0:0 0 []"},
        {"anonymous, no trailing blank", "7f1c2a021000-7f1c2a030000 rw-p 00000000 00:00 0",
         "7f1c2a021000-7f1c2a030000 rw-p 0 0:0 0 []"},
        {"heap", "55afc4d51000-55afc4f24000 rw-p 00000000 00:00 0                          [heap]",
         "55afc4d51000-55afc4f24000 rw-p 0 0:0 0 [[heap]]"},
        {"vdso", "7fc928911000-7fc928913000 r-xp 00000000 00:00 0                          [vdso]",
         "7fc928911000-7fc928913000 r-xp 0 0:0 0 [[vdso]]"},
        {"vsyscall, top of the address space",
         "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
         "ffffffffff600000-ffffffffff601000 --xp 0 0:0 0 [[vsyscall]]"},
        {"deleted file kept as is",
         "7f0000000000-7f0000021000 r-xp 00002000 fd:01 98765   /usr/lib/libssl.so.3 (deleted)",
         "7f0000000000-7f0000021000 r-xp 2000 fd:1 98765 [/usr/lib/libssl.so.3 (deleted)]"},
        {"path with spaces, inner and trailing kept",
         "00400000-00401000 r-xp 00000000 08:01 1234      /opt/my app/bin/server v2  ",
         "400000-401000 r-xp 0 8:1 1234 [/opt/my app/bin/server v2  ]"},
        {"shared mapping", "7f0000100000-7f0000101000 r--s 00000000 00:01 4242  /dev/shm/x",
         "7f0000100000-7f0000101000 r--s 0 0:1 4242 [/dev/shm/x]"},
        {"large device numbers", "1000-2000 r-xp 00000000 fff:fffff 18446744073709551615 /x",
         "1000-2000 r-xp 0 fff:fffff 18446744073709551615 [/x]"},
        {"tab separated", "1000-2000\tr-xp\t0\t08:01\t7\t/x", "1000-2000 r-xp 0 8:1 7 [/x]"},
        {"empty region", "1000-1000 ---p 00000000 00:00 0", "1000-1000 ---p 0 0:0 0 []"},
        {"start past 2^64", "10000000000000000-10000000000000001 r-xp 00000000 08:01 1 /x", ""},
        {"offset past 2^64", "1000-2000 r-xp 10000000000000000 08:01 1 /x", ""},
        {"inode past 2^64", "1000-2000 r-xp 0 08:01 18446744073709551616 /x", ""},
        {"device minor past 2^32", "1000-2000 r-xp 0 08:100000000 1 /x", ""},
        {"end before start", "2000-1000 r-xp 00000000 08:01 1 /x", ""},
        {"no dash in range", "1000 r-xp 00000000 08:01 1 /x", ""},
        {"negative start", "-1000-2000 r-xp 00000000 08:01 1 /x", ""},
        {"hex prefix", "0x1000-0x2000 r-xp 00000000 08:01 1 /x", ""},
        {"permissions too short", "1000-2000 r-x 00000000 08:01 1 /x", ""},
        {"permissions not p or s", "1000-2000 r-xq 00000000 08:01 1 /x", ""},
        {"permission letter misplaced", "1000-2000 x-rp 00000000 08:01 1 /x", ""},
        {"device without colon", "1000-2000 r-xp 00000000 0801 1 /x", ""},
        {"inode in hex", "1000-2000 r-xp 00000000 08:01 1f /x", ""},
        {"truncated after offset", "1000-2000 r-xp 00000000", ""},
        {"garbage", "garbage line", ""},
    };
    for (const MapsLineCase& c : cases) {
        SCOPED_TRACE(c.name);
        size_t bad = 99;
        const auto regions = parse_proc_maps(c.line, &bad);
        if (c.expected.empty()) {
            EXPECT_TRUE(regions.empty());
            EXPECT_EQ(bad, 1u);
        } else {
            ASSERT_EQ(regions.size(), 1u);
            EXPECT_EQ(bad, 0u);
            EXPECT_EQ(describe(regions[0]), c.expected);
        }
    }
}

// A real maps file's shape, with a bad line and blank lines mixed in.
constexpr std::string_view kMaps =
    "55afb58a2000-55afb58a3000 r--p 00000000 fe:00 18624     /usr/bin/python3.11\n"
    "55afb58a3000-55afb58a4000 r-xp 00001000 fe:00 18624     /usr/bin/python3.11\n"
    "55afc4d51000-55afc4f24000 rw-p 00000000 00:00 0         [heap]\n"
    "\n"
    "7fc9279d9000-7fc9279f8000 r--p 00000000 fe:00 333427    /usr/lib/libssl.so.3\n"
    "7fc9279f8000-7fc927a55000 r-xp 0001f000 fe:00 333427    /usr/lib/libssl.so.3\n"
    "this line is not a mapping\n"
    "7fc927b00000-7fc927b10000 r-xp 00001000 fe:00 333427    /usr/lib/libssl.so.3\n"
    "7fc927c00000-7fc927c10000 r-xp 00000000 fe:01 333427    /mnt/other/libssl.so.3\n"
    "7fc927d00000-7fc927d10000 r-xp 00000000 fe:00 555       /tmp/gone.so (deleted)\n"
    "7fc927e00000-7fc927e10000 r-xp 00000000 00:00 0         [vdso]\n"
    "7fc927f00000-7fc927f10000 r-xp 00000000 00:05 777       anon_inode:weird\n"
    "7fc928000000-7fc928010000 r--p 00000000 fe:00 999       /usr/lib/data.bin\n"
    "7fc928911000-7fc928913000 r-xp 00000000 00:00 0         \n"
    "\n";

TEST(ProcMaps, ParsesAWholeFileCountingBadLines) {
    size_t bad = 99;
    const auto regions = parse_proc_maps(kMaps, &bad);
    EXPECT_EQ(bad, 1u);
    EXPECT_EQ(regions.size(), 12u);
}

TEST(ProcMaps, ExecutableFilesAreDistinctByDeviceAndInode) {
    std::vector<std::string> files;
    for (const MappedRegion& region : executable_files(parse_proc_maps(kMaps))) {
        files.push_back(describe(region));
    }
    // libssl's second executable region is the same file; the one on fe:01 is
    // another file with the same inode number. [vdso], anon_inode:, the
    // read-only data file and the anonymous region are not executable files.
    EXPECT_EQ(files, (std::vector<std::string>{
                         "55afb58a3000-55afb58a4000 r-xp 1000 fe:0 18624 [/usr/bin/python3.11]",
                         "7fc9279f8000-7fc927a55000 r-xp 1f000 fe:0 333427 [/usr/lib/libssl.so.3]",
                         "7fc927c00000-7fc927c10000 r-xp 0 fe:1 333427 [/mnt/other/libssl.so.3]",
                         "7fc927d00000-7fc927d10000 r-xp 0 fe:0 555 [/tmp/gone.so (deleted)]",
                     }));
}

TEST(ProcMaps, LooksAtMostMaxLines) {
    size_t bad = 99;
    // Lines 1-3 (the third is the heap); the blank line 4 would be next.
    const auto regions = parse_proc_maps(kMaps, &bad, 3);
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(regions.size(), 3u);

    // Blank and bad lines count toward the cap too.
    const auto capped = parse_proc_maps(kMaps, &bad, 7);
    EXPECT_EQ(bad, 1u);
    EXPECT_EQ(capped.size(), 5u);

    EXPECT_TRUE(parse_proc_maps(kMaps, &bad, 0).empty());
    EXPECT_EQ(bad, 0u);
}

TEST(ProcMaps, EmptyAndNulOnlyInputs) {
    size_t bad = 99;
    EXPECT_TRUE(parse_proc_maps("", &bad).empty());
    EXPECT_EQ(bad, 0u);
    EXPECT_TRUE(parse_proc_maps(std::string_view("\0\0\n\0", 4), &bad).empty());
    EXPECT_EQ(bad, 2u);
    EXPECT_TRUE(parse_proc_maps("\n\n   \n\t\n", &bad).empty());
    EXPECT_EQ(bad, 0u);
}

TEST(ProcMaps, OwnProcessMapsHoldTheTestBinaryAndLibc) {
    std::ifstream in("/proc/self/maps");
    ASSERT_TRUE(in);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t bad = 99;
    const auto regions = parse_proc_maps(text, &bad);
    EXPECT_EQ(bad, 0u);
    ASSERT_FALSE(regions.empty());
    const auto files = executable_files(regions);

    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    struct stat self_stat {};
    ASSERT_EQ(::stat(self.c_str(), &self_stat), 0);
    const auto binary = std::find_if(files.begin(), files.end(),
                                     [&](const MappedRegion& r) { return r.path == self; });
    ASSERT_NE(binary, files.end()) << self;
    // The identity maps and stat agree on (outside overlay file systems, where
    // maps shows the underlying device) is what discovery keys files by.
    EXPECT_EQ(binary->inode, self_stat.st_ino);
    EXPECT_EQ(binary->dev_major, major(self_stat.st_dev));
    EXPECT_EQ(binary->dev_minor, minor(self_stat.st_dev));
    EXPECT_TRUE(binary->readable);
    EXPECT_FALSE(binary->writable);

    const bool has_libc = std::any_of(files.begin(), files.end(), [](const MappedRegion& r) {
        const std::string name = std::filesystem::path(r.path).filename().string();
        return name.rfind("libc.so", 0) == 0 || name.rfind("libc-", 0) == 0;
    });
    EXPECT_TRUE(has_libc);
}

}  // namespace
}  // namespace sonde::discovery
