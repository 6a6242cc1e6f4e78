// SPDX-License-Identifier: GPL-2.0
/* Socket syscall capture for tracked processes.
 *
 * Two attachment families carry the same handlers:
 *   - per-syscall tracepoints (tracepoint/syscalls/...) when tracefs is
 *     mounted: only the hooked syscalls pay;
 *   - the generic raw syscall tracepoints (raw_tp/sys_enter, sys_exit) when it
 *     is not: they need no tracefs, but run for every syscall on the host, so
 *     they reject uninteresting syscall numbers before any map lookup.
 * User space picks one family at start-up and disables the other's autoload.
 *
 * Every data path filters by PID first (tracked_pids), then checks that the fd
 * is a TCP socket, and only then copies a bounded prefix of the payload.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sonde_events.h"
#include "syscall_numbers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Weak: unresolved on kernels without it, where has_rdonly_cast keeps the
 * calls in dead code the verifier removes. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define kernel__cast(addr, type) \
    ((type *)bpf_rdonly_cast((const void *)(addr), bpf_core_type_id_kernel(type)))

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define PROT_EXEC 0x4
#define MAP_ANONYMOUS 0x20

/* Tunables, set by user space between open and load. */
const volatile __u32 capture_limit = SONDE_MAX_CAPTURE; /* <= SONDE_MAX_CAPTURE */
/* bpf_loop exists (Linux 5.17+): probed by user space before load. */
const volatile bool has_bpf_loop = false;
/* bpf_rdonly_cast exists (Linux 6.2+): probed by user space before load. It
 * turns a kernel address into a read-only BTF pointer whose fields are read
 * with plain loads the JIT guards against faults, instead of one helper call
 * per field: the socket behind an fd is found on every data syscall. */
const volatile bool has_rdonly_cast = false;
const volatile __u32 agent_pid = 0;                     /* never report the agent itself */
const volatile __u64 wakeup_bytes = SONDE_RINGBUF_WAKEUP_BYTES;
const volatile __u32 bench_stage = SONDE_BENCH_STAGE_FULL; /* enum sonde_bench_stage */

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, SONDE_MAX_TRACKED_PIDS);
    __type(key, __u32);
    __type(value, struct sonde_tracked_pid);
} tracked_pids SEC(".maps");

/* Ports whose connect() by an untracked process is a discovery signal. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, SONDE_MAX_WATCHED_PORTS);
    __type(key, __u16);
    __type(value, __u8);
} watched_ports SEC(".maps");

enum buffer_kind {
    BUFFER_NONE = 0,  /* nothing to copy (sendfile, accept, connect) */
    BUFFER_FLAT = 1,  /* (void *buf, size_t len) */
    BUFFER_IOVEC = 2, /* (struct iovec *iov, int iovcnt) */
    BUFFER_MSGHDR = 3 /* (struct user_msghdr *msg) */
};

/* The first fields of struct sock_common: addresses, ports and family, read
 * in one copy where the running kernel lays them out as below (checked at
 * load time by CO-RE; field by field otherwise). */
struct sock_head {
    __be32 daddr;
    __be32 rcv_saddr;
    __u32 hash;
    __be16 dport;
    __u16 num;
    __u16 family;
};

/* A finished data syscall, as the capture code sees it: the arguments come
 * from the task's saved user registers at exit, the entry time (egress only)
 * from the thread's state. */
struct data_call {
    __u64 ts_enter_ns;
    __u64 ts_exit_ns;
    __u64 buffer; /* user pointer: buffer, iovec array or msghdr */
    __u64 count;  /* buffer length or iovec count */
    __u64 sock;   /* struct sock * of the fd */
    __s32 fd;
    __u8 syscall; /* enum sonde_syscall */
    __u8 kind;    /* enum buffer_kind */
    __u8 _pad[2];
    struct sock_head head; /* family 0: not read yet */
};

/* ---- TLS: OpenSSL calls in flight, and which socket carries each SSL object. */
enum ssl_op {
    SSL_OP_READ = 1, /* SSL_read or SSL_read_ex (writes need no state: see below) */
};

struct ssl_call {
    __u64 ssl;         /* SSL * */
    __u64 buffer;      /* cleartext buffer */
    __u64 result_ptr;  /* SSL_read_ex: size_t *readbytes; 0 for SSL_read */
    __u64 ts_enter_ns;
    __u64 sock;        /* socket of a syscall issued inside the call; 0: none seen */
    __s32 fd;
    __u8 op;           /* enum ssl_op */
    __u8 _pad[3];
};

struct ssl_socket {
    __u64 sock;
    __s32 fd;
    __u32 _pad;
};

/* The socket an SSL object was last seen reading or writing ciphertext on. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, SONDE_MAX_SSL_SOCKETS);
    __type(key, struct sonde_ssl_key);
    __type(value, struct ssl_socket);
} ssl_sockets SEC(".maps");

/* Sockets whose cleartext is reported by the TLS uprobes: their syscalls carry
 * ciphertext and are not reported. Cleared when a socket is opened or closed,
 * and by user space when the process that marked it is gone. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, SONDE_MAX_TLS_SOCKETS);
    __type(key, __u64);   /* struct sock * */
    __type(value, __u32); /* tgid of the process that marked it */
} tls_sockets SEC(".maps");

/* Cleartext of an SSL_write whose SSL object's socket is not known yet: the
 * thread's next socket write carries its ciphertext and names the socket (the
 * call's own write for socket BIOs; for memory-buffer users such as Node, the
 * write the runtime issues right after SSL_write returns). The record is built
 * at once (the buffer may be reused) and parked here, with the SSL * in
 * socket_cookie until the socket is known. One per thread, for microseconds. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, SONDE_MAX_PENDING_SSL_WRITES);
    __type(key, __u64); /* pid_tgid */
    __type(value, struct sonde_data_event);
} pending_ssl_writes SEC(".maps");

/* Per-thread state, in task-local storage: cheaper than a hash keyed by
 * pid_tgid on every syscall, and freed by the kernel with the thread. */
struct thread_state {
    __u64 egress_enter_ns;  /* entry time of the send-family syscall in flight */
    struct ssl_call ssl;    /* ssl.op != 0: an SSL_read in flight */
    /* The socket this thread last read from. A library used with memory
     * buffers (Node's TLS) never touches the socket inside SSL_read: the
     * runtime reads the ciphertext itself, on the same thread, just before. */
    struct ssl_socket last_read;
    __u8 egress_syscall;    /* enum sonde_syscall of egress_enter_ns, 0: none */
    __u8 pending_ssl_write; /* a cleartext waits in pending_ssl_writes */
    __u8 _pad[6];
};

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct thread_state);
} thread_states SEC(".maps");

static __always_inline struct thread_state *thread__state(bool create)
{
    return bpf_task_storage_get(&thread_states, bpf_get_current_task_btf(), 0,
                                create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* The calling task's user registers, saved at syscall entry: the syscall's
 * arguments are still there at exit, so nothing is stored at entry. */
static __always_inline struct pt_regs *syscall__regs(void)
{
    return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, SONDE_RINGBUF_BYTES);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, SONDE_KCOUNTER_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

/* The data record is built here, then copied into the ring with its real
 * length. The tail beyond data[] lets the verifier accept copies at a
 * variable offset below SONDE_MAX_CAPTURE of a length the verifier only
 * knows to be below 2 * SONDE_MAX_CAPTURE. */
/* Where a walk over a call's iovecs stands. It lives in the scratch map, not
 * on the stack: the verifier does not track map values, so every iteration of
 * the walk looks the same to it and the loop is verified once. */
struct iovec_walk {
    __u64 iov_ptr;
    __u64 iovcnt;
    __u64 total;   /* bytes the call moved */
    __u64 scanned; /* bytes of the iovecs walked so far */
    __u32 offset;  /* bytes captured so far (data[] is filled back to back) */
    __u32 _pad;
};

struct data_scratch {
    struct iovec_walk walk;
    struct sonde_data_event event;
    __u8 overflow[2 * SONDE_MAX_CAPTURE];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct data_scratch);
} scratch SEC(".maps");

static __always_inline void counter__add(__u32 which, __u64 n)
{
    __u64 *slot = bpf_map_lookup_elem(&counters, &which);
    if (slot)
        *slot += n;
}

/* Wake the consumer only when a good share of the ring is filled; otherwise
 * user space drains it on its own timer. Never a wake-up per event. */
static __always_inline __u64 ring__wakeup_flag(void)
{
    return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
                                                                          : BPF_RB_NO_WAKEUP;
}

static __always_inline int ring__output(void *record, __u64 size, __u64 flags)
{
    long err = bpf_ringbuf_output(&events, record, size, flags);
    if (err)
        counter__add(SONDE_KCOUNTER_RINGBUF_FULL, 1);
    return err;
}

static __always_inline bool entry__ignored(const struct sonde_tracked_pid *entry)
{
    return entry && (entry->flags & SONDE_TRACKED_IGNORED);
}

/* The filter entry of a process whose calls are reported; NULL otherwise. */
static __always_inline struct sonde_tracked_pid *tracked__entry(__u32 tgid)
{
    struct sonde_tracked_pid *entry = bpf_map_lookup_elem(&tracked_pids, &tgid);
    return entry && !entry__ignored(entry) ? entry : NULL;
}

static __always_inline bool pid__tracked(__u32 tgid)
{
    return tracked__entry(tgid) != NULL;
}

/* Adds a PID to the filter before user space has confirmed it; user space
 * confirms or removes it. False when the PID already has an entry (tracked,
 * or ignored), unless `forked`: a process just forked has no past. */
static __always_inline bool track__provisionally(__u32 tgid, bool forked)
{
    struct sonde_tracked_pid provisional = {};
    provisional.since_ns = bpf_ktime_get_ns();
    provisional.flags = SONDE_TRACKED_PROVISIONAL | (forked ? SONDE_TRACKED_FORKED : 0);
    return bpf_map_update_elem(&tracked_pids, &tgid, &provisional,
                               forked ? BPF_ANY : BPF_NOEXIST) == 0;
}

/* An ignored process that exits frees its pid; one that execs may be another
 * program now, and so may an unconfirmed fork child (SONDE_TRACKED_FORKED). */
static __always_inline void ignored__forget(__u32 tgid, bool exec)
{
    const struct sonde_tracked_pid *entry = bpf_map_lookup_elem(&tracked_pids, &tgid);
    if (entry__ignored(entry) || (exec && entry && (entry->flags & SONDE_TRACKED_FORKED)))
        bpf_map_delete_elem(&tracked_pids, &tgid);
}

static __always_inline bool sock_head__contiguous(void)
{
    return bpf_core_field_offset(struct sock_common, skc_rcv_saddr) ==
               bpf_core_field_offset(struct sock_common, skc_daddr) + 4 &&
           bpf_core_field_offset(struct sock_common, skc_dport) ==
               bpf_core_field_offset(struct sock_common, skc_daddr) + 12 &&
           bpf_core_field_offset(struct sock_common, skc_num) ==
               bpf_core_field_offset(struct sock_common, skc_daddr) + 14 &&
           bpf_core_field_offset(struct sock_common, skc_family) ==
               bpf_core_field_offset(struct sock_common, skc_daddr) + 16;
}

static __always_inline int sock_head__read(struct sock *sk, struct sock_head *h)
{
    if (has_rdonly_cast) {
        struct sock *s = kernel__cast(sk, struct sock);
        h->daddr = s->__sk_common.skc_daddr;
        h->rcv_saddr = s->__sk_common.skc_rcv_saddr;
        h->dport = s->__sk_common.skc_dport;
        h->num = s->__sk_common.skc_num;
        h->family = s->__sk_common.skc_family;
        return 0;
    }
    if (sock_head__contiguous())
        return bpf_probe_read_kernel(h, sizeof(*h), &sk->__sk_common.skc_daddr);
    h->daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    h->rcv_saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
    h->dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
    h->num = BPF_CORE_READ(sk, __sk_common.skc_num);
    h->family = BPF_CORE_READ(sk, __sk_common.skc_family);
    return 0;
}

/* sk_protocol and sk_type, in one copy where they are adjacent u16s (5.6+). */
static __always_inline bool sock__is_tcp_stream(struct sock *sk)
{
    if (has_rdonly_cast) {
        struct sock *s = kernel__cast(sk, struct sock);
        return s->sk_protocol == IPPROTO_TCP && s->sk_type == SOCK_STREAM;
    }
    if (bpf_core_field_size(struct sock, sk_protocol) == 2 &&
        bpf_core_field_offset(struct sock, sk_type) ==
            bpf_core_field_offset(struct sock, sk_protocol) + 2) {
        __u16 pt[2] = {};
        if (bpf_probe_read_kernel(pt, sizeof(pt), &sk->sk_protocol))
            return false;
        return pt[0] == IPPROTO_TCP && pt[1] == SOCK_STREAM;
    }
    return BPF_CORE_READ(sk, sk_type) == SOCK_STREAM && BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

/* fd -> struct sock *, only for TCP stream sockets of the IP families; `head`
 * gets the socket's addresses and ports. The task's fd table is reached with
 * plain loads through BTF pointers; the fd's slot and what it points to, with
 * guarded loads where bpf_rdonly_cast exists, helper reads otherwise. */
static __always_inline struct sock *sock__from_fd(int fd, struct sock_head *head)
{
    if (fd < 0)
        return NULL;
    struct task_struct *task = bpf_get_current_task_btf();
    struct files_struct *files = task->files;
    if (!files)
        return NULL;
    struct fdtable *fdt = files->fdt;
    if (!fdt)
        return NULL;
    if ((unsigned int)fd >= fdt->max_fds)
        return NULL;
    struct file **fds = fdt->fd;
    struct file *file = NULL;
    if (has_rdonly_cast) {
        /* The slot is an array element at a variable index, which a BTF
         * pointer cannot reach: the slot's address is cast to a one-pointer
         * struct instead, so the load is guarded like the others and costs no
         * helper call (this runs on every data syscall, files included). */
        struct llist_node *slot = kernel__cast(&fds[fd], struct llist_node);
        file = (struct file *)slot->next;
    } else if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd])) {
        return NULL;
    }
    if (!file)
        return NULL;
    struct sock *sk = NULL;
    if (has_rdonly_cast) {
        struct file *f = kernel__cast(file, struct file);
        if ((f->f_inode->i_mode & S_IFMT) != S_IFSOCK)
            return NULL;
        struct socket *socket = kernel__cast(f->private_data, struct socket);
        sk = (struct sock *)(unsigned long)socket->sk;
    } else {
        umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
        if ((mode & S_IFMT) != S_IFSOCK)
            return NULL;
        struct socket *socket = BPF_CORE_READ(file, private_data);
        if (!socket)
            return NULL;
        sk = BPF_CORE_READ(socket, sk);
    }
    if (!sk || sock_head__read(sk, head))
        return NULL;
    if (head->family != AF_INET && head->family != AF_INET6)
        return NULL;
    if (!sock__is_tcp_stream(sk))
        return NULL;
    return sk;
}

static __always_inline void addr__map_v4(__u8 out[16], __be32 v4)
{
    __builtin_memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    __builtin_memcpy(&out[12], &v4, 4);
}

static __always_inline void tuple__fill(struct sonde_conn_tuple *t, struct sock *sk,
                                        const struct sock_head *head)
{
    t->family = head->family;
    t->local_port = head->num;
    t->peer_port = bpf_ntohs(head->dport);
    if (head->family == AF_INET) {
        addr__map_v4(t->local_addr, head->rcv_saddr);
        addr__map_v4(t->peer_addr, head->daddr);
    } else {
        BPF_CORE_READ_INTO(&t->local_addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
        BPF_CORE_READ_INTO(&t->peer_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
    }
    t->_pad0 = 0;
}

/* For a socket known only by its address (a remembered SSL socket). */
static __always_inline void tuple__from_sock(struct sonde_conn_tuple *t, struct sock *sk)
{
    struct sock_head head = {};
    if (sock_head__read(sk, &head) == 0)
        tuple__fill(t, sk, &head);
}

static __always_inline void header__fill(struct sonde_event_header *h, __u8 type, __u64 pid_tgid,
                                         __u64 ts_enter, __u64 ts_exit)
{
    struct task_struct *task = bpf_get_current_task_btf();
    h->type = type;
    h->_pad0[0] = h->_pad0[1] = h->_pad0[2] = 0;
    h->pid = pid_tgid >> 32;
    h->tid = (__u32)pid_tgid;
    h->_pad1 = 0;
    h->proc_start_ns = task->group_leader->start_time; /* BTF pointers: plain loads */
    h->ts_enter_ns = ts_enter;
    h->ts_exit_ns = ts_exit;
}

static __always_inline bool syscall__is_ingress(__u8 sc)
{
    return sc == SONDE_SYS_READ || sc == SONDE_SYS_READV || sc == SONDE_SYS_RECVFROM ||
           sc == SONDE_SYS_RECVMSG || sc == SONDE_SYS_SSL_READ;
}

static __always_inline void emit__conn(__u64 pid_tgid, __u64 ts_enter, __u64 ts_exit,
                                       struct sock *sk, const struct sock_head *head, int fd,
                                       __u8 role, __u8 sc)
{
    struct sonde_conn_event ev = {};
    header__fill(&ev.hdr, sc == SONDE_SYS_CLOSE ? SONDE_EVENT_CONN_CLOSE : SONDE_EVENT_CONN_OPEN,
                 pid_tgid, ts_enter, ts_exit);
    tuple__fill(&ev.tuple, sk, head);
    ev.fd = fd;
    ev.role = role;
    ev.syscall = sc;
    ev.socket_cookie = (__u64)sk;
    if (!ring__output(&ev, sizeof(ev), ring__wakeup_flag()))
        counter__add(SONDE_KCOUNTER_CONTROL_EVENTS, 1);
}

/* Discovery signals are rare and time-sensitive: they wake the consumer.
 * The wake-up must be forced: the ring's adaptive notification stays silent
 * while the consumer lags behind earlier NO_WAKEUP records, and user space
 * must read /proc for a short-lived client before it exits. */
static __always_inline void emit__proc(__u8 type, __u64 pid_tgid, __u16 port)
{
    struct sonde_proc_event ev = {};
    __u64 now = bpf_ktime_get_ns();
    header__fill(&ev.hdr, type, pid_tgid, now, now);
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    ev.ppid = BPF_CORE_READ(task, real_parent, tgid);
    ev.port = port;
    if (!ring__output(&ev, sizeof(ev), BPF_RB_FORCE_WAKEUP))
        counter__add(SONDE_KCOUNTER_CONTROL_EVENTS, 1);
}

/* Copies up to `limit` bytes from user memory to data[offset]. Returns the
 * number copied (0 on fault, which is counted). */
static __always_inline __u32 capture__copy(struct data_scratch *s, __u32 offset, __u64 src,
                                           __u64 want)
{
    __u32 room = capture_limit;
    if (room > SONDE_MAX_CAPTURE)
        room = SONDE_MAX_CAPTURE;
    if (offset >= room)
        return 0;
    room -= offset;
    __u32 n = want < room ? (__u32)want : room;
    offset &= SONDE_MAX_CAPTURE - 1;
    if (n == 0)
        return 0;
    /* n <= room already; the mask restates a bound the verifier can see on
     * the very register passed to the helper (the compiler would otherwise
     * reuse an unbounded copy). */
    __u64 len = n;
    asm volatile("%[len] &= %[mask]" : [len] "+r"(len) : [mask] "i"(2 * SONDE_MAX_CAPTURE - 1));
    if (bpf_probe_read_user(&s->event.data[offset], len, (const void *)src)) {
        counter__add(SONDE_KCOUNTER_READ_USER_FAILED, 1);
        return 0;
    }
    return n;
}

/* One iovec of the walk: copies its bytes after those already captured.
 * Returns 1 to stop (end of the payload, budget spent, or a fault). Used as a
 * bpf_loop callback, which the verifier checks once, whatever the count. */
static long capture__iovec_step(__u32 i, void *unused)
{
    __u32 zero = 0;
    struct data_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
    if (!s)
        return 1;
    struct iovec_walk *w = &s->walk;
    if (i >= w->iovcnt || w->scanned >= w->total || w->offset >= capture_limit)
        return 1;
    struct iovec iov = {};
    if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)(w->iov_ptr + i * sizeof(iov)))) {
        counter__add(SONDE_KCOUNTER_READ_USER_FAILED, 1);
        return 1;
    }
    __u64 left = w->total - w->scanned;
    __u64 len = iov.iov_len < left ? iov.iov_len : left;
    __u32 got = capture__copy(s, w->offset, (__u64)iov.iov_base, len);
    w->offset += got;
    if (got < len)
        return 1; /* the captured stream ends here: a gap would follow */
    w->scanned += len;
    return 0;
}

/* Iovec arrays up to this long are read from user memory at once. */
#define SONDE_IOVEC_BATCH 4

/* Describes `iovcnt` iovecs covering `total` bytes as one segment: their bytes
 * are copied back to back while the capture budget lasts, so a write made of
 * many small iovecs (gRPC's HTTP/2 frames, one per header field) is captured
 * as the contiguous stream it is. What follows the budget, a fault or the
 * last walked iovec is counted as uncaptured. */
static __always_inline __u32 capture__iovec(struct data_scratch *s, __u64 iov_ptr, __u64 iovcnt,
                                            __u64 total)
{
    struct iovec_walk *w = &s->walk;
    w->iov_ptr = iov_ptr;
    w->iovcnt = iovcnt;
    w->total = total;
    w->scanned = 0;
    w->offset = 0;
    if (iovcnt > 0 && iovcnt <= SONDE_IOVEC_BATCH) {
        /* The common short array (a server's head and body) in one read of user
         * memory instead of one per iovec. */
        struct iovec iovs[SONDE_IOVEC_BATCH] = {};
        __u64 bytes = iovcnt * sizeof(struct iovec);
        asm volatile("%[b] &= %[mask]"
                     : [b] "+r"(bytes)
                     : [mask] "i"(2 * SONDE_IOVEC_BATCH * sizeof(struct iovec) - 1));
        if (bytes > sizeof(iovs) || bpf_probe_read_user(iovs, bytes, (const void *)iov_ptr)) {
            counter__add(SONDE_KCOUNTER_READ_USER_FAILED, 1);
            iovcnt = 0;
        }
#pragma unroll
        for (__u32 i = 0; i < SONDE_IOVEC_BATCH; i++) {
            if (i >= iovcnt || w->scanned >= total)
                break;
            __u64 left = total - w->scanned;
            __u64 len = iovs[i].iov_len < left ? iovs[i].iov_len : left;
            __u32 got = capture__copy(s, w->offset, (__u64)iovs[i].iov_base, len);
            w->offset += got;
            if (got < len)
                break;
            w->scanned += len;
        }
    } else if (has_bpf_loop) {
        bpf_loop(SONDE_MAX_TAIL_SCAN_IOVECS, capture__iovec_step, NULL, 0);
    } else {
        /* Before Linux 5.17 an open loop this long is beyond the verifier's budget. */
        for (__u32 i = 0; i < SONDE_MAX_IOVECS_WITHOUT_BPF_LOOP; i++) {
            if (capture__iovec_step(i, NULL))
                break;
        }
    }
    __u32 captured = w->offset;
    if (captured > SONDE_MAX_CAPTURE)
        captured = SONDE_MAX_CAPTURE;
    s->event.head.segments[0].captured = captured;
    s->event.head.segments[0].length = (__u32)total;
    s->event.head.segment_count = 1;
    return captured;
}

/* Copies the last bytes of a buffer that ends at `end` and holds `avail`
 * bytes. Two fixed shapes keep the verifier's view simple: a full tail, or
 * a short one below SONDE_TAIL_BYTES. */
static __always_inline void capture__tail(struct sonde_data_event *ev, __u64 end, __u64 avail)
{
    ev->head.tail_length = 0;
    if (avail >= SONDE_TAIL_BYTES) {
        if (bpf_probe_read_user(ev->head.tail, SONDE_TAIL_BYTES, (const void *)(end - SONDE_TAIL_BYTES)) == 0)
            ev->head.tail_length = SONDE_TAIL_BYTES;
        return;
    }
    __u64 len = avail;
    asm volatile("%[len] &= %[mask]" : [len] "+r"(len) : [mask] "i"(SONDE_TAIL_BYTES - 1));
    if (len && bpf_probe_read_user(ev->head.tail, len, (const void *)(end - len)) == 0)
        ev->head.tail_length = len;
}

/* The tail of an iovec payload: find the iovec holding byte `total`. */
static __always_inline void capture__iovec_tail(struct sonde_data_event *ev, __u64 iov_ptr,
                                                __u64 iovcnt, __u64 total)
{
    __u64 seen = 0;
    ev->head.tail_length = 0;
    for (__u32 i = 0; i < SONDE_MAX_TAIL_SCAN_IOVECS; i++) {
        if (i >= iovcnt)
            return;
        struct iovec iov = {};
        if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)(iov_ptr + i * sizeof(iov))))
            return;
        if (seen + iov.iov_len >= total) {
            __u64 used = total - seen;
            capture__tail(ev, (__u64)iov.iov_base + used, used);
            return;
        }
        seen += iov.iov_len;
    }
}

/* Builds the record of a finished call with `ret` > 0 bytes in the per-CPU
 * scratch; returns its size. */
static __always_inline __u64 data__build(struct data_scratch *s, __u64 pid_tgid,
                                         struct data_call *call, long ret)
{
    struct sonde_data_event *ev = &s->event;
    header__fill(&ev->head.hdr, SONDE_EVENT_DATA, pid_tgid, call->ts_enter_ns, call->ts_exit_ns);
    if (call->head.family)
        tuple__fill(&ev->head.tuple, (struct sock *)call->sock, &call->head);
    else
        tuple__from_sock(&ev->head.tuple, (struct sock *)call->sock);
    ev->head.fd = call->fd;
    ev->head.direction = syscall__is_ingress(call->syscall) ? SONDE_DIR_INGRESS : SONDE_DIR_EGRESS;
    ev->head.syscall = call->syscall;
    ev->head._pad0 = 0;
    __builtin_memset(ev->head._pad1, 0, sizeof(ev->head._pad1));
    ev->head.socket_cookie = call->sock;
    ev->head.total_length = (__u32)ret;
    __builtin_memset(ev->head.segments, 0, sizeof(ev->head.segments));

    __u32 captured = 0;
    ev->head.tail_length = 0;
    if (call->kind == BUFFER_FLAT) {
        captured = capture__copy(s, 0, call->buffer, (__u64)ret);
        ev->head.segments[0].captured = captured;
        ev->head.segments[0].length = (__u32)ret;
        ev->head.segment_count = 1;
        if ((__u64)ret > captured)
            capture__tail(ev, call->buffer + (__u64)ret, (__u64)ret);
    } else if (call->kind == BUFFER_IOVEC) {
        captured = capture__iovec(s, call->buffer, call->count, (__u64)ret);
        if ((__u64)ret > captured)
            capture__iovec_tail(ev, call->buffer, call->count, (__u64)ret);
    } else if (call->kind == BUFFER_MSGHDR) {
        struct user_msghdr msg = {};
        if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)call->buffer) == 0) {
            captured = capture__iovec(s, (__u64)msg.msg_iov, msg.msg_iovlen, (__u64)ret);
            if ((__u64)ret > captured)
                capture__iovec_tail(ev, (__u64)msg.msg_iov, msg.msg_iovlen, (__u64)ret);
        } else {
            counter__add(SONDE_KCOUNTER_READ_USER_FAILED, 1);
            ev->head.segments[0].length = (__u32)ret;
            ev->head.segment_count = 1;
        }
    } else {
        ev->head.segments[0].length = (__u32)ret;
        ev->head.segment_count = 1;
    }
    if (captured > SONDE_MAX_CAPTURE)
        captured = SONDE_MAX_CAPTURE;
    ev->head.captured_length = captured;
    __u64 size = SONDE_DATA_EVENT_HEADER_BYTES + captured;
    if (size > sizeof(struct sonde_data_event))
        size = sizeof(struct sonde_data_event);
    return size;
}

static __always_inline int data__emit(__u64 pid_tgid, struct data_call *call, long ret)
{
    /* Benchmark stages (constant at load time: the verifier drops the dead code). */
    if (bench_stage == SONDE_BENCH_STAGE_SOCKET)
        return 0;
    if (bench_stage == SONDE_BENCH_STAGE_HEADER)
        call->kind = BUFFER_NONE;
    __u32 zero = 0;
    struct data_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
    if (!s)
        return 0;
    __u64 size = data__build(s, pid_tgid, call, ret);
    if (bench_stage != SONDE_BENCH_STAGE_FULL)
        return 0;
    if (size && !ring__output(&s->event, size, ring__wakeup_flag()))
        counter__add(SONDE_KCOUNTER_DATA_EVENTS, 1);
    return 0;
}

/* `ssl` carries its ciphertext on `where`: later calls on it use that socket,
 * and the socket's own syscalls are no longer reported. The process's filter
 * entry records that it owns such entries: user space removes them when the
 * process is gone (a killed one calls neither SSL_free nor close()). */
static __always_inline void ssl__remember_socket(struct sonde_ssl_key *key,
                                                 struct ssl_socket *where)
{
    bpf_map_update_elem(&ssl_sockets, key, where, BPF_ANY);
    bpf_map_update_elem(&tls_sockets, &where->sock, &key->tgid, BPF_ANY);
    struct sonde_tracked_pid *entry = bpf_map_lookup_elem(&tracked_pids, &key->tgid);
    if (entry && !(entry->flags & SONDE_TRACKED_USED_TLS))
        entry->flags |= SONDE_TRACKED_USED_TLS;
}

/* The first write on a thread after a memory-buffer SSL_write whose socket was
 * unknown carries that call's ciphertext: report the cleartext on its socket. */
static __always_inline void ssl__flush_pending_write(__u64 pid_tgid, struct thread_state *st,
                                                     struct sock *sk,
                                                     const struct sock_head *head, int fd)
{
    st->pending_ssl_write = 0;
    struct sonde_data_event *ev = bpf_map_lookup_elem(&pending_ssl_writes, &pid_tgid);
    if (!ev)
        return;
    struct sonde_ssl_key key = {.ssl = ev->head.socket_cookie, .tgid = pid_tgid >> 32};
    struct ssl_socket where = {.sock = (__u64)sk, .fd = fd};
    ssl__remember_socket(&key, &where);
    tuple__fill(&ev->head.tuple, sk, head);
    ev->head.fd = where.fd;
    ev->head.socket_cookie = where.sock;
    /* Clamped here, not in a shared helper: the verifier needs the bound on
     * the very register passed to the ring (a shared copy lets the compiler
     * merge both clamps and lose it). */
    __u64 size = SONDE_DATA_EVENT_HEADER_BYTES + ev->head.captured_length;
    if (size > sizeof(struct sonde_data_event))
        size = sizeof(struct sonde_data_event);
    if (!ring__output(ev, size, ring__wakeup_flag()))
        counter__add(SONDE_KCOUNTER_DATA_EVENTS, 1);
    bpf_map_delete_elem(&pending_ssl_writes, &pid_tgid);
}

/* listen() by anyone, connect() to a watched port by an untracked process. */
static __always_inline int on_listen_enter(__u64 pid_tgid, int fd)
{
    if ((pid_tgid >> 32) == agent_pid)
        return 0;
    struct sock_head head = {};
    if (!sock__from_fd(fd, &head))
        return 0;
    __u16 port = head.num;
    /* A listener on a watched port is tracked at once, so that workers it
     * forks right after listen() inherit tracking (see sched_process_fork). */
    if (bpf_map_lookup_elem(&watched_ports, &port))
        track__provisionally(pid_tgid >> 32, false);
    emit__proc(SONDE_EVENT_LISTEN, pid_tgid, port);
    return 0;
}

/* A connect() to a watched port makes its process tracked at once, in the
 * kernel: a short-lived client (curl) would otherwise send its request before
 * user space could react. User space confirms the process (or untracks it)
 * when it reads the CONNECT_WATCHED record. Returns true when now tracked. */
static __always_inline bool on_untracked_connect(__u64 pid_tgid, __u64 addr_ptr, __u64 addr_len)
{
    if ((pid_tgid >> 32) == agent_pid || addr_len < 4)
        return false;
    struct {
        __u16 family;
        __be16 port;
    } head = {};
    if (bpf_probe_read_user(&head, sizeof(head), (const void *)addr_ptr))
        return false;
    if (head.family != AF_INET && head.family != AF_INET6)
        return false;
    __u16 port = bpf_ntohs(head.port);
    if (!bpf_map_lookup_elem(&watched_ports, &port))
        return false;
    if (!track__provisionally(pid_tgid >> 32, false))
        return false;
    emit__proc(SONDE_EVENT_CONNECT_WATCHED, pid_tgid, port);
    return true;
}

/* Whether a process's sockets may be in tls_sockets: it has used TLS. */
static __always_inline bool entry__used_tls(const struct sonde_tracked_pid *entry)
{
    return entry && (entry->flags & SONDE_TRACKED_USED_TLS);
}

/* A connection starts (accept, connect) or ends (close) on `fd`: its socket
 * carries no TLS until a uprobe says so, and user space gets a record. Only a
 * process that has used TLS can have marked a socket (ssl__remember_socket
 * sets the flag with the mark), so only its boundaries pay for the delete, a
 * locked hash operation, twice per connection otherwise. A mark left behind
 * by another process on a reused socket address is removed by user space
 * when that process exits, and matters only to a process that uses TLS. */
static __always_inline int conn__boundary(__u64 pid_tgid, int fd, __u8 role, __u8 sc,
                                          bool used_tls)
{
    struct sock_head head = {};
    struct sock *sk = sock__from_fd(fd, &head);
    if (!sk)
        return 0;
    __u64 key = (__u64)sk;
    if (used_tls)
        bpf_map_delete_elem(&tls_sockets, &key);
    __u64 now = bpf_ktime_get_ns();
    emit__conn(pid_tgid, now, now, sk, &head, fd, role, sc);
    return 0;
}

/* Entry does as little as it can: everything about a call is known at its
 * exit (arguments from the saved registers, result, socket) except when a
 * send started, and, for close(), the socket the fd named. Receives, accept
 * and connect are not looked at here at all. */
static __always_inline int on_sys_enter(__u8 sc, int fd)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (sc == SONDE_SYS_LISTEN)
        return on_listen_enter(pid_tgid, fd);
    /* Otherwise close() or a send (syscall__hooked_at_entry; mmap has its own handler). */
    const struct sonde_tracked_pid *entry = tracked__entry(pid_tgid >> 32);
    if (!entry)
        return 0;
    if (sc == SONDE_SYS_CLOSE)
        return conn__boundary(pid_tgid, fd, SONDE_ROLE_UNKNOWN, sc, entry__used_tls(entry));
    struct thread_state *st = thread__state(true);
    if (st) {
        st->egress_enter_ns = bpf_ktime_get_ns();
        st->egress_syscall = sc;
    }
    return 0;
}

static __always_inline int on_accept_exit(__u8 sc, long ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (ret < 0)
        return 0;
    const struct sonde_tracked_pid *entry = tracked__entry(pid_tgid >> 32);
    if (!entry)
        return 0;
    return conn__boundary(pid_tgid, (int)ret, SONDE_ROLE_SERVER, sc, entry__used_tls(entry));
}

static __always_inline int on_connect_exit(long ret)
{
    if (ret != 0 && ret != -EINPROGRESS)
        return 0;
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    struct pt_regs *regs = syscall__regs();
    struct sonde_tracked_pid *entry = bpf_map_lookup_elem(&tracked_pids, &tgid);
    if (entry__ignored(entry))
        return 0; /* judged already: not a record per connection */
    if (!entry &&
        !on_untracked_connect(pid_tgid, PT_REGS_PARM2_SYSCALL(regs), PT_REGS_PARM3_SYSCALL(regs)))
        return 0;
    return conn__boundary(pid_tgid, (int)PT_REGS_PARM1_SYSCALL(regs), SONDE_ROLE_CLIENT,
                          SONDE_SYS_CONNECT, entry__used_tls(entry));
}

/* A syscall issued inside SSL_read/SSL_write moves that call's ciphertext:
 * its socket is the one the cleartext record belongs to. Learnt even from
 * calls that move nothing (a read that would block). */
static __always_inline void ssl__note_socket(struct thread_state *st, struct sock *sk, int fd)
{
    st->ssl.sock = (__u64)sk;
    st->ssl.fd = fd;
}

static __always_inline int on_data_exit(__u8 sc, long ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (ret <= 0) {
        /* Only an SSL call in flight cares; a thread without state has none. */
        struct thread_state *st = thread__state(false);
        if (st && st->ssl.op && !st->ssl.sock) {
            struct pt_regs *regs = syscall__regs();
            int fd = (int)PT_REGS_PARM1_SYSCALL(regs);
            struct sock_head head = {};
            struct sock *sk = sock__from_fd(fd, &head);
            if (sk)
                ssl__note_socket(st, sk, fd);
        }
        return 0;
    }
    const struct sonde_tracked_pid *entry = tracked__entry(pid_tgid >> 32);
    if (!entry)
        return 0;
    /* Only a process that has used TLS has sockets in tls_sockets (user space's
     * check of the record's connection backs this up). */
    const bool used_tls = entry__used_tls(entry);
    struct pt_regs *regs = syscall__regs();
    int fd = (int)PT_REGS_PARM1_SYSCALL(regs);
    struct data_call call = {};
    struct sock *sk = sock__from_fd(fd, &call.head);
    if (!sk)
        return 0;
    bool ingress = syscall__is_ingress(sc);
    struct thread_state *st = thread__state(ingress);

    call.ts_enter_ns = call.ts_exit_ns = bpf_ktime_get_ns();
    call.sock = (__u64)sk;
    call.fd = fd;
    call.syscall = sc;
    if (!ingress) {
        if (st && st->egress_syscall == sc)
            call.ts_enter_ns = st->egress_enter_ns;
        else
            counter__add(SONDE_KCOUNTER_ENTRY_MISSING, 1);
        if (st)
            st->egress_syscall = 0;
    }

    /* Ciphertext is not reported: inside an SSL call, the cleartext record the
     * uprobe's return emits needs this socket; on a socket known to carry TLS
     * (or named by a parked memory-buffer write) it is simply skipped. */
    if (st && st->ssl.op) {
        ssl__note_socket(st, sk, fd);
        counter__add(SONDE_KCOUNTER_TLS_CIPHERTEXT_SKIPPED, 1);
        return 0;
    }
    if (st && st->pending_ssl_write && !ingress) {
        ssl__flush_pending_write(pid_tgid, st, sk, &call.head, fd);
        counter__add(SONDE_KCOUNTER_TLS_CIPHERTEXT_SKIPPED, 1);
        return 0;
    }
    if (used_tls && bpf_map_lookup_elem(&tls_sockets, &call.sock)) {
        counter__add(SONDE_KCOUNTER_TLS_CIPHERTEXT_SKIPPED, 1);
        return 0;
    }
    if (ingress && st) {
        st->last_read.sock = call.sock;
        st->last_read.fd = fd;
    }

    switch (sc) {
    case SONDE_SYS_READ:
    case SONDE_SYS_WRITE:
    case SONDE_SYS_RECVFROM:
    case SONDE_SYS_SENDTO:
        call.kind = BUFFER_FLAT;
        call.buffer = PT_REGS_PARM2_SYSCALL(regs);
        call.count = PT_REGS_PARM3_SYSCALL(regs);
        break;
    case SONDE_SYS_READV:
    case SONDE_SYS_WRITEV:
        call.kind = BUFFER_IOVEC;
        call.buffer = PT_REGS_PARM2_SYSCALL(regs);
        call.count = PT_REGS_PARM3_SYSCALL(regs);
        break;
    case SONDE_SYS_RECVMSG:
    case SONDE_SYS_SENDMSG:
        call.kind = BUFFER_MSGHDR;
        call.buffer = PT_REGS_PARM2_SYSCALL(regs);
        break;
    default: /* sendfile: the length only */
        call.kind = BUFFER_NONE;
        break;
    }
    return data__emit(pid_tgid, &call, ret);
}

static __always_inline int on_sys_exit(__u8 sc, long ret)
{
    switch (sc) {
    case SONDE_SYS_ACCEPT:
    case SONDE_SYS_ACCEPT4:
        return on_accept_exit(sc, ret);
    case SONDE_SYS_CONNECT:
        return on_connect_exit(ret);
    default:
        return on_data_exit(sc, ret);
    }
}

/* ---- Family 1: per-syscall tracepoints (need tracefs to attach). Exits of
 * every data syscall, accept and connect; entries of sends (start time),
 * close (the socket is gone after it) and listen. */
#define SONDE_EXIT_TRACEPOINT(name, sc)                                                   \
    SEC("tracepoint/syscalls/sys_exit_" #name)                                            \
    int tp_exit_##name(struct trace_event_raw_sys_exit *ctx)                              \
    {                                                                                     \
        return on_sys_exit(sc, ctx->ret);                                                 \
    }
#define SONDE_ENTER_TRACEPOINT(name, sc)                                                  \
    SEC("tracepoint/syscalls/sys_enter_" #name)                                           \
    int tp_enter_##name(struct trace_event_raw_sys_enter *ctx)                            \
    {                                                                                     \
        return on_sys_enter(sc, (int)ctx->args[0]);                                       \
    }

SONDE_EXIT_TRACEPOINT(read, SONDE_SYS_READ)
SONDE_EXIT_TRACEPOINT(readv, SONDE_SYS_READV)
SONDE_EXIT_TRACEPOINT(recvfrom, SONDE_SYS_RECVFROM)
SONDE_EXIT_TRACEPOINT(recvmsg, SONDE_SYS_RECVMSG)
SONDE_EXIT_TRACEPOINT(write, SONDE_SYS_WRITE)
SONDE_EXIT_TRACEPOINT(writev, SONDE_SYS_WRITEV)
SONDE_EXIT_TRACEPOINT(sendto, SONDE_SYS_SENDTO)
SONDE_EXIT_TRACEPOINT(sendmsg, SONDE_SYS_SENDMSG)
SONDE_EXIT_TRACEPOINT(sendfile64, SONDE_SYS_SENDFILE)
SONDE_EXIT_TRACEPOINT(accept, SONDE_SYS_ACCEPT)
SONDE_EXIT_TRACEPOINT(accept4, SONDE_SYS_ACCEPT4)
SONDE_EXIT_TRACEPOINT(connect, SONDE_SYS_CONNECT)
SONDE_ENTER_TRACEPOINT(write, SONDE_SYS_WRITE)
SONDE_ENTER_TRACEPOINT(writev, SONDE_SYS_WRITEV)
SONDE_ENTER_TRACEPOINT(sendto, SONDE_SYS_SENDTO)
SONDE_ENTER_TRACEPOINT(sendmsg, SONDE_SYS_SENDMSG)
SONDE_ENTER_TRACEPOINT(sendfile64, SONDE_SYS_SENDFILE)
SONDE_ENTER_TRACEPOINT(close, SONDE_SYS_CLOSE)
SONDE_ENTER_TRACEPOINT(listen, SONDE_SYS_LISTEN)

/* ---- TLS libraries loaded later: an executable file mapping (dlopen) by a
 * tracked process makes user space look for TLS functions in it. */
static __always_inline int on_mmap_enter(__u64 prot, __u64 flags, __s64 fd)
{
    if (!(prot & PROT_EXEC) || (flags & MAP_ANONYMOUS) || fd < 0)
        return 0;
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (pid__tracked(pid_tgid >> 32))
        emit__proc(SONDE_EVENT_PROC_MAPPED_EXEC, pid_tgid, 0);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int tp_enter_mmap(struct trace_event_raw_sys_enter *ctx)
{
    return on_mmap_enter(ctx->args[2], ctx->args[3], (__s64)ctx->args[4]);
}

/* ---- Family 2: generic raw syscall tracepoints (no tracefs needed). */
#if defined(__TARGET_ARCH_x86)

SEC("raw_tp/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
    __u8 sc = syscall__from_nr((long)ctx->args[1]);
    if (!sc || !syscall__hooked_at_entry(sc))
        return 0;
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    if (sc == SONDE_SYS_MMAP) /* mmap(addr, len, prot, flags, fd, off) */
        return on_mmap_enter(BPF_CORE_READ(regs, dx), BPF_CORE_READ(regs, r10),
                             (__s64)BPF_CORE_READ(regs, r8));
    if (sc == SONDE_SYS_CLOSE || sc == SONDE_SYS_LISTEN)
        return on_sys_enter(sc, (int)BPF_CORE_READ(regs, di));
    return on_sys_enter(sc, -1);
}

SEC("raw_tp/sys_exit")
int raw_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    __u8 sc = syscall__from_nr(BPF_CORE_READ(regs, orig_ax));
    if (!sc || !syscall__hooked_at_exit(sc))
        return 0;
    return on_sys_exit(sc, (long)ctx->args[1]);
}
#endif

/* ---- TLS cleartext: uprobes on OpenSSL (libssl, or statically linked).
 *
 * Reads: entry saves the arguments; the return emits the cleartext (only the
 * return knows how many bytes arrived) as a data record on the socket the
 * ciphertext travels on.
 *
 * Writes: entry only. The cleartext and its length are arguments, and OpenSSL
 * sends all of it or fails (without SSL_MODE_ENABLE_PARTIAL_WRITE, which the
 * servers and clients probed here do not set), so the record is built at
 * entry: emitted at once when the SSL object's socket is known, else parked
 * until the thread's next socket write names it (the call's own ciphertext
 * for socket BIOs; for memory-buffer users such as Node, the write the runtime
 * issues right after). One trap per write instead of two. */

/* `ssl` carries its ciphertext on a socket: look it up for tgid. */
static __always_inline struct ssl_socket *ssl__known_socket(__u64 ssl, __u32 tgid)
{
    struct sonde_ssl_key key = {.ssl = ssl, .tgid = tgid};
    return bpf_map_lookup_elem(&ssl_sockets, &key);
}

static __always_inline int ssl__read_enter(__u64 ssl, __u64 buffer, __u64 result_ptr)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!pid__tracked(pid_tgid >> 32))
        return 0;
    struct thread_state *st = thread__state(true);
    if (!st)
        return 0;
    st->ssl.ssl = ssl;
    st->ssl.buffer = buffer;
    st->ssl.result_ptr = result_ptr;
    st->ssl.ts_enter_ns = bpf_ktime_get_ns();
    st->ssl.sock = 0;
    st->ssl.fd = -1;
    st->ssl.op = SSL_OP_READ;
    return 0;
}

static __always_inline int ssl__write_enter(__u64 ssl, __u64 buffer, __u64 num)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (num == 0 || num > 0x7fffffff || !pid__tracked(pid_tgid >> 32))
        return 0;
    struct data_call call = {};
    call.ts_enter_ns = call.ts_exit_ns = bpf_ktime_get_ns();
    call.buffer = buffer;
    call.count = num;
    call.fd = -1;
    call.syscall = SONDE_SYS_SSL_WRITE;
    call.kind = BUFFER_FLAT;
    struct ssl_socket *known = ssl__known_socket(ssl, pid_tgid >> 32);
    if (known) {
        call.sock = known->sock;
        call.fd = known->fd;
        return data__emit(pid_tgid, &call, (long)num);
    }
    struct thread_state *st = thread__state(true);
    __u32 zero = 0;
    struct data_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
    if (!st || !s)
        return 0;
    if (data__build(s, pid_tgid, &call, (long)num)) {
        s->event.head.socket_cookie = ssl;
        if (bpf_map_update_elem(&pending_ssl_writes, &pid_tgid, &s->event, BPF_ANY) == 0)
            st->pending_ssl_write = 1;
    }
    return 0;
}

static __always_inline int ssl__read_exit(long ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    struct thread_state *st = thread__state(false);
    if (!st || st->ssl.op != SSL_OP_READ)
        return 0;
    struct ssl_call c = st->ssl;
    st->ssl.op = 0;

    __u64 bytes = 0;
    if (c.result_ptr) {
        if (ret != 1 || bpf_probe_read_user(&bytes, sizeof(bytes), (const void *)c.result_ptr))
            bytes = 0;
    } else if (ret > 0) {
        bytes = (__u64)ret;
    }
    if (bytes > 0x7fffffff)
        bytes = 0;

    /* Which socket: one the call itself used (socket BIOs: the association is
     * learnt even from calls that return nothing), else the one this SSL object
     * used before, else, for a read that returned data, the thread's last read
     * (memory-buffer users read the ciphertext themselves just before; a failed
     * read proves nothing: Node's client calls SSL_read to start its handshake
     * before reading anything). */
    struct sonde_ssl_key key = {.ssl = c.ssl, .tgid = pid_tgid >> 32};
    struct ssl_socket where = {.sock = c.sock, .fd = c.fd};
    struct ssl_socket *known = ssl__known_socket(c.ssl, key.tgid);
    if (!where.sock && known)
        where = *known;
    if (!where.sock && bytes > 0)
        where = st->last_read;
    if (where.sock && (!known || known->sock != where.sock || known->fd != where.fd))
        ssl__remember_socket(&key, &where);
    if (bytes == 0)
        return 0;
    if (!where.sock) {
        counter__add(SONDE_KCOUNTER_TLS_SOCKET_UNKNOWN, 1);
        return 0;
    }
    struct data_call call = {};
    call.ts_enter_ns = c.ts_enter_ns;
    call.ts_exit_ns = bpf_ktime_get_ns();
    call.buffer = c.buffer;
    call.count = bytes;
    call.sock = where.sock;
    call.fd = where.fd;
    call.syscall = SONDE_SYS_SSL_READ;
    call.kind = BUFFER_FLAT;
    return data__emit(pid_tgid, &call, (long)bytes);
}

/* int SSL_read(SSL *ssl, void *buf, int num) */
SEC("uprobe")
int BPF_KPROBE(uprobe_ssl_read, void *ssl, void *buf)
{
    return ssl__read_enter((__u64)ssl, (__u64)buf, 0);
}

/* int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes) */
SEC("uprobe")
int BPF_KPROBE(uprobe_ssl_read_ex, void *ssl, void *buf, __u64 num, void *readbytes)
{
    return ssl__read_enter((__u64)ssl, (__u64)buf, (__u64)readbytes);
}

/* int SSL_write(SSL *ssl, const void *buf, int num) */
SEC("uprobe")
int BPF_KPROBE(uprobe_ssl_write, void *ssl, void *buf, int num)
{
    return num > 0 ? ssl__write_enter((__u64)ssl, (__u64)buf, (__u64)num) : 0;
}

/* int SSL_write_ex(SSL *ssl, const void *buf, size_t num, size_t *written) */
SEC("uprobe")
int BPF_KPROBE(uprobe_ssl_write_ex, void *ssl, void *buf, __u64 num)
{
    return ssl__write_enter((__u64)ssl, (__u64)buf, num);
}

/* One return probe serves both reads: the saved call says which it was. */
SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_ssl_read, int ret)
{
    return ssl__read_exit(ret);
}

/* void SSL_free(SSL *ssl): its address may be reused for another connection. */
SEC("uprobe")
int BPF_KPROBE(uprobe_ssl_free, void *ssl)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!pid__tracked(pid_tgid >> 32))
        return 0;
    struct sonde_ssl_key key = {.ssl = (__u64)ssl, .tgid = pid_tgid >> 32};
    bpf_map_delete_elem(&ssl_sockets, &key);
    return 0;
}

/* ---- Process lifecycle (real tracepoints: attachable as raw_tp without tracefs). */
SEC("raw_tp/sched_process_exec")
int raw_sched_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if ((pid_tgid >> 32) == agent_pid)
        return 0;
    ignored__forget(pid_tgid >> 32, true);
    emit__proc(SONDE_EVENT_PROC_EXEC, pid_tgid, 0);
    return 0;
}

/* Pre-forking servers (nginx, gunicorn) accept in children that never call
 * listen() or exec(): a child of a tracked process is tracked from birth. */
SEC("raw_tp/sched_process_fork")
int raw_sched_process_fork(struct bpf_raw_tracepoint_args *ctx)
{
    struct task_struct *parent = (struct task_struct *)ctx->args[0];
    struct task_struct *child = (struct task_struct *)ctx->args[1];
    __u32 parent_tgid = BPF_CORE_READ(parent, tgid);
    __u32 child_tgid = BPF_CORE_READ(child, tgid);
    __u32 child_pid = BPF_CORE_READ(child, pid);
    if (child_tgid == parent_tgid || child_pid != child_tgid || !pid__tracked(parent_tgid))
        return 0;
    track__provisionally(child_tgid, true);

    struct sonde_proc_event ev = {};
    ev.hdr.type = SONDE_EVENT_PROC_FORK;
    ev.hdr.pid = child_tgid;
    ev.hdr.tid = child_pid;
    ev.hdr.proc_start_ns = BPF_CORE_READ(child, start_time);
    ev.hdr.ts_enter_ns = ev.hdr.ts_exit_ns = bpf_ktime_get_ns();
    ev.ppid = parent_tgid;
    if (!ring__output(&ev, sizeof(ev), BPF_RB_FORCE_WAKEUP))
        counter__add(SONDE_KCOUNTER_CONTROL_EVENTS, 1);
    return 0;
}

SEC("raw_tp/sched_process_exit")
int raw_sched_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    bpf_map_delete_elem(&pending_ssl_writes, &pid_tgid); /* thread_states go with the thread */
    /* Only the group leader's exit ends the process. */
    if (tgid != (__u32)pid_tgid)
        return 0;
    ignored__forget(tgid, false);
    if (pid__tracked(tgid))
        emit__proc(SONDE_EVENT_PROC_EXIT, pid_tgid, 0);
    return 0;
}
