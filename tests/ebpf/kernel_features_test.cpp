#include "ebpf/kernel_features.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace sonde::ebpf {
namespace {

using Names = std::vector<std::string>;

constexpr int kDacReadSearch = 2, kSysPtrace = 19, kSysAdmin = 21, kNetAdmin = 12;
constexpr int kPerfmon = 38, kBpf = 39, kCheckpointRestore = 40;

constexpr uint64_t bit(int cap) {
    return uint64_t{1} << cap;
}

// The set docs/security.md grants (and the least-privilege e2e test runs with).
constexpr uint64_t kMinimal =
    bit(kBpf) | bit(kPerfmon) | bit(kSysPtrace) | bit(kDacReadSearch) | bit(kCheckpointRestore);

TEST(Capabilities, TheMinimalSetIsEnough) {
    EXPECT_TRUE(check_capabilities(kMinimal).ok());
    EXPECT_TRUE(check_capabilities(~uint64_t{0}).ok());  // root
}

TEST(Capabilities, EachMissingOneIsNamedAlone) {
    const std::pair<int, const char*> each[] = {
        {kBpf, "CAP_BPF"},
        {kPerfmon, "CAP_PERFMON"},
        {kSysPtrace, "CAP_SYS_PTRACE"},
        {kDacReadSearch, "CAP_DAC_READ_SEARCH"},
        {kCheckpointRestore, "CAP_CHECKPOINT_RESTORE"},
    };
    for (const auto& [cap, name] : each) {
        const CapabilityCheck check = check_capabilities(kMinimal & ~bit(cap));
        EXPECT_EQ(check.missing, Names{name});
        const std::string described = describe_missing(check);
        EXPECT_EQ(described.rfind(std::string(name) + " (", 0), 0u) << described;
    }
}

TEST(Capabilities, NoneGivesEveryOneInOrder) {
    EXPECT_EQ(check_capabilities(0).missing,
              (Names{"CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH",
                     "CAP_CHECKPOINT_RESTORE"}));
    EXPECT_EQ(describe_missing(CapabilityCheck{}), "");
}

// The kernel accepts CAP_SYS_ADMIN for CAP_BPF, CAP_PERFMON and CAP_CHECKPOINT_RESTORE,
// never for the /proc access of the other two.
TEST(Capabilities, SysAdminStandsInOnlyWhereTheKernelAcceptsIt) {
    EXPECT_EQ(check_capabilities(bit(kSysAdmin)).missing,
              (Names{"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}));
    EXPECT_TRUE(check_capabilities(bit(kSysAdmin) | bit(kSysPtrace) | bit(kDacReadSearch)).ok());
}

TEST(Capabilities, EveryRequiredOneSaysWhyAndNoneIsBroad) {
    std::set<std::string> names;
    for (const RequiredCapability& cap : required_capabilities()) {
        EXPECT_TRUE(names.insert(std::string(cap.name)).second) << cap.name;
        EXPECT_GT(cap.purpose.size(), 20u) << cap.name;
        EXPECT_NE(cap.number, kSysAdmin);
        EXPECT_NE(cap.number, kNetAdmin);  // no active feature needs it
    }
    EXPECT_EQ(names.size(), 5u);
    // Extra capabilities change nothing.
    EXPECT_TRUE(check_capabilities(kMinimal | bit(kNetAdmin)).ok());
}

}  // namespace
}  // namespace sonde::ebpf
