/*
 * distributed.h - what the learner needs of a communicator beyond the
 * public cg_comm_* (include/cgrad/nn.h): the float collectives of a
 * training step. A NULL communicator, or one of one rank, makes each a
 * no-op, so the caller needs no special case.
 */
#ifndef CGRAD_NN_DISTRIBUTED_H
#define CGRAD_NN_DISTRIBUTED_H

#include "cgrad_internal.h"

/* In place, the sum over ranks of buf[0..n): the gradients' allreduce,
 * timed and counted for cg_comm_stats. */
cg_status cg_comm_allreduce_floats(cg_comm *c, float *buf, int64_t n);
/* Rank 0's buf[0..n) to every rank. */
cg_status cg_comm_bcast_floats(cg_comm *c, float *buf, int64_t n);
cg_status cg_comm_bcast_i64(cg_comm *c, int64_t *buf, int n);
/* The smallest of every rank's v. */
cg_status cg_comm_min_i64(cg_comm *c, int64_t *v);

#endif
