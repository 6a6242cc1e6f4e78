#include "ebpf/socket_tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ebpf/kernel_features.h"
#include "ebpf/uprobe_multi.h"
#include "socket_trace.skel.h"

namespace sonde::ebpf {

namespace {

int libbpf_log(enum libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG && !spdlog::should_log(spdlog::level::trace)) return 0;
    // Verifier logs arrive as one long message: size it first, then format.
    va_list again;
    va_copy(again, args);
    const int n = std::vsnprintf(nullptr, 0, format, again);
    va_end(again);
    if (n <= 0) return 0;
    std::string line(size_t(n) + 1, '\0');
    std::vsnprintf(line.data(), line.size(), format, args);
    line.resize(size_t(n));
    std::string_view text(line);
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    switch (level) {
        case LIBBPF_WARN:
            spdlog::warn("libbpf: {}", text);
            break;
        case LIBBPF_INFO:
            spdlog::debug("libbpf: {}", text);
            break;
        default:
            spdlog::trace("libbpf: {}", text);
            break;
    }
    return 0;
}

[[noreturn]] void fail(const char* step, int err) {
    throw std::runtime_error(std::string("eBPF ") + step +
                             " failed: " + std::strerror(std::abs(err)));
}

bool starts_with(const char* s, std::string_view prefix) {
    return s && std::string_view(s).substr(0, prefix.size()) == prefix;
}

// Every entry of a hash map, read in batches: a few system calls for thousands of entries.
// `visit(key, value)` gets each entry's bytes.
template <typename Visit>
void for_each_map_entry(const bpf_map* map, Visit visit) {
    constexpr uint32_t kBatch = 1024;
    const size_t key_size = bpf_map__key_size(map);
    const size_t value_size = bpf_map__value_size(map);
    std::vector<uint8_t> keys(kBatch * key_size);
    std::vector<uint8_t> values(kBatch * value_size);
    // The kernel's position between calls (a bucket index for hash maps).
    uint64_t in_batch = 0;
    uint64_t out_batch = 0;
    for (bool first = true;; first = false) {
        uint32_t count = kBatch;
        const int err =
            bpf_map_lookup_batch(bpf_map__fd(map), first ? nullptr : &in_batch, &out_batch,
                                 keys.data(), values.data(), &count, nullptr);
        if (err != 0 && err != -ENOENT) {
            spdlog::debug("reading map {} failed: {}", bpf_map__name(map), std::strerror(-err));
            return;
        }
        for (uint32_t i = 0; i < count; ++i) visit(&keys[i * key_size], &values[i * value_size]);
        if (err == -ENOENT) return;  // every entry seen
        in_batch = out_batch;
    }
}

}  // namespace

void SocketTracer::SkeletonDeleter::operator()(socket_trace* skel) const {
    socket_trace__destroy(skel);
}

void SocketTracer::RingDeleter::operator()(ring_buffer* rb) const {
    ring_buffer__free(rb);
}

void SocketTracer::LinkDeleter::operator()(bpf_link* link) const {
    bpf_link__destroy(link);
}

SocketTracer::LinkFd::~LinkFd() {
    if (fd_ >= 0) ::close(fd_);
}

int SocketTracer::open_and_load(const SocketTracerOptions& options, bool rdonly_cast) {
    skel_.reset(socket_trace__open());
    if (!skel_) fail("open", errno);

    skel_->rodata->capture_limit =
        options.capture_bytes > SONDE_MAX_CAPTURE ? SONDE_MAX_CAPTURE : options.capture_bytes;
    skel_->rodata->agent_pid = options.agent_pid;
    skel_->rodata->bench_stage = options.bench_stage;
    // Long iovec arrays are walked with bpf_loop where the kernel has it (5.17+).
    skel_->rodata->has_bpf_loop =
        libbpf_probe_bpf_helper(BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_FUNC_loop, nullptr) == 1;
    skel_->rodata->has_rdonly_cast = rdonly_cast;

    // Syscall hooks come in two families carrying the same handlers; keep
    // exactly one. Process lifecycle hooks (raw_tp/sched_*) are always on.
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, skel_->obj) {
        const char* section = bpf_program__section_name(prog);
        const bool tracepoint = starts_with(section, "tracepoint/syscalls/");
        const bool raw_syscall = starts_with(section, "raw_tp/sys_");
        if (tracepoint) bpf_program__set_autoload(prog, family_ == SyscallHookFamily::Tracepoints);
        if (raw_syscall)
            bpf_program__set_autoload(prog, family_ == SyscallHookFamily::RawTracepoints);
        // TLS uprobes are attached per library file, when one is found.
        if (starts_with(section, "uprobe") || starts_with(section, "uretprobe")) {
            bpf_program__set_autoattach(prog, false);
            if (tls_multi_links_)
                bpf_program__set_expected_attach_type(
                    prog, static_cast<bpf_attach_type>(kBpfTraceUprobeMulti));
        }
    }
    return socket_trace__load(skel_.get());
}

SocketTracer::SocketTracer(const SocketTracerOptions& options, RecordHandler on_record)
    : on_record_(std::move(on_record)) {
    libbpf_set_print(libbpf_log);

    // Decided before load: a program is loaded for one way of attaching.
    tls_multi_links_ = uprobe_multi_links_supported();
    const bool tracefs = !find_tracefs_with_syscalls().empty();
    family_ = (tracefs && !options.force_raw_tracepoints) ? SyscallHookFamily::Tracepoints
                                                          : SyscallHookFamily::RawTracepoints;

    // Socket fields by plain guarded loads where the kernel can cast (6.2+). Its BTF
    // naming the kfunc is the probe; should the verifier still refuse it for these
    // program types, the programs are loaded again without it.
    const bool cast = !options.force_helper_reads && kernel_has_kfunc("bpf_rdonly_cast");
    if (int err = open_and_load(options, cast); err != 0) {
        if (!cast || err == -EPERM) fail("load", err);  // EPERM: a capability, not the cast
        spdlog::warn("eBPF load with bpf_rdonly_cast failed ({}): loading with helper reads",
                     std::strerror(-err));
        if (int again = open_and_load(options, false); again != 0) fail("load", again);
    }
    if (int err = socket_trace__attach(skel_.get())) fail("attach", err);

    ring_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.events), &SocketTracer::ring_callback,
                                 this, nullptr));
    if (!ring_) fail("ring buffer setup", errno);
    ring_positions_ = std::make_unique<RingPositions>(bpf_map__fd(skel_->maps.events));

    spdlog::info(
        "eBPF programs attached: syscall hooks via {}; socket fields read {}; TLS "
        "uprobes via {}",
        family_ == SyscallHookFamily::Tracepoints ? "per-syscall tracepoints (tracefs mounted)"
                                                  : "raw syscall tracepoints (tracefs not mounted)",
        skel_->rodata->has_rdonly_cast ? "by guarded loads (bpf_rdonly_cast)" : "by helper calls",
        tls_multi_links_ ? "uprobe_multi links"
                         : "perf events (no uprobe_multi links here; with the fix for "
                           "CVE-2025-38466 these need CAP_SYS_ADMIN)");
}

SocketTracer::~SocketTracer() = default;

int SocketTracer::ring_callback(void* ctx, void* data, size_t size) {
    auto* self = static_cast<SocketTracer*>(ctx);
    self->on_record_({static_cast<const uint8_t*>(data), size});
    return 0;
}

void SocketTracer::track_pid(uint32_t pid, uint64_t start_time_ticks) {
    write_pid_entry(pid, start_time_ticks, 0);
}

void SocketTracer::ignore_pid(uint32_t pid, uint64_t start_time_ticks) {
    write_pid_entry(pid, start_time_ticks, SONDE_TRACKED_IGNORED);
}

void SocketTracer::write_pid_entry(uint32_t pid, uint64_t start_time_ticks, uint32_t flags) {
    sonde_tracked_pid value{};
    value.proc_start_ns = start_time_ticks;
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    value.since_ns = uint64_t(now.tv_sec) * 1'000'000'000ull + uint64_t(now.tv_nsec);
    value.flags = flags;
    // The kernel's mark of a process with TLS entries survives the rewrite (a provisional
    // entry confirmed after its first TLS call); an ignored process is not traced any more,
    // so its entries go now.
    if (used_tls(pid)) {
        if (flags & SONDE_TRACKED_IGNORED)
            forget_tls_entries(pid);
        else
            value.flags |= SONDE_TRACKED_USED_TLS;
    }
    if (bpf_map__update_elem(skel_->maps.tracked_pids, &pid, sizeof pid, &value, sizeof value,
                             BPF_ANY) != 0)
        spdlog::warn("cannot write the kernel filter entry of pid {}: {}", pid,
                     std::strerror(errno));
}

void SocketTracer::untrack_pid(uint32_t pid) {
    const bool tls = used_tls(pid);
    bpf_map__delete_elem(skel_->maps.tracked_pids, &pid, sizeof pid, 0);
    if (tls) forget_tls_entries(pid);
}

bool SocketTracer::fork_entry_unconfirmed(uint32_t pid) const {
    sonde_tracked_pid entry{};
    return bpf_map__lookup_elem(skel_->maps.tracked_pids, &pid, sizeof pid, &entry, sizeof entry,
                                0) == 0 &&
           (entry.flags & SONDE_TRACKED_FORKED) != 0;
}

bool SocketTracer::used_tls(uint32_t pid) const {
    sonde_tracked_pid entry{};
    return bpf_map__lookup_elem(skel_->maps.tracked_pids, &pid, sizeof pid, &entry, sizeof entry,
                                0) == 0 &&
           (entry.flags & SONDE_TRACKED_USED_TLS) != 0;
}

// A process killed, or exiting with connections open, calls neither SSL_free() nor close():
// the entries its TLS calls made would stay until the LRU maps evict them, and an SSL
// object's address could name a wrong socket for a later process with the same pid.
void SocketTracer::forget_tls_entries(uint32_t pid) {
    std::vector<sonde_ssl_key> ssl_keys;
    for_each_map_entry(skel_->maps.ssl_sockets, [&](const uint8_t* key, const uint8_t*) {
        sonde_ssl_key k{};
        std::memcpy(&k, key, sizeof k);
        if (k.tgid == pid) ssl_keys.push_back(k);
    });
    std::vector<uint64_t> sockets;
    for_each_map_entry(skel_->maps.tls_sockets, [&](const uint8_t* key, const uint8_t* value) {
        uint32_t owner = 0;
        std::memcpy(&owner, value, sizeof owner);
        if (owner != pid) return;
        uint64_t sock = 0;
        std::memcpy(&sock, key, sizeof sock);
        sockets.push_back(sock);
    });
    for (const sonde_ssl_key& k : ssl_keys)
        bpf_map__delete_elem(skel_->maps.ssl_sockets, &k, sizeof k, 0);
    for (const uint64_t sock : sockets)
        bpf_map__delete_elem(skel_->maps.tls_sockets, &sock, sizeof sock, 0);
}

void SocketTracer::watch_port(uint16_t port) {
    uint8_t one = 1;
    bpf_map__update_elem(skel_->maps.watched_ports, &port, sizeof port, &one, sizeof one, BPF_ANY);
}

std::vector<SocketTracer::KernelTrackedPid> SocketTracer::kernel_tracked_pids() const {
    std::vector<KernelTrackedPid> out;
    uint32_t key = 0;
    uint32_t next = 0;
    const uint32_t* prev = nullptr;
    while (out.size() < SONDE_MAX_TRACKED_PIDS &&
           bpf_map__get_next_key(skel_->maps.tracked_pids, prev, &next, sizeof next) == 0) {
        KernelTrackedPid entry{next, {}};
        if (bpf_map__lookup_elem(skel_->maps.tracked_pids, &next, sizeof next, &entry.value,
                                 sizeof entry.value, 0) == 0)
            out.push_back(entry);
        key = next;
        prev = &key;
    }
    return out;
}

int SocketTracer::poll(int timeout_ms) {
    int woken = ring_buffer__poll(ring_.get(), timeout_ms);
    if (woken < 0 && woken != -EINTR) return woken;
    // Records written with BPF_RB_NO_WAKEUP do not make epoll ready: drain explicitly.
    int drained = ring_buffer__consume(ring_.get());
    return (woken > 0 ? woken : 0) + (drained > 0 ? drained : 0);
}

SocketTracer::RingPositions::RingPositions(int map_fd) {
    const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* mapped = mmap(nullptr, 2 * page, PROT_READ, MAP_SHARED, map_fd, 0);
    if (mapped == MAP_FAILED)
        throw std::runtime_error(std::string("mapping the ring's positions: ") +
                                 std::strerror(errno));
    pages_ = mapped;
    length_ = 2 * page;
}

SocketTracer::RingPositions::~RingPositions() {
    munmap(pages_, length_);
}

uint64_t SocketTracer::RingPositions::backlog() const {
    const auto* consumer = static_cast<const uint64_t*>(pages_);
    const auto* producer =
        reinterpret_cast<const uint64_t*>(static_cast<const char*>(pages_) + length_ / 2);
    const uint64_t consumed = __atomic_load_n(consumer, __ATOMIC_ACQUIRE);
    const uint64_t produced = __atomic_load_n(producer, __ATOMIC_ACQUIRE);
    return produced > consumed ? produced - consumed : 0;
}

uint64_t SocketTracer::ring_backlog_bytes() const {
    return ring_positions_->backlog();
}

std::array<uint64_t, SONDE_KCOUNTER_COUNT> SocketTracer::kernel_counters() const {
    std::array<uint64_t, SONDE_KCOUNTER_COUNT> totals{};
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return totals;
    std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
    for (uint32_t key = 0; key < SONDE_KCOUNTER_COUNT; ++key) {
        if (bpf_map__lookup_elem(skel_->maps.counters, &key, sizeof key, per_cpu.data(),
                                 per_cpu.size() * sizeof(uint64_t), 0) != 0)
            continue;
        for (uint64_t v : per_cpu) totals[key] += v;
    }
    return totals;
}

TlsAttachResult SocketTracer::attach_tls_library(const std::string& path,
                                                 const TlsFunctionOffsets& offsets) {
    TlsAttachResult result;
    const auto attach = [&](bpf_program* prog, uint64_t offset, bool retprobe) {
        if (offset == 0) return;
        // Every process that maps the file; the programs filter by PID themselves.
        int err = 0;
        if (tls_multi_links_) {
            const int fd = create_uprobe_multi_link(bpf_program__fd(prog), path, offset, retprobe);
            if (fd >= 0)
                tls_link_fds_.emplace_back(fd);
            else
                err = -fd;
        } else if (bpf_link* link =
                       bpf_program__attach_uprobe(prog, retprobe, -1, path.c_str(), offset)) {
            tls_links_.emplace_back(link);
        } else {
            err = errno;
        }
        if (err != 0) {
            ++result.failed;
            const bool needs_admin = !tls_multi_links_ && (err == EACCES || err == EPERM);
            spdlog::warn("cannot attach {} at {}+{:#x}: {}{}", bpf_program__name(prog), path,
                         offset, std::strerror(err),
                         needs_admin ? " (a perf-event uprobe needs CAP_SYS_ADMIN on kernels "
                                       "with the fix for CVE-2025-38466)"
                                     : "");
            return;
        }
        ++result.attached;
    };
    auto* progs = &skel_->progs;
    attach(progs->uprobe_ssl_read, offsets.ssl_read, false);
    attach(progs->uprobe_ssl_read_ex, offsets.ssl_read_ex, false);
    attach(progs->uprobe_ssl_write, offsets.ssl_write, false);
    attach(progs->uprobe_ssl_write_ex, offsets.ssl_write_ex, false);
    // Only reads need their return (the byte count); a write is complete at entry.
    for (uint64_t offset : {offsets.ssl_read, offsets.ssl_read_ex})
        attach(progs->uretprobe_ssl_read, offset, true);
    attach(progs->uprobe_ssl_free, offsets.ssl_free, false);
    return result;
}

uint32_t SocketTracer::tracked_pids_map_id() const {
    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(bpf_map__fd(skel_->maps.tracked_pids), &info, &len) != 0) return 0;
    return info.id;
}

}  // namespace sonde::ebpf
