/* Syscall numbers the syscall hooks handle, as enum sonde_syscall; 0 for the
 * rest. Shared by Sonde's programs and the benchmark's probe floor, so that
 * both reject other syscalls with the same code. x86_64 numbers. */
#ifndef SONDE_BPF_SYSCALL_NUMBERS_H
#define SONDE_BPF_SYSCALL_NUMBERS_H

#include "sonde_events.h"

/* Send-family syscalls: their record starts at entry, the only thing noted there. */
static __always_inline bool syscall__is_egress_data(__u8 sc)
{
    return sc == SONDE_SYS_WRITE || sc == SONDE_SYS_WRITEV || sc == SONDE_SYS_SENDTO ||
           sc == SONDE_SYS_SENDMSG || sc == SONDE_SYS_SENDFILE;
}

/* Which hooked syscalls Sonde looks at on entry: the sends (start time),
 * close() (the fd still names the socket), listen() and mmap(). Every other
 * one is handled at exit only, where its arguments are still in the saved
 * registers. */
static __always_inline bool syscall__hooked_at_entry(__u8 sc)
{
    return sc == SONDE_SYS_CLOSE || sc == SONDE_SYS_LISTEN || sc == SONDE_SYS_MMAP ||
           syscall__is_egress_data(sc);
}

/* ... and on exit: everything but close(), listen() and mmap(). */
static __always_inline bool syscall__hooked_at_exit(__u8 sc)
{
    return sc != SONDE_SYS_CLOSE && sc != SONDE_SYS_LISTEN && sc != SONDE_SYS_MMAP;
}

#if defined(__TARGET_ARCH_x86)
static __always_inline __u8 syscall__from_nr(long nr)
{
    switch (nr) {
    case 0: return SONDE_SYS_READ;
    case 1: return SONDE_SYS_WRITE;
    case 3: return SONDE_SYS_CLOSE;
    case 9: return SONDE_SYS_MMAP;
    case 19: return SONDE_SYS_READV;
    case 20: return SONDE_SYS_WRITEV;
    case 40: return SONDE_SYS_SENDFILE;
    case 42: return SONDE_SYS_CONNECT;
    case 43: return SONDE_SYS_ACCEPT;
    case 44: return SONDE_SYS_SENDTO;
    case 45: return SONDE_SYS_RECVFROM;
    case 46: return SONDE_SYS_SENDMSG;
    case 47: return SONDE_SYS_RECVMSG;
    case 50: return SONDE_SYS_LISTEN;
    case 288: return SONDE_SYS_ACCEPT4;
    default: return 0;
    }
}
#endif

#endif
