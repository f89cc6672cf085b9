/* privileges.h - which capabilities dynoprof needs, checked once at start.
 *
 * Two kinds: without CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) nothing can be
 * loaded, so privileges__check() refuses with one clear line instead of a
 * verifier or permission error deep in libbpf. Every other capability of the
 * full set costs part of the result when missing (Python frames, tags, kernel
 * names, ...): privileges__warn() names each one missing, once, with what it
 * costs, so a non-root run never loses data silently. With the full set
 * (PRIVILEGES_FULL, as `setcap` on the binary grants it) a non-root run gives
 * what root's gives; root has every capability.
 *
 * Capabilities come from capget(2) (the effective set of this thread).
 */
#ifndef DYNOPROF_PRIVILEGES_H
#define DYNOPROF_PRIVILEGES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Capability bits (linux/capability.h) dynoprof uses. */
#define CAPBIT_DAC_READ_SEARCH 2      /* read /proc/PID/environ (mode 0400) and
					 binaries in directories we cannot read */
#define CAPBIT_SYS_PTRACE 19          /* process_vm_readv, /proc/PID/maps, /root */
#define CAPBIT_SYS_ADMIN 21           /* stands in for BPF, PERFMON, CHECKPOINT_RESTORE */
#define CAPBIT_SYS_RESOURCE 24        /* raise RLIMIT_MEMLOCK (kernels before 5.11) */
#define CAPBIT_SYSLOG 34              /* real addresses in /proc/kallsyms */
#define CAPBIT_PERFMON 38             /* system-wide perf events, tracing BPF */
#define CAPBIT_BPF 39                 /* load BPF programs and maps */
#define CAPBIT_CHECKPOINT_RESTORE 40  /* open /proc/PID/map_files/ */

#define CAPMASK(bit) (1ULL << (bit))

/* Everything full function needs on kernels 5.11+ (memcg-accounted BPF
 * memory); older kernels also need CAP_SYS_RESOURCE. As `setcap` text:
 * PRIVILEGES_SETCAP. */
#define PRIVILEGES_FULL (CAPMASK(CAPBIT_BPF) | CAPMASK(CAPBIT_PERFMON) |		\
			 CAPMASK(CAPBIT_SYS_PTRACE) | CAPMASK(CAPBIT_DAC_READ_SEARCH) |	\
			 CAPMASK(CAPBIT_SYSLOG) | CAPMASK(CAPBIT_CHECKPOINT_RESTORE))
#define PRIVILEGES_SETCAP "cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search," \
			  "cap_syslog,cap_checkpoint_restore+ep"

/* What the host's settings make necessary, besides the capabilities. */
struct privileges_host {
	int kallsyms_open;   /* nonzero: kptr_restrict 0 and perf_event_paranoid <= 1,
				so /proc/kallsyms shows addresses without CAP_SYSLOG */
	int memlock_charged; /* nonzero: kernel before 5.11, BPF maps count against
				RLIMIT_MEMLOCK */
	int memlock_unlimited; /* nonzero: RLIMIT_MEMLOCK is already unlimited */
};

/* Reads the effective capability set of this thread into *cap. Returns 0 or
 * -errno (capget failed). */
int privileges__effective(uint64_t *cap);

/* Returns 0 when the effective capabilities suffice to load and attach
 * (CAP_SYS_ADMIN, or both CAP_BPF and CAP_PERFMON); else -EPERM with a message
 * telling what to do. 0 when capget fails (the kernel then decides). */
int privileges__check(char *err, size_t errlen);

/* The decision alone, from an effective capability mask (testable). */
int privileges__sufficient(uint64_t cap_effective);

/* The capabilities of the full set missing from cap_effective on a host like
 * host (CAP_SYS_ADMIN counting for those it stands in for). */
uint64_t privileges__missing(uint64_t cap_effective, const struct privileges_host *host);

/* Writes one line per capability in missing, "PREFIX warning: no CAP_X: COST",
 * to out, then one line with the setcap command for the full set when any was
 * missing. Returns the number of capabilities named. */
size_t privileges__describe_missing(uint64_t missing, const char *prefix, FILE *out);

/* Reads this host's settings (kernel version, sysctls, RLIMIT_MEMLOCK). */
void privileges__host(struct privileges_host *host);

/* At start: names on stderr, once each, the capabilities this process lacks
 * and what each costs (nothing when run as root). prefix: "dynoprof:" or
 * "dynoprof agent:". Returns the number named. */
size_t privileges__warn(const char *prefix);

#endif
