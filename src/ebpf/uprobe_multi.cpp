#include "ebpf/uprobe_multi.h"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace sonde::ebpf {

namespace {

// BPF_LINK_CREATE's part of union bpf_attr for uprobe_multi, as the kernel
// ABI lays it out (the linux/bpf.h Sonde builds with may not have it).
struct LinkCreateUprobeMulti {
    uint32_t prog_fd;
    uint32_t target_fd;
    uint32_t attach_type;
    uint32_t flags;
    uint64_t path;
    uint64_t offsets;
    uint64_t ref_ctr_offsets;
    uint64_t cookies;
    uint32_t cnt;
    uint32_t multi_flags;  // BPF_F_UPROBE_MULTI_RETURN
    uint32_t pid;          // 0: every process
};
static_assert(offsetof(LinkCreateUprobeMulti, path) == 16);
static_assert(offsetof(LinkCreateUprobeMulti, cnt) == 48);
static_assert(offsetof(LinkCreateUprobeMulti, pid) == 56);

constexpr uint32_t kUprobeMultiReturn = 1;  // BPF_F_UPROBE_MULTI_RETURN

// The kernel reads as many bytes as it is given and wants the ones it does not
// know to be zero: pass the larger of the header's union and the struct.
constexpr size_t kAttrSize = sizeof(union bpf_attr) > sizeof(LinkCreateUprobeMulti)
                                 ? sizeof(union bpf_attr)
                                 : sizeof(LinkCreateUprobeMulti);

int link_create(const LinkCreateUprobeMulti& link) {
    unsigned char attr[kAttrSize]{};
    std::memcpy(attr, &link, sizeof link);
    return int(::syscall(__NR_bpf, BPF_LINK_CREATE, attr, sizeof attr));
}

}  // namespace

bool uprobe_multi_links_supported() {
    // The smallest program of the TLS probes' type: r0 = 0; exit.
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    union bpf_attr load {};
    load.prog_type = BPF_PROG_TYPE_KPROBE;
    load.expected_attach_type = kBpfTraceUprobeMulti;
    load.insns = reinterpret_cast<uintptr_t>(insns);
    load.insn_cnt = 2;
    load.license = reinterpret_cast<uintptr_t>("GPL");
    const int prog_fd = int(::syscall(__NR_bpf, BPF_PROG_LOAD, &load, sizeof load));
    if (prog_fd < 0) return false;  // older kernels reject the attach type
    // A kernel with uprobe_multi links checks everything else, then refuses
    // "/" (not a regular file) with EBADF; libbpf probes the same way.
    uint64_t offset = 0;
    LinkCreateUprobeMulti link{};
    link.prog_fd = uint32_t(prog_fd);
    link.attach_type = kBpfTraceUprobeMulti;
    link.path = reinterpret_cast<uintptr_t>("/");
    link.offsets = reinterpret_cast<uintptr_t>(&offset);
    link.cnt = 1;
    const int link_fd = link_create(link);
    const int err = errno;
    if (link_fd >= 0) ::close(link_fd);
    ::close(prog_fd);
    return link_fd < 0 && err == EBADF;
}

int create_uprobe_multi_link(int prog_fd, const std::string& path, uint64_t offset, bool retprobe) {
    LinkCreateUprobeMulti link{};
    link.prog_fd = uint32_t(prog_fd);
    link.attach_type = kBpfTraceUprobeMulti;
    link.path = reinterpret_cast<uintptr_t>(path.c_str());
    link.offsets = reinterpret_cast<uintptr_t>(&offset);
    link.cnt = 1;
    link.multi_flags = retprobe ? kUprobeMultiReturn : 0;
    const int fd = link_create(link);
    return fd >= 0 ? fd : -errno;
}

}  // namespace sonde::ebpf
