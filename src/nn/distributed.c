/*
 * distributed.c - a group of processes training one model: the
 * communicator behind cg_fit_config.comm (data-parallel, as PyTorch's
 * DistributedDataParallel; the learner's side is in src/nn/learner.c).
 *
 * Built with MPI (cmake -DCGRAD_MPI=ON or AUTO with libopenmpi-dev found;
 * CGRAD_HAVE_MPI), a cg_comm wraps a duplicate of MPI_COMM_WORLD, so the
 * library's messages never mix with a caller's own on the world
 * communicator, with MPI_ERRORS_RETURN so a failed call comes back as a
 * cg_status rather than ending the process. Built without, the same
 * functions exist: cg_comm_mpi_world fails with a message, and everything
 * else treats its NULL as one process alone (rank 0 of 1), so the library
 * and the CLI have one code path and no MPI dependency.
 *
 * Open MPI is not linked but loaded on the first cg_comm_mpi_world
 * (src/util/lazy.h), as libcurl is for fetch: linked in, its seven
 * libraries would be loaded by every cgrad process, training alone or
 * not. Only mpi.h's types are used at compile time; its handles
 * (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are, in Open MPI, the
 * addresses of global objects, so they come from dlsym with the
 * functions.
 *
 * Why the ranks end with the same bits: every rank starts from rank 0's
 * weights, reduces the same gradient buffer with one MPI_Allreduce (Open
 * MPI's algorithms, ring or recursive doubling, hand every rank the same
 * sums; float addition is commutative, so a pair's a + b and b + a agree)
 * and takes the same deterministic optimizer step (tests/test_mpi.c checks
 * a hash of the weights across ranks each epoch).
 */
#include "nn/distributed.h"

#include <stdlib.h>

#ifdef CGRAD_HAVE_MPI
#include <mpi.h>

#include <dlfcn.h>

#include "util/lazy.h"
#endif

/* ------------------------------------------------------------------ */
/* What the launcher says, without starting MPI                        */
/* ------------------------------------------------------------------ */

/* The first of the variables that is set, as a number (-1: none). Open
 * MPI's mpirun sets OMPI_COMM_WORLD_*; MPICH's and Slurm's PMI-2 PMI_*;
 * srun sets SLURM_* for every task of a step whatever the MPI plugin. */
static long env_number(const char *const *names) {
    for (int i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        char *end;
        long n = v && *v ? strtol(v, &end, 10) : -1;
        if (v && *v && *end == '\0' && n >= 0) return n;
    }
    return -1;
}

int cg_comm_launched(int *rank) {
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS",
                                        NULL};
    static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID", NULL};
    long n = env_number(sizes), r = env_number(ranks);
    /* SLURM_PROCID alone is also set in a batch script's shell: only a
     * step's task count says srun started us. */
    if (n < 1 || r < 0 || r >= n) n = 1, r = 0;
    if (rank) *rank = (int)r;
    return (int)n;
}

/* ------------------------------------------------------------------ */
/* The communicator                                                    */
/* ------------------------------------------------------------------ */

struct cg_comm {
#ifdef CGRAD_HAVE_MPI
    MPI_Comm comm;
#endif
    int rank, size;
    bool peer_failed;
    int64_t calls, bytes; /* the gradient allreduce's figures */
    double seconds;
};

int cg_comm_rank(const cg_comm *c) { return c ? c->rank : 0; }
int cg_comm_size(const cg_comm *c) { return c ? c->size : 1; }
bool cg_comm_peer_failed(const cg_comm *c) { return c && c->peer_failed; }

void cg_comm_stats(const cg_comm *c, int64_t *calls, double *seconds, int64_t *bytes) {
    if (calls) *calls = c ? c->calls : 0;
    if (seconds) *seconds = c ? c->seconds : 0.0;
    if (bytes) *bytes = c ? c->bytes : 0;
}

#ifdef CGRAD_HAVE_MPI

/* The functions, then the objects whose addresses are the handles (typed
 * as functions here, as a lazy table holds; read back with handle()). */
#define MPI_FNS(X)                                                                                \
    X(initialized, MPI_Initialized, int, (int *))                                                 \
    X(finalized, MPI_Finalized, int, (int *))                                                     \
    X(init_thread, MPI_Init_thread, int, (int *, char ***, int, int *))                           \
    X(finalize, MPI_Finalize, int, (void))                                                        \
    X(comm_dup, MPI_Comm_dup, int, (MPI_Comm, MPI_Comm *))                                        \
    X(comm_free, MPI_Comm_free, int, (MPI_Comm *))                                                \
    X(comm_rank, MPI_Comm_rank, int, (MPI_Comm, int *))                                           \
    X(comm_size, MPI_Comm_size, int, (MPI_Comm, int *))                                           \
    X(comm_set_errhandler, MPI_Comm_set_errhandler, int, (MPI_Comm, MPI_Errhandler))              \
    X(error_string, MPI_Error_string, int, (int, char *, int *))                                  \
    X(allreduce, MPI_Allreduce, int, (const void *, void *, int, MPI_Datatype, MPI_Op, MPI_Comm)) \
    X(bcast, MPI_Bcast, int, (void *, int, MPI_Datatype, int, MPI_Comm))                          \
    X(comm_world, ompi_mpi_comm_world, void, (void))                                              \
    X(errors_return, ompi_mpi_errors_return, void, (void))                                        \
    X(type_float, ompi_mpi_float, void, (void))                                                   \
    X(type_double, ompi_mpi_double, void, (void))                                                 \
    X(type_int64, ompi_mpi_int64_t, void, (void))                                                 \
    X(op_sum, ompi_mpi_op_sum, void, (void))                                                      \
    X(op_min, ompi_mpi_op_min, void, (void))
CG_LAZY_TABLE(mpi_fns, mpi, MPI_FNS, "libopenmpi3", "libmpi.so.40", "libmpi.so");

/* The handles, set once by cg_comm_mpi_world. */
static struct {
    void *world, *errors_return, *type_float, *type_double, *type_int64, *op_sum, *op_min;
} h;
#define WORLD ((MPI_Comm)h.world)
#define FLOAT_T ((MPI_Datatype)h.type_float)
#define DOUBLE_T ((MPI_Datatype)h.type_double)
#define INT64_T ((MPI_Datatype)h.type_int64)
#define SUM_OP ((MPI_Op)h.op_sum)
#define MIN_OP ((MPI_Op)h.op_min)

/* A global object's address. A program that links Open MPI itself and
 * names MPI_COMM_WORLD has a copy of the object in its own data (a copy
 * relocation), and that copy is the one Open MPI uses: the global scope
 * (dlopen(NULL)) finds it first. Otherwise the table's address (its bytes,
 * as lazy.c fills it) is the library's own object. */
static void *handle_of(void *self, const char *name, void (*object)(void)) {
    void *p = self ? dlsym(self, name) : NULL;
    if (!p) memcpy(&p, &object, sizeof p);
    return p;
}

static void find_handles(void) {
    void *self = dlopen(NULL, RTLD_NOW);
    h.world = handle_of(self, "ompi_mpi_comm_world", mpi.comm_world);
    h.errors_return = handle_of(self, "ompi_mpi_errors_return", mpi.errors_return);
    h.type_float = handle_of(self, "ompi_mpi_float", mpi.type_float);
    h.type_double = handle_of(self, "ompi_mpi_double", mpi.type_double);
    h.type_int64 = handle_of(self, "ompi_mpi_int64_t", mpi.type_int64);
    h.op_sum = handle_of(self, "ompi_mpi_op_sum", mpi.op_sum);
    h.op_min = handle_of(self, "ompi_mpi_op_min", mpi.op_min);
    if (self) dlclose(self);
}

/* Communicators alive, and whether MPI was started here: the last one
 * freed ends what cg_comm_mpi_world began. */
static int live_comms;
static bool we_initialized;

/* CG_OK, or a failure naming the call and MPI's reason. */
static cg_status mpi_check(int rc, const char *call) {
    if (rc == MPI_SUCCESS) return CG_OK;
    char why[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (mpi.error_string(rc, why, &len) != MPI_SUCCESS) len = 0;
    why[len] = '\0';
    return cg_fail(CG_ERR_IO, "MPI: %s failed: %s", call, len ? why : "unknown error");
}

cg_comm *cg_comm_mpi_world(void) {
    if (cg_lazy_load(&mpi_lib, "MPI") != CG_OK) return NULL;
    find_handles();
    int inited = 0, finalized = 0;
    mpi.initialized(&inited);
    mpi.finalized(&finalized);
    if (finalized) {
        cg_fail(CG_ERR_STATE, "MPI: already finalized; a communicator cannot be made again");
        return NULL;
    }
    if (!inited) {
        int provided;
        if (mpi_check(mpi.init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided),
                      "MPI_Init_thread") != CG_OK)
            return NULL;
        we_initialized = true;
    }
    cg_comm *c = calloc(1, sizeof *c);
    if (!c) {
        cg_fail(CG_ERR_NOMEM, "MPI: out of memory");
        return NULL;
    }
    if (mpi_check(mpi.comm_dup(WORLD, &c->comm), "MPI_Comm_dup") != CG_OK) {
        free(c);
        return NULL;
    }
    mpi.comm_set_errhandler(c->comm, (MPI_Errhandler)h.errors_return);
    mpi.comm_rank(c->comm, &c->rank);
    mpi.comm_size(c->comm, &c->size);
    live_comms++;
    return c;
}

void cg_comm_free(cg_comm *c) {
    if (!c) return;
    mpi.comm_free(&c->comm);
    free(c);
    if (--live_comms == 0 && we_initialized) {
        mpi.finalize();
        we_initialized = false;
    }
}

/* MPI counts are ints: a buffer goes in pieces of at most 2^30. */
#define MPI_PIECE ((int64_t)1 << 30)

static cg_status allreduce(cg_comm *c, void *buf, int64_t n, MPI_Datatype type, size_t size,
                           MPI_Op op) {
    for (int64_t lo = 0; lo < n; lo += MPI_PIECE) {
        int k = (int)(n - lo < MPI_PIECE ? n - lo : MPI_PIECE);
        if (mpi_check(
                mpi.allreduce(MPI_IN_PLACE, (char *)buf + (size_t)lo * size, k, type, op, c->comm),
                "MPI_Allreduce") != CG_OK)
            return cg_last_status();
    }
    return CG_OK;
}

static cg_status bcast(cg_comm *c, void *buf, int64_t n, MPI_Datatype type, size_t size) {
    for (int64_t lo = 0; lo < n; lo += MPI_PIECE) {
        int k = (int)(n - lo < MPI_PIECE ? n - lo : MPI_PIECE);
        if (mpi_check(mpi.bcast((char *)buf + (size_t)lo * size, k, type, 0, c->comm),
                      "MPI_Bcast") != CG_OK)
            return cg_last_status();
    }
    return CG_OK;
}

cg_status cg_comm_allreduce_floats(cg_comm *c, float *buf, int64_t n) {
    if (!c || c->size < 2) return CG_OK;
    double t0 = cg_seconds();
    cg_status st = allreduce(c, buf, n, FLOAT_T, sizeof *buf, SUM_OP);
    c->seconds += cg_seconds() - t0;
    c->calls++;
    c->bytes += n * (int64_t)sizeof *buf;
    return st;
}

cg_status cg_comm_allreduce_sum(cg_comm *c, double *buf, int64_t n) {
    if (!c || c->size < 2) return CG_OK;
    if (!buf && n > 0) return cg_fail(CG_ERR_ARG, "MPI: allreduce of no buffer");
    return allreduce(c, buf, n, DOUBLE_T, sizeof *buf, SUM_OP);
}

cg_status cg_comm_min_i64(cg_comm *c, int64_t *v) {
    if (!c || c->size < 2) return CG_OK;
    return allreduce(c, v, 1, INT64_T, sizeof *v, MIN_OP);
}

cg_status cg_comm_bcast_floats(cg_comm *c, float *buf, int64_t n) {
    if (!c || c->size < 2) return CG_OK;
    return bcast(c, buf, n, FLOAT_T, sizeof *buf);
}

cg_status cg_comm_bcast_i64(cg_comm *c, int64_t *buf, int n) {
    if (!c || c->size < 2) return CG_OK;
    return bcast(c, buf, n, INT64_T, sizeof *buf);
}

#else /* built without MPI: only the one-process communicator, NULL */

cg_comm *cg_comm_mpi_world(void) {
    cg_fail(CG_ERR_STATE, "MPI: this cgrad was built without MPI (install libopenmpi-dev and "
                          "configure with cmake -DCGRAD_MPI=ON)");
    return NULL;
}

void cg_comm_free(cg_comm *c) { free(c); }

cg_status cg_comm_allreduce_floats(cg_comm *c, float *buf, int64_t n) {
    (void)c, (void)buf, (void)n;
    return CG_OK;
}
cg_status cg_comm_allreduce_sum(cg_comm *c, double *buf, int64_t n) {
    (void)c, (void)buf, (void)n;
    return CG_OK;
}
cg_status cg_comm_min_i64(cg_comm *c, int64_t *v) {
    (void)c, (void)v;
    return CG_OK;
}
cg_status cg_comm_bcast_floats(cg_comm *c, float *buf, int64_t n) {
    (void)c, (void)buf, (void)n;
    return CG_OK;
}
cg_status cg_comm_bcast_i64(cg_comm *c, int64_t *buf, int n) {
    (void)c, (void)buf, (void)n;
    return CG_OK;
}

#endif

/* ------------------------------------------------------------------ */
/* Agreeing on failure                                                 */
/* ------------------------------------------------------------------ */

/* One MIN over "my rank if I failed, else size": size when all are fine,
 * else the lowest failing rank, the one that prints. */
cg_status cg_comm_agree(cg_comm *c, cg_status local) {
    if (!c || c->size < 2) return local;
    c->peer_failed = false;
    int64_t first = local != CG_OK ? c->rank : c->size;
    /* Keep the local message: the collective may overwrite the error. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", local != CG_OK ? cg_last_error() : "");
    if (cg_comm_min_i64(c, &first) != CG_OK) return cg_last_status();
    if (first == c->size) return CG_OK;
    if (first == c->rank) return cg_fail(local, "%s", msg);
    c->peer_failed = true;
    return cg_fail(CG_ERR_STATE, "rank %lld of %d failed (its message is on its stderr)",
                   (long long)first, c->size);
}
