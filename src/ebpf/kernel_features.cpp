#include "ebpf/kernel_features.h"

#include <bpf/btf.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>

namespace sonde::ebpf {

std::string find_tracefs_with_syscalls() {
    for (const char* root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
        std::error_code ec;
        if (std::filesystem::exists(std::string(root) + "/events/syscalls/sys_enter_read/id", ec))
            return root;
    }
    return {};
}

PrivateTracefs mount_private_tracefs() {
    PrivateTracefs result;
    if (!find_tracefs_with_syscalls().empty()) return result;
    auto failed = [&](const char* step) {
        result.problem = std::string(step) + ": " + std::strerror(errno);
        return result;
    };
    if (unshare(CLONE_NEWNS) != 0) return failed("unshare(CLONE_NEWNS)");
    // The copy of "/" may share mount events with the host's: receive theirs,
    // send none, so that the mount below stays in this namespace.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
        return failed("making the mounts of the agent's namespace slaves");
    if (mount("tracefs", "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              nullptr) != 0)
        return failed("mount tracefs on /sys/kernel/tracing");
    if (find_tracefs_with_syscalls().empty()) {
        result.problem = "the mounted tracefs has no syscall events (CONFIG_FTRACE_SYSCALLS=n)";
        return result;
    }
    result.mounted = true;
    return result;
}

bool kernel_has_kfunc(const char* name) {
    // libbpf parses the kernel's BTF again at load; this parse is freed here.
    std::unique_ptr<btf, decltype(&btf__free)> vmlinux(btf__load_vmlinux_btf(), &btf__free);
    if (!vmlinux) return false;
    return btf__find_by_name_kind(vmlinux.get(), name, BTF_KIND_FUNC) > 0;
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
constexpr int kCapCheckpointRestore = 40;

constexpr RequiredCapability kRequired[] = {
    {kCapBpf, "CAP_BPF", "create the eBPF maps and load the programs", true},
    {kCapPerfmon, "CAP_PERFMON",
     "load tracing programs, let them read kernel and user memory, and attach them to "
     "tracepoints and uprobes",
     true},
    {kCapSysPtrace, "CAP_SYS_PTRACE",
     "read /proc/PID/exe, environ, maps, fd, ns/net and root of processes running as another "
     "user or with capabilities the agent lacks",
     false},
    {kCapDacReadSearch, "CAP_DAC_READ_SEARCH",
     "list /proc/PID/fd and read /proc/PID/environ of other users' processes, and read the "
     "files they map whatever their permissions",
     false},
    {kCapCheckpointRestore, "CAP_CHECKPOINT_RESTORE",
     "open /proc/PID/map_files/ to probe a TLS library deleted or replaced on disk that a "
     "process still maps",
     true},
};

}  // namespace

std::span<const RequiredCapability> required_capabilities() {
    return kRequired;
}

CapabilityCheck check_capabilities(uint64_t effective) {
    const auto has = [effective](int cap) { return (effective >> cap) & 1u; };
    CapabilityCheck result;
    for (const RequiredCapability& cap : kRequired) {
        if (has(cap.number)) continue;
        if (cap.sys_admin_substitutes && has(kCapSysAdmin)) continue;
        result.missing.emplace_back(cap.name);
    }
    return result;
}

CapabilityCheck check_capabilities() {
    __user_cap_header_struct header{};
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) return check_capabilities(0);
    return check_capabilities((uint64_t(data[1].effective) << 32) | data[0].effective);
}

std::string describe_missing(const CapabilityCheck& check) {
    std::string out;
    for (const std::string& name : check.missing) {
        for (const RequiredCapability& cap : kRequired) {
            if (cap.name != name) continue;
            if (!out.empty()) out += "; ";
            out += name + " (" + std::string(cap.purpose) + ")";
        }
    }
    return out;
}

}  // namespace sonde::ebpf
