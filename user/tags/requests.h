/* requests.h - request counts per process and endpoint, from the counters
 * libdynotag keeps (requests[endpoint id], one increment per request).
 *
 * Counters are cumulative since each process started; the tracker turns them
 * into increases between polls. The first reading of a (process, endpoint)
 * is a baseline, not requests: requests count from when dynoprof sees the
 * process's tags, like the CPU time attributed to them (counting a new
 * process's earlier requests would set them against untagged CPU). Memory is bounded (baselines are forgotten all
 * at once past a limit, losing one poll interval of counts).
 */
#ifndef DYNOPROF_REQUESTS_H
#define DYNOPROF_REQUESTS_H

#include <stdint.h>
#include <sys/types.h>

#include "tags/tag_registry.h"

struct request_tracker;

struct request_tracker *request_tracker__new(void);
void request_tracker__free(struct request_tracker *t);

/* Reads the counters of every process the registry tracks; calls
 * fn(ctx, pid, endpoint, increase) for each increase since the last poll.
 * Returns the number of increases reported, or -ENOMEM. */
int request_tracker__poll(struct request_tracker *t, struct tag_registry *tags,
			  void (*fn)(void *ctx, pid_t pid, const char *endpoint, uint64_t requests),
			  void *ctx);

/* Forgets the baselines of processes tags no longer tracks (exited and
 * swept): they are never read again. Returns the baselines forgotten. */
size_t request_tracker__retain(struct request_tracker *t, const struct tag_registry *tags);

#endif
