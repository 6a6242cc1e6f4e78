// What this kernel and this process can do, probed at start-up (never assumed).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sonde::ebpf {

// Path of a mounted tracefs that exposes syscall tracepoints, or "" when
// none is mounted (per-syscall tracepoints then cannot be attached).
std::string find_tracefs_with_syscalls();

// With no tracefs mounted, per-syscall tracepoints cannot be attached and the raw
// syscall tracepoints, which run for every syscall of every process on the host,
// are used instead. This mounts tracefs in a mount namespace of the agent's own
// (the host's mount table does not change). Call it while the process has a
// single thread (unshare(CLONE_NEWNS) refuses otherwise); it needs CAP_SYS_ADMIN.
struct PrivateTracefs {
    bool mounted = false;  // by this call; false also when one was already mounted
    std::string problem;   // why it was not, when none is mounted; empty otherwise
};
PrivateTracefs mount_private_tracefs();

// The running kernel's BTF declares kfunc `name` (e.g. "bpf_rdonly_cast"). False
// when the BTF cannot be read.
bool kernel_has_kfunc(const char* name);

bool kernel_btf_available(const std::string& path = "/sys/kernel/btf/vmlinux");

// A capability Sonde needs in its effective set, and why (docs/security.md
// says the same at more length).
struct RequiredCapability {
    int number;                // from linux/capability.h
    std::string_view name;     // "CAP_BPF"
    std::string_view purpose;  // what fails without it
    // The kernel accepts CAP_SYS_ADMIN in its place (bpf_capable(),
    // perfmon_capable(), checkpoint_restore_ns_capable()): a root agent passes.
    bool sys_admin_substitutes;
};

// Every capability Sonde needs, in the order they are reported. CAP_NET_ADMIN
// is not among them: no active feature attaches traffic-control programs.
std::span<const RequiredCapability> required_capabilities();

struct CapabilityCheck {
    std::vector<std::string> missing;  // names, e.g. "CAP_BPF"
    bool ok() const { return missing.empty(); }
};

// Which required capabilities the effective set `effective` (bit n set:
// capability n) lacks.
CapabilityCheck check_capabilities(uint64_t effective);
// The same for this process; when capget() fails every one is missing.
CapabilityCheck check_capabilities();

// "CAP_SYS_PTRACE (read /proc/PID/... of processes the agent does not own)"
// for each missing one, joined with "; ".
std::string describe_missing(const CapabilityCheck& check);

}  // namespace sonde::ebpf
