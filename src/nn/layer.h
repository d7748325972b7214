/*
 * layer.h - what a layer kind is (internal): one row of the layer table.
 *
 * A model (cg_model) is a list of layers, like PyTorch's nn.Sequential.
 * Each layer kind lives in a file of its own under src/nn/layers/ and is
 * one row of CG_LAYER_KINDS (layers.c): adding a kind is that file plus
 * that row. A kind says
 *   - how it is written in a spec ("linear:128") - its arguments;
 *   - plan: from the input's shape (one item, no batch dim) and its
 *     arguments, the output's shape and the shapes of its tensors, with no
 *     allocation, so a model file's size can be checked before anything is
 *     allocated (model_file.c);
 *   - init: how its learned tensors start;
 *   - forward: the layer on a batch, built from autograd ops, so backward
 *     needs nothing of its own.
 */
#ifndef CGRAD_NN_LAYER_H
#define CGRAD_NN_LAYER_H

#include "cgrad_internal.h"

/* Largest width (features) of a layer: keeps every weight matrix inside
 * CG_MAX_NUMEL and catches nonsense like a negative width cast to int64. */
#define CG_LAYER_MAX_WIDTH ((int64_t)1 << 24)

/* An argument not given in the spec. */
#define CG_ARG_UNSET INT64_MIN

/* A tensor's shape, without the tensor. */
typedef struct cg_shape {
    int ndim;
    int64_t dims[CG_MAX_DIMS];
} cg_shape;

/* What plan works out: the layer's tensors' shapes. */
typedef struct cg_layer_plan {
    int n_params, n_state;
    cg_shape params[CG_LAYER_MAX_TENSORS], state[CG_LAYER_MAX_TENSORS];
    /* Bit k set: state[k] can never be negative (a running variance), so a
     * model file that says otherwise is refused on load. */
    unsigned nonneg_state;
} cg_layer_plan;

/* What a forward pass needs to know besides the input. */
typedef struct cg_forward_ctx {
    bool training; /* dropout drops, batch norm uses the batch's statistics */
    cg_rng *rng;   /* dropout's masks                                        */
} cg_forward_ctx;

struct cg_layer_kind {
    const char *name; /* as written in a spec and stored in a model file          */
    const char *args; /* one letter per spec argument: 'i' integer, 'f' real      */
    int n_required;   /* how many of them must be given                          */
    const char *help; /* "linear:OUT  x @ w + b, OUT features", for usage texts  */
    bool images;      /* takes images [C, H, W] (a model starting with it does)  */
    /* Fills l->out_shape from l->in_shape and the arguments (checking both;
     * cg_fail naming the layer otherwise) and *p with its tensors' shapes. */
    cg_status (*plan)(cg_layer *l, cg_layer_plan *p);
    /* Fills the learned tensors (NULL: nothing to fill). before_relu: the
     * next layer is a ReLU (for CG_INIT_KAIMING). */
    void (*init)(cg_layer *l, cg_init init, float std, bool before_relu, cg_rng *rng);
    /* x [N, ...in_shape] -> [N, ...out_shape]. */
    cg_tensor *(*forward)(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx);
};

/* The table (layers.c); NULL-terminated. */
extern const cg_layer_kind *const CG_LAYER_KINDS[];
/* The kind called `name`, or NULL. */
const cg_layer_kind *cg_layer_kind_find(const char *name);

/* The rows, each defined in src/nn/layers/<file>.c. */
extern const cg_layer_kind CG_LAYER_LINEAR, CG_LAYER_RELU, CG_LAYER_SIGMOID, CG_LAYER_FLATTEN,
    CG_LAYER_DROPOUT, CG_LAYER_BATCHNORM, CG_LAYER_MAXPOOL, CG_LAYER_AVGPOOL, CG_LAYER_GAP,
    CG_LAYER_CONV, CG_LAYER_RESIDUAL;

/* Shared by the kinds: a weight w and bias b drawn as `init` says for a
 * layer with fan_in inputs per output (w first, element by element, then
 * b): NORMAL randn * std; PYTORCH U(-1/sqrt(fan_in), +) for both;
 * KAIMING before a ReLU w ~ N(0, 2/fan_in) and b = 0, else as PYTORCH. */
void cg_init_weight_bias(cg_tensor *w, cg_tensor *b, int64_t fan_in, cg_init init, float std,
                         bool before_relu, cg_rng *rng);
/* Shared by the kinds: an elementwise layer's plan (out = in, no tensors). */
cg_status cg_plan_same_shape(cg_layer *l, cg_layer_plan *p);
/* "[bs, 128]" for a shape of one item (messages, summaries). */
const char *cg_item_shape_str(const int64_t *shape, int ndim, char *buf, size_t size);

/* ---- models (model.c), for the file reader ---- */

/* Plans every layer of m (kinds and args set, m->in_shape set): each
 * layer's in/out shapes, the model's n_inputs/n_outputs, and every tensor's
 * shape into plans[0..n_layers). No allocation. */
cg_status cg_model_plan(cg_model *m, cg_layer_plan *plans);
/* Bytes of all the tensors the plans describe (weights and state). */
double cg_model_plan_bytes(const cg_model *m, const cg_layer_plan *plans);
/* Allocates every layer's tensors by their plans and links m->params;
 * fails up front (util/memory.h) when they cannot fit in memory. */
cg_status cg_model_alloc_tensors(cg_model *m, const cg_layer_plan *plans);
/* About the bytes one training step of batch bs needs beyond the model's
 * weights: each parameter's gradient and the optimizer's n_opt_states
 * buffers per parameter, and per item every layer's output, its gradient
 * and what its backward keeps (counted as three copies). */
double cg_model_train_bytes(const cg_model *m, int64_t bs, int n_opt_states);
/* A model with room for n layers (zeroed, eval mode), or NULL. */
cg_model *cg_model_alloc(int n_layers);
/* Steps 1 and 2 of building (model.c): the model's layers parsed from the
 * spec and planned, *plans (malloc'd, n_layers) their tensors' shapes;
 * nothing allocated for the tensors yet. NULL + cg_fail on a bad spec. */
cg_model *cg_model_parse(const char *spec, const char *name, const int64_t *in_shape,
                         int in_ndim, int64_t n_outputs, cg_layer_plan **plans);

/* ---- the learner (learner.c), for lr_find.c and interpret.c ---- */

/* Rows a no-graph pass over a split takes at a time (cg_model_evaluate's
 * chunks), so another pass gets the same outputs bit for bit. */
int64_t cg_eval_chunk(const cg_model *m);
/* Rows lo..lo+cnt of ds as a batch: a view of x when the split has floats,
 * else made from its bytes (idx: room for cnt indices). */
cg_tensor *cg_eval_rows(const cg_dataset *ds, int64_t lo, int64_t cnt, int64_t *idx);
/* The loss fits the model's outputs and the data's classes (cg_fail: how not). */
cg_status cg_check_loss(const cg_model *m, int n_classes, cg_loss_kind loss);

#endif /* CGRAD_NN_LAYER_H */
