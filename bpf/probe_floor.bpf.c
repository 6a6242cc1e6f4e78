// SPDX-License-Identifier: GPL-2.0
/* The probe floor: Sonde's kernel hooks with nothing behind the PID filter.
 *
 * Every program here sits on a hook socket_trace.bpf.c also uses, rejects
 * what Sonde rejects before its first map lookup (the syscall number on the
 * raw syscall tracepoints), looks the caller up in a tracked_pids map of the
 * same shape as Sonde's, and returns. No event, no ring buffer, no user-space
 * work: what the benchmark measures with these attached is the price of the
 * hooks themselves, and Sonde's distance from it is the part its design
 * controls.
 *
 * User space (src/app/probe_floor_main.cpp) keeps one syscall family, as
 * SocketTracer does, and attaches the uprobes per TLS library file.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sonde_events.h"
#include "syscall_numbers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Same type, key, value and size as Sonde's: a lookup costs what Sonde's does. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, SONDE_MAX_TRACKED_PIDS);
    __type(key, __u32);
    __type(value, struct sonde_tracked_pid);
} tracked_pids SEC(".maps");

static __always_inline int floor__lookup(void)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    /* The result is deliberately unused; the lookup is the cost being measured. */
    bpf_map_lookup_elem(&tracked_pids, &tgid);
    return 0;
}

/* ---- Family 1: per-syscall tracepoints (tracefs mounted), the same list as
 * Sonde's: exits of the data syscalls, accept and connect; entries of the
 * sends, close, listen and mmap. */
#define FLOOR_EXIT_TRACEPOINT(name)                                                       \
    SEC("tracepoint/syscalls/sys_exit_" #name)                                            \
    int floor_tp_exit_##name(void *ctx)                                                   \
    {                                                                                     \
        return floor__lookup();                                                           \
    }
#define FLOOR_ENTER_TRACEPOINT(name)                                                      \
    SEC("tracepoint/syscalls/sys_enter_" #name)                                           \
    int floor_tp_enter_##name(void *ctx)                                                  \
    {                                                                                     \
        return floor__lookup();                                                           \
    }

FLOOR_EXIT_TRACEPOINT(read)
FLOOR_EXIT_TRACEPOINT(readv)
FLOOR_EXIT_TRACEPOINT(recvfrom)
FLOOR_EXIT_TRACEPOINT(recvmsg)
FLOOR_EXIT_TRACEPOINT(write)
FLOOR_EXIT_TRACEPOINT(writev)
FLOOR_EXIT_TRACEPOINT(sendto)
FLOOR_EXIT_TRACEPOINT(sendmsg)
FLOOR_EXIT_TRACEPOINT(sendfile64)
FLOOR_EXIT_TRACEPOINT(accept)
FLOOR_EXIT_TRACEPOINT(accept4)
FLOOR_EXIT_TRACEPOINT(connect)
FLOOR_ENTER_TRACEPOINT(write)
FLOOR_ENTER_TRACEPOINT(writev)
FLOOR_ENTER_TRACEPOINT(sendto)
FLOOR_ENTER_TRACEPOINT(sendmsg)
FLOOR_ENTER_TRACEPOINT(sendfile64)
FLOOR_ENTER_TRACEPOINT(close)
FLOOR_ENTER_TRACEPOINT(listen)
FLOOR_ENTER_TRACEPOINT(mmap)

/* ---- Family 2: generic raw syscall tracepoints (no tracefs). They run for
 * every syscall on the host, so the number filter is the part that matters.
 * The number filter is Sonde's own (syscall_numbers.bpf.h), so the
 * compiled rejection path is the same. */
#if defined(__TARGET_ARCH_x86)

/* Sonde handles receives, accept and connect at exit only: their entries
 * return after the number filter, here too. */
SEC("raw_tp/sys_enter")
int floor_raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
    __u8 sc = syscall__from_nr((long)ctx->args[1]);
    if (!sc || !syscall__hooked_at_entry(sc))
        return 0;
    return floor__lookup();
}

/* The exit hook learns the syscall number from the saved registers, as
 * Sonde's does, and skips the calls Sonde only hooks at entry. */
SEC("raw_tp/sys_exit")
int floor_raw_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    __u8 sc = syscall__from_nr(BPF_CORE_READ(regs, orig_ax));
    if (!sc || !syscall__hooked_at_exit(sc))
        return 0;
    return floor__lookup();
}
#endif

/* ---- TLS library functions. User space attaches these per file, to the
 * functions Sonde probes: SSL_read, SSL_write and their _ex forms (entry and
 * return), and SSL_free (entry). */
SEC("uprobe")
int floor_ssl_enter(struct pt_regs *ctx)
{
    return floor__lookup();
}

SEC("uretprobe")
int floor_ssl_exit(struct pt_regs *ctx)
{
    return floor__lookup();
}

/* ---- Process lifecycle, always attached (raw tracepoints need no tracefs). */
SEC("raw_tp/sched_process_exec")
int floor_sched_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
    return floor__lookup();
}

/* Runs in the parent: the current tgid is the one Sonde checks. */
SEC("raw_tp/sched_process_fork")
int floor_sched_process_fork(struct bpf_raw_tracepoint_args *ctx)
{
    return floor__lookup();
}

SEC("raw_tp/sched_process_exit")
int floor_sched_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
    return floor__lookup();
}
