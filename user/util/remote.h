/* remote.h - reading another process's memory, for the code that follows
 * processes (symbolizers, Python, tags). */
#ifndef DYNOPROF_REMOTE_H
#define DYNOPROF_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Copies len bytes at addr in process pid into buf with process_vm_readv
 * (root or CAP_SYS_PTRACE). Returns 0, -EFAULT on a short read (part of the
 * range unmapped), or -errno (-ESRCH: the process is gone). */
int remote_read(pid_t pid, uint64_t addr, void *buf, size_t len);

#endif
