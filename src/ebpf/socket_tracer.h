// Owns the socket-tracing eBPF programs: open, tune, load, attach, drain the
// ring buffer, update the PID filter. Destroying it detaches everything.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sonde_events.h"

struct socket_trace;  // generated skeleton
struct ring_buffer;
struct bpf_link;

namespace sonde::ebpf {

enum class SyscallHookFamily {
    Tracepoints,     // tracepoint/syscalls/sys_{enter,exit}_*: needs tracefs
    RawTracepoints,  // raw_tp/sys_{enter,exit}: works without tracefs
};

struct SocketTracerOptions {
    uint32_t capture_bytes = SONDE_MAX_CAPTURE;
    uint32_t agent_pid = 0;
    // Unset: tracepoints when tracefs is mounted, raw tracepoints otherwise.
    bool force_raw_tracepoints = false;
    // Read socket fields with helper calls even where bpf_rdonly_cast exists
    // (the path of kernels before 6.2; for testing it here).
    bool force_helper_reads = false;
    // enum sonde_bench_stage: how far data records get (measurement only).
    uint32_t bench_stage = SONDE_BENCH_STAGE_FULL;
};

// File offsets of a TLS library's functions (0: the file does not have it).
struct TlsFunctionOffsets {
    uint64_t ssl_read = 0;
    uint64_t ssl_write = 0;
    uint64_t ssl_read_ex = 0;
    uint64_t ssl_write_ex = 0;
    uint64_t ssl_free = 0;
};

struct TlsAttachResult {
    unsigned attached = 0;  // probes now in place
    unsigned failed = 0;    // probes the kernel refused
};

class SocketTracer {
public:
    using RecordHandler = std::function<void(std::span<const uint8_t>)>;

    // Loads and attaches; throws std::runtime_error naming the step that failed.
    SocketTracer(const SocketTracerOptions& options, RecordHandler on_record);
    ~SocketTracer();
    SocketTracer(const SocketTracer&) = delete;
    SocketTracer& operator=(const SocketTracer&) = delete;

    SyscallHookFamily hook_family() const { return family_; }

    void track_pid(uint32_t pid, uint64_t start_time_ticks);
    // Also removes the process's TLS per-connection entries, if it made any.
    void untrack_pid(uint32_t pid);
    // Marks a pid the kernel tracked provisionally, and discovery rejected, as
    // ignored: its later connects to watched ports are not reported again.
    void ignore_pid(uint32_t pid, uint64_t start_time_ticks);
    // True while `pid` still has the entry the kernel wrote when it forked
    // (SONDE_TRACKED_FORKED): not confirmed, and no exec since.
    bool fork_entry_unconfirmed(uint32_t pid) const;
    void watch_port(uint16_t port);

    struct KernelTrackedPid {
        uint32_t pid;
        sonde_tracked_pid value;
    };
    // Every entry of the kernel's PID filter, for reconciliation with discovery.
    std::vector<KernelTrackedPid> kernel_tracked_pids() const;

    // Waits up to timeout_ms for a wake-up, then drains whatever is in the
    // ring (records are delivered without wake-ups). Returns records handled.
    int poll(int timeout_ms);

    std::array<uint64_t, SONDE_KCOUNTER_COUNT> kernel_counters() const;

    // Bytes written to the ring and not consumed yet; safe from any thread.
    uint64_t ring_backlog_bytes() const;

    // Uprobes on one TLS library file for every process that maps it (the
    // kernel programs filter by PID). Call once per file; the probes stay
    // until the tracer is destroyed.
    TlsAttachResult attach_tls_library(const std::string& path, const TlsFunctionOffsets& offsets);

    // Map ids, for tests and diagnostics (bpftool map dump id N).
    uint32_t tracked_pids_map_id() const;

private:
    // Opens the skeleton, sets its load-time constants and loads it; libbpf's error.
    int open_and_load(const SocketTracerOptions& options, bool rdonly_cast);
    void write_pid_entry(uint32_t pid, uint64_t start_time_ticks, uint32_t flags);
    // The process's filter entry is marked SONDE_TRACKED_USED_TLS.
    bool used_tls(uint32_t pid) const;
    // Removes the ssl_sockets and tls_sockets entries of `pid`.
    void forget_tls_entries(uint32_t pid);

    struct SkeletonDeleter {
        void operator()(socket_trace* skel) const;
    };
    struct RingDeleter {
        void operator()(ring_buffer* rb) const;
    };
    struct LinkDeleter {
        void operator()(bpf_link* link) const;
    };
    // A link made with the bpf() system call (uprobe_multi): libbpf 1.1 cannot
    // wrap its fd in a bpf_link. Closing the fd detaches it.
    class LinkFd {
    public:
        explicit LinkFd(int fd) : fd_(fd) {}
        LinkFd(LinkFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
        LinkFd& operator=(LinkFd&&) = delete;
        ~LinkFd();

    private:
        int fd_;
    };
    static int ring_callback(void* ctx, void* data, size_t size);

    // The ring's consumer and producer positions, mapped read-only (one page
    // each, as the kernel lays them out) so that another thread can see the
    // backlog without a system call.
    class RingPositions {
    public:
        explicit RingPositions(int map_fd);
        ~RingPositions();
        RingPositions(const RingPositions&) = delete;
        RingPositions& operator=(const RingPositions&) = delete;
        uint64_t backlog() const;

    private:
        void* pages_ = nullptr;
        size_t length_ = 0;
    };

    std::unique_ptr<socket_trace, SkeletonDeleter> skel_;
    std::unique_ptr<ring_buffer, RingDeleter> ring_;
    std::unique_ptr<RingPositions> ring_positions_;
    RecordHandler on_record_;
    std::vector<std::unique_ptr<bpf_link, LinkDeleter>> tls_links_;  // perf-event uprobes
    std::vector<LinkFd> tls_link_fds_;                               // uprobe_multi links
    // TLS programs are loaded for uprobe_multi links (ebpf/uprobe_multi.h).
    bool tls_multi_links_ = false;
    SyscallHookFamily family_ = SyscallHookFamily::RawTracepoints;
};

}  // namespace sonde::ebpf
