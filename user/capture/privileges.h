/* privileges.h - checks, before anything is loaded, that this process may load
 * BPF programs and open system-wide perf events, so the user gets one clear
 * line instead of a verifier or permission error deep in libbpf. */
#ifndef DYNOPROF_PRIVILEGES_H
#define DYNOPROF_PRIVILEGES_H

#include <stddef.h>
#include <stdint.h>

/* Capability bits (linux/capability.h) we need. */
#define CAPBIT_SYS_ADMIN 21
#define CAPBIT_PERFMON 38
#define CAPBIT_BPF 39

/* Returns 0 when the effective capabilities suffice (CAP_SYS_ADMIN, or both
 * CAP_BPF and CAP_PERFMON); else -EPERM with a message telling what to do. */
int privileges__check(char *err, size_t errlen);

/* The decision alone, from an effective capability mask (testable). */
int privileges__sufficient(uint64_t cap_effective);

#endif
