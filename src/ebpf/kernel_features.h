// What this kernel and this process can do, probed at start-up (never assumed).
#pragma once

#include <string>
#include <vector>

namespace sonde::ebpf {

// Path of a mounted tracefs that exposes syscall tracepoints, or "" when
// none is mounted (per-syscall tracepoints then cannot be attached).
std::string find_tracefs_with_syscalls();

bool kernel_btf_available(const std::string& path = "/sys/kernel/btf/vmlinux");

struct CapabilityCheck {
    std::vector<std::string> missing;  // e.g. "CAP_BPF"
    bool ok() const { return missing.empty(); }
};

// Capabilities Sonde needs in its effective set: CAP_BPF and CAP_PERFMON (or
// CAP_SYS_ADMIN in their place) to load and attach programs, CAP_SYS_PTRACE
// and CAP_DAC_READ_SEARCH to read other processes' /proc entries.
CapabilityCheck check_capabilities();

}  // namespace sonde::ebpf
