#include "ebpf/kernel_features.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>

namespace sonde::ebpf {

std::string find_tracefs_with_syscalls() {
    for (const char* root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
        std::error_code ec;
        if (std::filesystem::exists(std::string(root) + "/events/syscalls/sys_enter_read/id", ec))
            return root;
    }
    return {};
}

bool kernel_btf_available(const std::string& path) {
    std::error_code ec;
    return std::filesystem::is_regular_file(path, ec);
}

namespace {
// Numbers from linux/capability.h; the newer ones are spelled out because
// older headers lack them.
constexpr int kCapDacReadSearch = 2;
constexpr int kCapSysPtrace = 19;
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;
}  // namespace

CapabilityCheck check_capabilities() {
    __user_cap_header_struct header{};
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    __user_cap_data_struct data[2]{};
    CapabilityCheck result;
    if (syscall(SYS_capget, &header, data) != 0) {
        result.missing = {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"};
        return result;
    }
    auto has = [&](int cap) {
        return (data[cap / 32].effective & (uint32_t{1} << (cap % 32))) != 0;
    };
    const bool admin = has(kCapSysAdmin);
    if (!has(kCapBpf) && !admin) result.missing.push_back("CAP_BPF");
    if (!has(kCapPerfmon) && !admin) result.missing.push_back("CAP_PERFMON");
    if (!has(kCapSysPtrace)) result.missing.push_back("CAP_SYS_PTRACE");
    if (!has(kCapDacReadSearch)) result.missing.push_back("CAP_DAC_READ_SEARCH");
    return result;
}

}  // namespace sonde::ebpf
