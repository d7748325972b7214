/*
 * memory.h - how much memory this process can still have (internal).
 *
 * A request that cannot fit (a model file whose header promises 40 GB, an
 * mlp with a hidden layer of 16 million units) should fail up front, in
 * milliseconds and with a message that says why, not after seconds of
 * allocation and paging, or by the kernel's OOM killer. What "can fit" is the
 * least of: the memory the kernel reports available (MemAvailable: free
 * memory plus caches it can drop), the cgroup's limit less its use (a
 * container, a Slurm job), the address-space limit (ulimit -v) less what is
 * mapped, and CGRAD_MEMORY_LIMIT (bytes, with an optional K/M/G suffix) for
 * a user who wants a tighter cap.
 */
#ifndef CGRAD_UTIL_MEMORY_H
#define CGRAD_UTIL_MEMORY_H

#include "cgrad_internal.h"

/* Bytes this process can still allocate and touch, as above; UINT64_MAX
 * when nothing says. */
uint64_t cg_memory_available(void);

/* CG_OK if `bytes` fit in cg_memory_available(); otherwise fails
 * CG_ERR_NOMEM with "<op>: <what> needs X MB, more than the Y MB
 * available (<where the limit comes from>)". */
cg_status cg_memory_check(const char *op, double bytes, const char *what);

#endif
