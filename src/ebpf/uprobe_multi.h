// BPF uprobe_multi links (Linux 6.6+), made with the bpf() system call: the
// libbpf Sonde builds against (1.1) predates them.
//
// Why Sonde uses them for its TLS uprobes: since the fix for CVE-2025-38466
// (Linux 6.16, backported to the stable series in July 2025) a uprobe made
// with perf_event_open() needs CAP_SYS_ADMIN; a uprobe_multi link needs only
// the CAP_BPF and CAP_PERFMON its program was loaded with. Only a kernel older
// than 6.6 that carries the fix leaves HTTPS tracing needing CAP_SYS_ADMIN.
#pragma once

#include <cstdint>
#include <string>

namespace sonde::ebpf {

// enum bpf_attach_type BPF_TRACE_UPROBE_MULTI: a program loaded with this
// expected attach type can only be attached through uprobe_multi links.
inline constexpr uint32_t kBpfTraceUprobeMulti = 48;

// Whether this kernel creates uprobe_multi links (and lets this process load
// the program they need: CAP_BPF and CAP_PERFMON).
bool uprobe_multi_links_supported();

// A link running `prog_fd` (loaded with kBpfTraceUprobeMulti) at `offset` of
// the file `path` in every process that maps it, at the function's return when
// `retprobe`. Returns the link's fd (closing it detaches), or -errno.
int create_uprobe_multi_link(int prog_fd, const std::string& path, uint64_t offset, bool retprobe);

}  // namespace sonde::ebpf
