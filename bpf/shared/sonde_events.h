/* The contract between Sonde's kernel programs and user space.
 *
 * This is the only file both sides include. Every record that crosses the
 * ring buffer starts with `struct sonde_event_header`, whose first byte is the
 * record type. Numbers in the enums are pinned: never renumber, only append.
 * Structs carry explicit padding so that clang (BPF) and the host compiler
 * agree on every offset; user space static_asserts sizes and offsets.
 *
 * Rules for evolving the schema: add fields only at the end of a struct, bump
 * SONDE_SCHEMA_VERSION, keep old type numbers meaning what they meant.
 */
#ifndef SONDE_BPF_SHARED_EVENTS_H
#define SONDE_BPF_SHARED_EVENTS_H

#ifdef __BPF__
/* vmlinux.h provides __u8 ... __u64 in the kernel build. */
#else
#include <linux/types.h>
#endif

#define SONDE_SCHEMA_VERSION 2

/* Upper bound of payload bytes copied out of one syscall. Must be a power of
 * two: the kernel side masks offsets with (SONDE_MAX_CAPTURE - 1). */
#define SONDE_MAX_CAPTURE 4096
/* A record describes its payload as at most this many segments (user space
 * accepts any count up to it). The kernel writes one: the iovecs' bytes copied
 * back to back as far as they go, the rest counted as uncaptured. */
#define SONDE_MAX_SEGMENTS 8
/* The last bytes of every payload are copied too, whatever its length: a
 * message that ends a syscall (a chunked body's "0\r\n\r\n") stays
 * recognisable when the bytes before it were not captured. */
#define SONDE_TAIL_BYTES 16
/* iovecs scanned per call: to capture the payload, and to find where it ends (tail). */
#define SONDE_MAX_TAIL_SCAN_IOVECS 64
/* iovecs captured per call on kernels without bpf_loop (before 5.17). */
#define SONDE_MAX_IOVECS_WITHOUT_BPF_LOOP 8

/* Map sizes, in one place. The per-connection TLS maps are LRU: at their
 * size the least recently used entry goes (a connection idle the longest). */
#define SONDE_MAX_TRACKED_PIDS 16384
#define SONDE_MAX_WATCHED_PORTS 1024
#define SONDE_MAX_SSL_SOCKETS 65536        /* ssl_sockets: SSL objects in use */
#define SONDE_MAX_TLS_SOCKETS 65536        /* tls_sockets: sockets carrying TLS */
#define SONDE_MAX_PENDING_SSL_WRITES 1024  /* pending_ssl_writes: one per thread, briefly */
#define SONDE_RINGBUF_BYTES (4u * 1024u * 1024u)
/* Backlog at which records force a wake-up of the consumer (they are written
 * without one below it), and at which user space gives its drain thread normal
 * CPU priority back (ebpf/consumer_priority.h). */
#define SONDE_RINGBUF_WAKEUP_BYTES (SONDE_RINGBUF_BYTES / 4)

enum sonde_event_type {
    SONDE_EVENT_DATA = 1,       /* bytes read from / written to a TCP socket */
    SONDE_EVENT_CONN_OPEN = 2,  /* accept()ed or connect()ed TCP socket */
    SONDE_EVENT_CONN_CLOSE = 3, /* close() of a TCP socket */
    SONDE_EVENT_PROC_EXEC = 4,  /* any process exec()ed (discovery input) */
    SONDE_EVENT_PROC_EXIT = 5,  /* a tracked process exited */
    SONDE_EVENT_LISTEN = 6,     /* any process called listen() on a TCP socket */
    SONDE_EVENT_CONNECT_WATCHED = 7, /* an untracked process connect()ed to a watched port */
    SONDE_EVENT_PROC_FORK = 8,  /* a tracked process forked a new process (pid = child) */
    SONDE_EVENT_PROC_MAPPED_EXEC = 9, /* a tracked process mapped a file executable (dlopen) */
};

enum sonde_direction {
    SONDE_DIR_INGRESS = 0, /* the process received these bytes */
    SONDE_DIR_EGRESS = 1,  /* the process sent these bytes */
};

enum sonde_conn_role {
    SONDE_ROLE_UNKNOWN = 0,
    SONDE_ROLE_SERVER = 1, /* socket came from accept() */
    SONDE_ROLE_CLIENT = 2, /* socket was connect()ed */
};

/* Which syscall produced a record; for diagnostics and tests. */
enum sonde_syscall {
    SONDE_SYS_READ = 1,
    SONDE_SYS_WRITE = 2,
    SONDE_SYS_READV = 3,
    SONDE_SYS_WRITEV = 4,
    SONDE_SYS_RECVFROM = 5,
    SONDE_SYS_SENDTO = 6,
    SONDE_SYS_RECVMSG = 7,
    SONDE_SYS_SENDMSG = 8,
    SONDE_SYS_ACCEPT = 9,
    SONDE_SYS_ACCEPT4 = 10,
    SONDE_SYS_CONNECT = 11,
    SONDE_SYS_CLOSE = 12,
    SONDE_SYS_SENDFILE = 13,
    SONDE_SYS_LISTEN = 14,
    /* Not syscalls: the cleartext of a TLS library call (uprobes on OpenSSL). The record's
     * socket is the one the library reads and writes the ciphertext on. */
    SONDE_SYS_SSL_READ = 15,
    SONDE_SYS_SSL_WRITE = 16,
    SONDE_SYS_MMAP = 17,
};

/* How far a data record gets: benchmark_kernel_stage (docs/performance.md).
 * Anything but FULL is for measuring where the per-request cost goes. */
enum sonde_bench_stage {
    SONDE_BENCH_STAGE_FULL = 0,    /* the product: records built and written to the ring */
    SONDE_BENCH_STAGE_SOCKET = 1,  /* socket and thread state resolved, no record */
    SONDE_BENCH_STAGE_HEADER = 2,  /* + record header built (no payload, not written) */
    SONDE_BENCH_STAGE_PAYLOAD = 3, /* + payload copied from user memory (not written) */
};

/* Kernel-side counters, one slot each in a per-CPU array. */
enum sonde_kernel_counter {
    SONDE_KCOUNTER_RINGBUF_FULL = 0,     /* records lost: ring buffer reservation failed */
    SONDE_KCOUNTER_DATA_EVENTS = 1,      /* data records emitted */
    SONDE_KCOUNTER_ENTRY_MISSING = 2,    /* send exit without its entry (start taken at exit) */
    SONDE_KCOUNTER_READ_USER_FAILED = 3, /* bpf_probe_read_user of payload failed */
    SONDE_KCOUNTER_CONTROL_EVENTS = 4,   /* open/close/exec/exit/listen records emitted */
    SONDE_KCOUNTER_TLS_CIPHERTEXT_SKIPPED = 5, /* syscalls on TLS sockets not reported */
    SONDE_KCOUNTER_TLS_SOCKET_UNKNOWN = 6, /* TLS cleartext dropped: its socket was not found */
    SONDE_KCOUNTER_COUNT = 7,
};

/* A TCP connection as the process sees it. IPv4 addresses are stored as
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) so that one layout serves both families. */
struct sonde_conn_tuple {
    __u8 local_addr[16];
    __u8 peer_addr[16];
    __u16 local_port; /* host byte order */
    __u16 peer_port;  /* host byte order */
    __u16 family;     /* AF_INET or AF_INET6 as the socket was created */
    __u16 _pad0;
};

struct sonde_event_header {
    __u8 type; /* enum sonde_event_type */
    __u8 _pad0[3];
    __u32 pid; /* thread group id */
    __u32 tid;
    __u32 _pad1;
    __u64 proc_start_ns; /* group leader's start_time (boot-relative), disambiguates pid reuse */
    __u64 ts_enter_ns;   /* bpf_ktime_get_ns() at syscall entry */
    __u64 ts_exit_ns;    /* bpf_ktime_get_ns() at syscall exit (== enter for one-shot hooks) */
};

struct sonde_segment {
    __u32 captured; /* bytes of this segment present in data[] */
    __u32 length;   /* bytes of this segment the syscall really moved */
};

/* One successful read/write-family syscall on a TCP socket of a tracked
 * process: the fixed part of its record. */
struct sonde_data_head {
    struct sonde_event_header hdr;
    struct sonde_conn_tuple tuple;
    __s32 fd;
    __u8 direction; /* enum sonde_direction */
    __u8 syscall;   /* enum sonde_syscall */
    __u8 segment_count;
    __u8 _pad0;
    __u64 socket_cookie; /* address of the kernel struct sock: equal for the same live socket */
    __u32 total_length;  /* bytes the syscall moved (its return value) */
    __u32 captured_length; /* bytes in data[] */
    struct sonde_segment segments[SONDE_MAX_SEGMENTS];
    __u8 tail_length; /* bytes in tail[]: the payload's last bytes, 0 if unknown */
    __u8 _pad1[7];
    __u8 tail[SONDE_TAIL_BYTES];
};

/* The record: data[] holds, back to back, the captured prefix of each
 * segment; only head and the captured bytes travel through the ring. */
struct sonde_data_event {
    struct sonde_data_head head;
    __u8 data[SONDE_MAX_CAPTURE];
};
#define SONDE_DATA_EVENT_HEADER_BYTES (sizeof(struct sonde_data_head))

/* accept/connect/close on a TCP socket of a tracked process. */
struct sonde_conn_event {
    struct sonde_event_header hdr;
    struct sonde_conn_tuple tuple;
    __s32 fd;
    __u8 role;    /* enum sonde_conn_role */
    __u8 syscall; /* enum sonde_syscall */
    __u8 _pad0[2];
    __u64 socket_cookie;
};

/* exec/exit of a process, listen() by any process, connect() to a watched
 * port by an untracked process: inputs of discovery. */
struct sonde_proc_event {
    struct sonde_event_header hdr;
    __u32 ppid;
    __u16 port; /* listen/connect port, host byte order; 0 otherwise */
    __u16 _pad0;
};

/* Value of the tracked_pids map: user space writes it, kernel reads it. */
struct sonde_tracked_pid {
    __u64 proc_start_ns;
    __u64 since_ns; /* CLOCK_MONOTONIC when the entry was written */
    __u32 flags;    /* SONDE_TRACKED_* */
    __u32 _pad0;
};
/* Written by the kernel on connect() to a watched port, before user space
 * has confirmed the process; user space removes unconfirmed ones. */
#define SONDE_TRACKED_PROVISIONAL 1u
/* Written by user space for a process it judged not to match after the kernel
 * tracked it provisionally: not tracked, and not tracked provisionally again
 * (no record, no wake-up per connect of an excluded client). The kernel drops
 * the entry when the process execs or exits; user space drops it when the pid
 * now names another process. */
#define SONDE_TRACKED_IGNORED 2u
/* Set by the kernel when the process's TLS calls put entries in the
 * per-connection maps (ssl_sockets, tls_sockets). A killed process calls
 * neither SSL_free nor close(): user space removes its entries when it removes
 * its filter entry, and keeps the flag when it rewrites the entry. */
#define SONDE_TRACKED_USED_TLS 4u
/* With PROVISIONAL: written by the kernel when a tracked process forks, for
 * the child. Until user space confirms the child (rewriting the entry), an
 * exec drops the entry like an ignored one: the child is another program now
 * (a shell's curl), whose connect() to a watched port must be seen as an
 * untracked process's, and user space will judge the new program anyway. */
#define SONDE_TRACKED_FORKED 8u

/* Key of the ssl_sockets map: the socket an SSL object (in one process) uses.
 * The tls_sockets map (sockets carrying TLS) is keyed by struct sock * and
 * holds the tgid of the process that marked it (__u32). */
struct sonde_ssl_key {
    __u64 ssl; /* SSL * */
    __u32 tgid;
    __u32 _pad0;
};

#endif /* SONDE_BPF_SHARED_EVENTS_H */
