/*
 * cgrad/nn.h - models built from layers, losses, optimizers, learning-rate
 * schedules and the training loop (fit). Included by <cgrad.h>.
 *
 * The pieces, as fastai/PyTorch name them:
 *   cg_model       nn.Sequential: a list of layers (linear, relu, ...)
 *   cg_*_loss      F.cross_entropy, the book's mnist_loss, ...
 *   cg_optimizer   torch.optim.SGD / Adam / AdamW, with per-parameter state
 *   cg_schedule    constant, or fastai's fit_one_cycle
 *   cg_fit         Learner.fit: epochs of mini-batches, validation, a recorder
 *   cg_lr_find     Learner.lr_find: the learning-rate finder and its suggestions
 *   cg_interpret   ClassificationInterpretation: confusion matrix, top losses
 */
#ifndef CGRAD_NN_H
#define CGRAD_NN_H

#include <stdio.h>

#include "cgrad/core.h"
#include "cgrad/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Losses and metrics (src/nn/loss.c, src/nn/cross_entropy.c)          */
/* ------------------------------------------------------------------ */

/* The book's mnist_loss: mean(where(targets == 1, 1 - sigmoid(p), sigmoid(p))). */
cg_tensor *cg_mnist_loss(cg_tensor *preds, cg_tensor *targets);
/* Binary cross-entropy on logits, stable for large |p|:
 * mean(max(p,0) - p*t + log(1 + exp(-|p|))). */
cg_tensor *cg_bce_with_logits(cg_tensor *preds, cg_tensor *targets);
/* Fraction of rows where (sigmoid(p) > 0.5) == (t == 1), the book's batch_accuracy. */
float cg_binary_accuracy(const cg_tensor *preds, const cg_tensor *targets);

/* softmax / log_softmax over the last dim of x (any rank >= 1), computed
 * stably (the row's max is subtracted first); differentiable. */
cg_tensor *cg_tensor_softmax(cg_tensor *x);
cg_tensor *cg_tensor_log_softmax(cg_tensor *x);
/* F.nll_loss: mean over rows i of -logp[i, target_i]; logp [N, C],
 * targets [N] class indices stored as floats (0..C-1). */
cg_tensor *cg_nll_loss(cg_tensor *logp, cg_tensor *targets);
/* F.cross_entropy = nll_loss(log_softmax(logits)), fused into one op:
 * one pass forward and one backward, d/dz = (softmax(z) - onehot(t)) / N. */
cg_tensor *cg_cross_entropy(cg_tensor *logits, cg_tensor *targets);
/* Fraction of rows whose argmax over the last dim equals the target index. */
float cg_accuracy(const cg_tensor *logits, const cg_tensor *targets);

/* Which loss a model trains with. */
typedef enum cg_loss_kind {
    CG_LOSS_MNIST = 0, /* the book's mnist_loss: one output, sigmoid  */
    CG_LOSS_BCE = 1,   /* binary cross-entropy: one output, sigmoid   */
    CG_LOSS_CE = 2     /* cross-entropy: one output per class, softmax */
} cg_loss_kind;
/* "mnist", "bce", "ce"; NULL for an unknown kind. */
const char *cg_loss_name(cg_loss_kind kind);
/* The loss of `kind` on logits; targets as cg_loss_targets makes them. */
cg_tensor *cg_loss(cg_loss_kind kind, cg_tensor *preds, cg_tensor *targets);
/* A dataset's labels as `kind` wants them, owned by the caller (or the
 * open scope): for MNIST and BCE the article's [N, 1] 0/1 column, 1 where
 * the label is class 0 (the "3" of 3-vs-7), as
 * train_y = tensor([1]*len(threes) + [0]*len(sevens)).unsqueeze(1);
 * for CE the labels themselves, [N]. */
cg_tensor *cg_loss_targets(cg_loss_kind kind, const cg_tensor *labels);

/* ------------------------------------------------------------------ */
/* Plain SGD (src/optim/sgd.c)                                         */
/* ------------------------------------------------------------------ */

/* The article's step: p -= lr * p.grad, then p.grad = 0, for each parameter. */
void cg_sgd_step(cg_tensor *const *params, int n, float lr);

/* ------------------------------------------------------------------ */
/* Layers and models (src/nn)                                          */
/* ------------------------------------------------------------------ */

#define CG_LAYER_MAX_ARGS 6
#define CG_LAYER_MAX_TENSORS 12
#define CG_MODEL_MAX_LAYERS 64
#define CG_MODEL_NAME_MAX 32

/* How a layer's weights start (each layer kind documents what it does with
 * each; src/nn/layers.c). */
typedef enum cg_init {
    CG_INIT_NORMAL = 1,  /* randn * std: the article's init_params(size, std)        */
    CG_INIT_PYTORCH = 2, /* nn.Linear's default: w, b ~ U(-1/sqrt(fan_in), +)        */
    CG_INIT_KAIMING = 3  /* He (kaiming_normal_) for a layer followed by a ReLU:
                            w ~ N(0, 2/fan_in), b = 0; nn.Linear's default for the
                            others. What deeper nets need to train.               */
} cg_init;

typedef struct cg_layer_kind cg_layer_kind; /* a row of the layer table (src/nn/layer.h) */

/* One layer of a model. Shapes are of one item (no batch dim). */
typedef struct cg_layer {
    const cg_layer_kind *kind;
    int64_t args[CG_LAYER_MAX_ARGS]; /* integer hyper-parameters (linear: out features) */
    float fargs[2];                  /* real ones (dropout: p)                        */
    int in_ndim, out_ndim;
    int64_t in_shape[CG_MAX_DIMS], out_shape[CG_MAX_DIMS];
    int n_params;                    /* learned: weights, biases (requires_grad)      */
    cg_tensor *params[CG_LAYER_MAX_TENSORS];
    int n_state;                     /* saved but not learned (running statistics)    */
    cg_tensor *state[CG_LAYER_MAX_TENSORS];
} cg_layer;

/* The layer's kind name: "linear", "relu", ... */
const char *cg_layer_name(const cg_layer *l);
/* "linear:128" - the layer as written in a spec (buf of >= 64 bytes). */
const char *cg_layer_spec(const cg_layer *l, char *buf, size_t size);
/* The i-th layer kind's name (0, 1, ...), NULL past the end. */
const char *cg_layer_kind_name(int i);

typedef struct cg_model {
    char name[CG_MODEL_NAME_MAX]; /* "linear", "mlp", or "custom" (built from a spec) */
    int n_layers;
    cg_layer *layers;
    int in_ndim;                  /* one item's shape: [784], or [1, 28, 28]           */
    int64_t in_shape[CG_MAX_DIMS];
    int64_t n_inputs, n_outputs;  /* elements of one item in, features out             */
    int n_params;                 /* every layer's params, in order (the optimizer's)   */
    cg_tensor **params;
    bool training;                /* train mode (dropout on); see cg_model_train       */
    cg_rng rng;                   /* dropout's generator                               */
    int n_classes;                /* the classes the outputs stand for                 */
    char class_names[CG_MAX_CLASSES][CG_CLASS_NAME_MAX];
} cg_model;

/*
 * A model from a spec: layers separated by commas, each NAME[:ARG[:ARG...]]
 *   "linear:128,relu,linear:10"      784 -> 128 -> ReLU -> 10
 *   "flatten,linear:256,relu,dropout:0.2,linear:128,relu,linear"
 * A last "linear" without a size gets n_outputs features. in_shape is one
 * item's shape ([784], or [1, 28, 28]); the model's output must come out as
 * [n_outputs]. Errors name the layer and the problem ("linear:abc: ...").
 * Weights are drawn layer by layer, in order, from rng (NULL: the global
 * generator); std is for CG_INIT_NORMAL. name: the model's name (NULL:
 * "custom").
 */
cg_model *cg_model_from_spec(const char *spec, const char *name, const int64_t *in_shape,
                             int in_ndim, int64_t n_outputs, cg_init init, float std,
                             cg_rng *rng);

/* cg_model_from_spec for images of c channels, h x w: each item is
 * [c, h, w] when the spec's first layer takes images (conv, res, maxpool,
 * avgpool, gap), else a flat row of c*h*w (a model that starts with
 * linear, as the chapter's). A batch is given as [N, c*h*w] either way. */
cg_model *cg_model_for_images(const char *spec, const char *name, int64_t c, int64_t h, int64_t w,
                              int64_t n_outputs, cg_init init, float std, cg_rng *rng);

/* The book's models, as presets of cg_model_from_spec. */
typedef enum cg_model_kind {
    CG_MODEL_LINEAR = 1, /* the article's linear1: x @ w + b               ("linear")  */
    CG_MODEL_MLP = 2,    /* the book's simple_net: in -> hidden -> ReLU -> out ("mlp")   */
    CG_MODEL_CNN = 3,    /* fastbook ch.13's simple_cnn: five stride-2 convs ("cnn")    */
    CG_MODEL_RESNET = 4  /* a small ResNet for 28x28 digits ("resnet")                  */
} cg_model_kind;
/* A preset's spec for n_outputs outputs (n_hidden: the mlp's one hidden
 * width), written to buf; its name ("mlp", ...) to *name. */
cg_status cg_model_preset(cg_model_kind kind, int64_t n_hidden, int64_t n_outputs, char *buf,
                          size_t size, const char **name);
/* LINEAR or MLP on flat rows of n_inputs; n_hidden is ignored for LINEAR.
 * Same bits as ever for a seed: w1, b1, w2, b2 drawn in that order.
 * (CNN and RESNET take images: cg_model_preset + cg_model_for_images.) */
cg_model *cg_model_new(cg_model_kind kind, int64_t n_inputs, int64_t n_hidden,
                       int64_t n_outputs, cg_init init, float std, cg_rng *rng);
/* The spec of an MLP: "linear:H1,relu,linear:H2,relu,...,linear" for a list
 * of hidden widths "H1,H2,..." (e.g. "256,128"); writes it to buf. */
cg_status cg_mlp_spec(const char *hidden, char *buf, size_t size);
/* The model's layers written back as a spec (buf of >= 64 per layer). */
const char *cg_model_spec(const cg_model *m, char *buf, size_t size);

void cg_model_free(cg_model *m);
/* x [N, n_inputs] or [N, ...in_shape] -> [N, n_outputs] (raw logits). */
cg_tensor *cg_model_forward(cg_model *m, cg_tensor *x);
/* Train mode (dropout drops, batch norm uses the batch) or eval mode;
 * returns the previous mode. A new or loaded model is in eval mode. */
bool cg_model_train(cg_model *m, bool on);
/* Learned parameters (elements). */
int64_t cg_model_param_count(const cg_model *m);
/* fastai's learn.summary(): a table of layers, output shapes and parameter
 * counts, written to f. */
void cg_model_summary(const cg_model *m, FILE *f);

/* Atomic write (temp file, fsync, rename) of the documented format in
 * src/nn/model_file.c (version 2: any list of layers). */
cg_status cg_model_save(const cg_model *m, const char *path);
/* Reads version 2 and version 1 files, checking everything before use. */
cg_model *cg_model_load(const char *path);
/* cg_model_load for a caller whose items are n_inputs numbers (784 for a
 * 28x28 image): a model that takes other inputs is refused from its header,
 * before its weights are read. */
cg_model *cg_model_load_for(const char *path, int64_t n_inputs);

/* ------------------------------------------------------------------ */
/* Optimizers (src/optim/optimizer.c)                                  */
/* ------------------------------------------------------------------ */

typedef enum cg_optim_kind {
    CG_OPTIM_SGD = 1, /* torch.optim.SGD: momentum, nesterov, L2 weight decay      */
    CG_OPTIM_ADAM = 2 /* torch.optim.Adam; with decoupled_wd, AdamW                 */
} cg_optim_kind;

/*
 * The update rules, for a parameter p with gradient g at step t (1, 2, ...):
 *
 * SGD (PyTorch's rule):
 *   g = g + wd * p                    (weight decay as L2; decoupled: p *= 1 - lr*wd)
 *   b = momentum * b + g              (b = g on the first step)
 *   g = nesterov ? g + momentum * b : b    (momentum 0: g as it is)
 *   p = p - lr * g
 * Adam (beta1 = momentum):
 *   g = g + wd * p                    (Adam; AdamW instead: p *= 1 - lr*wd)
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g^2
 *   p = p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 * Every step then zeroes the gradients (the article's p.grad.zero_()).
 */
typedef struct cg_optim_config {
    cg_optim_kind kind;
    float lr;
    float momentum;     /* SGD's momentum (0: plain SGD); Adam's beta1   */
    float beta2, eps;   /* Adam                                          */
    float weight_decay; /* 0: none                                       */
    bool nesterov;      /* SGD, with momentum > 0                        */
    bool decoupled_wd;  /* AdamW (and SGDW): p *= 1 - lr*wd, not g += wd*p */
} cg_optim_config;

/* Plain SGD at lr (momentum 0: the article's step, the same bits as cg_sgd_step). */
cg_optim_config cg_sgd_config(float lr);
/* Adam with fastai's defaults: betas 0.9 / 0.99, eps 1e-5, no weight decay. */
cg_optim_config cg_adam_config(float lr);
/* AdamW: Adam with decoupled weight decay wd (fastai's default 0.01). */
cg_optim_config cg_adamw_config(float lr, float wd);

typedef struct cg_optimizer cg_optimizer;
/* An optimizer over params[0..n) (kept by reference, not owned). Its state
 * (momentum, Adam's m and v) is allocated on the first step, so a step
 * allocates nothing after that. NULL + cg_last_error on a bad config. */
cg_optimizer *cg_optimizer_new(const cg_optim_config *cfg, cg_tensor *const *params, int n);
/* One update of every parameter that has a gradient, then zero grads. */
cg_status cg_optimizer_step(cg_optimizer *o);
/* Zeroes every parameter's gradient (without updating). */
void cg_optimizer_zero_grad(cg_optimizer *o);
/* The schedule's hooks: this step's learning rate, and momentum (SGD's
 * momentum or Adam's beta1). */
void cg_optimizer_set_lr(cg_optimizer *o, float lr);
void cg_optimizer_set_momentum(cg_optimizer *o, float momentum);
const cg_optim_config *cg_optimizer_config(const cg_optimizer *o);
void cg_optimizer_free(cg_optimizer *o);

/* ------------------------------------------------------------------ */
/* Learning-rate schedules (src/optim/schedule.c)                      */
/* ------------------------------------------------------------------ */

typedef enum cg_sched_kind {
    CG_SCHED_CONSTANT = 0, /* lr and momentum as configured, every step */
    CG_SCHED_ONE_CYCLE = 1 /* fastai's fit_one_cycle                     */
} cg_sched_kind;

/*
 * fastai's fit_one_cycle(lr_max, div=25, div_final=1e5, pct_start=0.25,
 * moms=(0.95, 0.85, 0.95)), as a function of the fraction of training done,
 * pos = step / total_steps in [0, 1):
 *   pos <  pct: lr = cos_anneal(lr_max/div, lr_max, pos/pct),
 *               mom = cos_anneal(mom_max, mom_min, pos/pct)
 *   pos >= pct: lr = cos_anneal(lr_max, lr_max/div_final, (pos-pct)/(1-pct)),
 *               mom = cos_anneal(mom_min, mom_max, (pos-pct)/(1-pct))
 * with cos_anneal(a, b, x) = a + (b - a) * (1 - cos(pi x)) / 2.
 */
typedef struct cg_schedule {
    cg_sched_kind kind;
    float lr_max;                      /* the lr of CONSTANT, the peak of ONE_CYCLE */
    float div, div_final, pct_start;   /* 25, 1e5, 0.25                           */
    float mom_max, mom_min;            /* 0.95, 0.85 (ONE_CYCLE)                  */
} cg_schedule;

/* fastai's defaults around lr_max. */
cg_schedule cg_one_cycle(float lr_max);
/* The lr and momentum at pos (ONE_CYCLE); CONSTANT gives lr_max and leaves
 * *mom as it is. */
void cg_schedule_at(const cg_schedule *s, double pos, float *lr, float *mom);

/* ------------------------------------------------------------------ */
/* Training: the learner (src/nn/learner.c)                            */
/* ------------------------------------------------------------------ */

/* A model's score on a whole split; every item counted once. */
typedef struct cg_score {
    double loss;                 /* the loss over all items            */
    double accuracy;             /* correct / n                        */
    int64_t n, correct;
    int n_classes;
    int64_t class_n[CG_MAX_CLASSES], class_correct[CG_MAX_CLASSES];
} cg_score;

/* Scores m on ds with `loss` in eval mode and no graph: binary models
 * (one output) call class 0 when sigmoid(p) > 0.5, the book's rule;
 * others the argmax. In chunks of rows sized by the model's activations:
 * views of ds->x when the dataset has x, else batches made from its bytes. */
cg_status cg_model_evaluate(cg_model *m, const cg_dataset *ds, cg_loss_kind loss, cg_score *out);

/* Classifies one image (n_inputs 8-bit pixels, x = pixel / 255) with no
 * graph: probs gets each output's probability, so it needs room for
 * n_outputs of them (2 for a model with one output: probs[0] =
 * sigmoid(logit), probs[1] = 1 - probs[0]; softmax otherwise); returns the
 * most probable index, or -1 + an error. logit, when not NULL, gets the
 * winner's raw output. */
int cg_model_classify(cg_model *m, const uint8_t *pixels, double *probs, double *logit);

/* One epoch's figures: fastai's recorder row. */
typedef struct cg_epoch_record {
    int epoch;            /* 0: the untrained model, before any step    */
    double train_loss;    /* mean over the epoch's items (epoch 0: scored) */
    double valid_loss, accuracy;
    double seconds;
} cg_epoch_record;

/* What fit records: a row per epoch, and every batch's loss and lr. */
typedef struct cg_recorder {
    int n_epochs, epoch_cap;
    cg_epoch_record *epochs;
    int64_t n_batches, batch_cap;
    float *batch_loss, *batch_lr;
} cg_recorder;

void cg_recorder_free(cg_recorder *r);
/* Writes the epochs (and, for .json, the batches too) as CSV or JSON by
 * the path's extension (.csv / .json); atomic. */
cg_status cg_recorder_write(const cg_recorder *r, const char *path);

/* ------------------------------------------------------------------ */
/* Data-parallel training over MPI (src/nn/distributed.c)              */
/* ------------------------------------------------------------------ */

/*
 * A group of processes that train one model together (PyTorch's
 * DistributedDataParallel): each takes its slice of every global batch, and
 * their gradients are averaged with one MPI_Allreduce per step before every
 * process takes the same optimizer step. Opaque, so this header never needs
 * mpi.h; a build without MPI (cmake -DCGRAD_MPI=OFF, or no libopenmpi-dev)
 * has the same functions, and cg_comm_mpi_world then fails with a message.
 * A NULL communicator is one process alone: rank 0 of 1.
 */
typedef struct cg_comm cg_comm;

/* The processes a launcher started (mpirun, mpiexec, Slurm's srun), read
 * from the environment without starting MPI: the number of them (1 when
 * none did), and this one's rank into *rank (may be NULL). */
int cg_comm_launched(int *rank);
/* MPI_COMM_WORLD (MPI_Init_thread on the first call, FUNNELED: MPI is called
 * from the calling thread only, OpenMP's threads never call it). NULL +
 * cg_last_error when built without MPI or when MPI cannot start. */
cg_comm *cg_comm_mpi_world(void);
/* This process's rank (0 .. size-1) and the number of processes. */
int cg_comm_rank(const cg_comm *c);
int cg_comm_size(const cg_comm *c);
/*
 * Every rank calls it with its own status; all get the same answer: CG_OK
 * when every rank is fine; else the lowest failing rank gets its own status
 * (and keeps its message, to print), and every other rank CG_ERR_STATE with
 * cg_comm_peer_failed true (nothing of its own to print). So a failure on
 * one rank ends all of them, with one message.
 */
cg_status cg_comm_agree(cg_comm *c, cg_status local);
/* Whether the last failure came from another rank (see cg_comm_agree). */
bool cg_comm_peer_failed(const cg_comm *c);
/* In place, the sum over ranks of buf[0..n) (every rank gets the same bits). */
cg_status cg_comm_allreduce_sum(cg_comm *c, double *buf, int64_t n);
/* What the gradient averaging has cost so far: allreduce calls, seconds
 * spent in them, and bytes reduced (each may be NULL). */
void cg_comm_stats(const cg_comm *c, int64_t *calls, double *seconds, int64_t *bytes);
/* Ends MPI (MPI_Finalize) if cg_comm_mpi_world started it; NULL is fine. */
void cg_comm_free(cg_comm *c);

typedef struct cg_fit_config {
    int64_t epochs, bs;
    uint64_t seed;             /* the loader's shuffle order               */
    bool shuffle;              /* true, as fastai's training DataLoader    */
    /* The training DataLoader to draw batches from (not owned; NULL: fit
     * makes one from bs, shuffle and seed). */
    cg_dataloader *train_loader;
    cg_loss_kind loss;
    cg_optim_config opt;       /* its lr is the schedule's lr_max          */
    cg_sched_kind sched;
    bool score_epoch0;         /* a row for the untrained model first      */
    /* Called after every batch (epoch from 1) and every epoch's row (from
     * 0 when score_epoch0); returning false from on_epoch stops training. */
    void (*on_batch)(void *user, int epoch, int64_t batch, int64_t n_batches, float loss);
    bool (*on_epoch)(void *user, const cg_epoch_record *r, const cg_score *valid);
    void *user;
    /* NULL: one process. Else data-parallel over c's ranks (every rank
     * calls cg_fit with the same model, data and config): bs stays the
     * global batch, rank r takes rows [bs*r/N, bs*(r+1)/N) of each one, the
     * ranks average the gradients each step weighted by their share of the
     * batch (the single-process gradient, up to float reassociation), split
     * the validation set and sum its counts; every rank ends with the same
     * weights and score. Rank 0's weights and state are sent to the others
     * first. Batch norm uses each rank's own slice in training (PyTorch
     * DDP's default); its running statistics are rank 0's, sent to the
     * others before each validation. A failure on any rank ends fit on
     * every rank (cg_comm_agree). */
    cg_comm *comm;
    /* NULL (or a zero config): batches as they are. Else every training
     * batch (never a validation one) is transformed in place by
     * cg_augment_batch at the step's index, each item by its place in the
     * whole batch, so that ranks split it as one process would. */
    const cg_augment *augment;
} cg_fit_config;

/*
 * Learner.fit: for each epoch, for each mini-batch (xb, yb) of the
 * (shuffled) training set: the schedule sets lr (and momentum), then
 *     loss = loss_fn(model(xb), yb); loss.backward(); opt.step(); opt.zero_grad()
 * then the whole validation set is scored in eval mode (cg_model_evaluate).
 * Each step runs in a scope: the batch, graph and loss are freed at its
 * end and their buffers reused, so a step allocates nothing after the first.
 * rec (may be NULL) gets the rows and batches; *final_score (may be NULL)
 * the last validation score.
 */
cg_status cg_fit(cg_model *m, const cg_dataset *train, const cg_dataset *valid,
                 const cg_fit_config *cfg, cg_recorder *rec, cg_score *final_score);

/* ------------------------------------------------------------------ */
/* The learning-rate finder (src/nn/lr_find.c)                         */
/* ------------------------------------------------------------------ */

/*
 * fastai's Learner.lr_find: train on mini-batches with the lr growing
 * exponentially, lr_i = start_lr * (end_lr / start_lr)^(i / num_it) for
 * i = 0, 1, ..., num_it - 1 (fastai's SchedExp at pos = i / num_it), and
 * record the loss smoothed as fastai's Recorder does (an exponential moving
 * average with bias correction, beta 0.98):
 *     avg_i = beta * avg_{i-1} + (1 - beta) * loss_i,  smooth_i = avg_i / (1 - beta^(i+1))
 * Stops after num_it batches, or (stop_div) once smooth_i > 4 * min(smooth)
 * or smooth_i is not finite. The model is left exactly as it was.
 */
typedef struct cg_lr_find_config {
    double start_lr, end_lr; /* 1e-7, 10                                   */
    int64_t num_it;          /* 100; at least 6, as fastai                 */
    bool stop_div;           /* true: stop when the loss blows up          */
    int64_t bs;              /* batch size                                 */
    uint64_t seed;           /* the loader's shuffle order                 */
    bool shuffle;            /* true                                       */
    cg_loss_kind loss;
    cg_optim_config opt;     /* its lr is the finder's; momentum as given  */
    /* Called after every batch (it from 1) with its lr and smoothed loss. */
    void (*on_batch)(void *user, int64_t it, int64_t num_it, double lr, double smooth_loss);
    void *user;
} cg_lr_find_config;

/* fastai's defaults (1e-7 to 10 over 100 batches, stop_div, shuffled)
 * around a loss, an optimizer and a batch size. */
cg_lr_find_config cg_lr_find_defaults(cg_loss_kind loss, const cg_optim_config *opt,
                                      int64_t bs, uint64_t seed);

/*
 * The sweep and fastai's suggestions, each computed on the sweep without
 * its first num_it/10 and last 5 points and cut at the first NaN, as
 * fastai's lr_find does (the whole sweep when that leaves fewer than 2):
 *   valley   the longest valley: the longest run of decreasing losses (a
 *            longest decreasing subsequence ending at i, fastai's lds),
 *            the point 2/3 of the way down it (fastai's default);
 *   minimum  the lr of the lowest loss, divided by 10;
 *   steepest the lr where d loss / d log(lr) is most negative.
 * The *_idx fields are indices into lrs / losses of the point each marks
 * (for minimum, the lowest loss itself, whose lr is 10x minimum).
 */
typedef struct cg_lr_find_result {
    int64_t n;                 /* batches run (points of the sweep)        */
    double *lrs, *losses;      /* n each: the lr and the smoothed loss     */
    double *raw_losses;        /* n: each batch's loss as it was           */
    bool diverged;             /* stopped because the loss blew up         */
    double valley, minimum, steepest;
    int64_t valley_idx, minimum_idx, steepest_idx;
    /* The points the suggestions were taken from: [num_it/10, n-5), or
     * the whole sweep where that was too short (fewer than 2 points);
     * the end is cut at a NaN. */
    int64_t suggest_from, suggest_to;
} cg_lr_find_result;

/* Runs the finder on m with batches of train; on return m's weights, batch
 * norm statistics, dropout generator and mode are what they were (they are
 * saved first and put back, as fastai reloads its _tmp file). *out is
 * freed with cg_lr_find_result_free, also after a failure. */
cg_status cg_lr_find(cg_model *m, const cg_dataset *train, const cg_lr_find_config *cfg,
                     cg_lr_find_result *out);
void cg_lr_find_result_free(cg_lr_find_result *r);
/* fastai's plot_lr_find: the smoothed loss against the lr on a log axis
 * (the last 5 points left out, as fastai's skip_end), the three
 * suggestions marked and labelled; 640 x 480, .png or .svg (cgrad/plot.h).
 * title NULL: none. */
cg_status cg_lr_find_plot(const cg_lr_find_result *r, const char *title, const char *path);

/* ------------------------------------------------------------------ */
/* Interpretation (src/nn/interpret.c)                                 */
/* ------------------------------------------------------------------ */

/*
 * fastai's ClassificationInterpretation.from_learner: every item of a split
 * scored once, as cg_model_evaluate scores it (the same chunks, the same
 * rule for the predicted class), and each item's own loss:
 * loss(kind, preds[i:i+1], targets[i:i+1]), the loss with reduction='none'.
 */
typedef struct cg_interpretation {
    int n_classes;
    int64_t n;
    int64_t *confusion; /* [n_classes][n_classes]: row actual, column predicted */
    int *actual, *predicted;       /* n each                                 */
    double *losses;                /* n: each item's loss                    */
    double *probs;                 /* n: the probability of the prediction   */
} cg_interpretation;

/* Scores every item of ds with m (eval mode, no graph) under `loss`. */
cg_status cg_interpret(cg_model *m, const cg_dataset *ds, cg_loss_kind loss,
                       cg_interpretation *out);
void cg_interpretation_free(cg_interpretation *in);
/* The confusion matrix's diagonal over n: the accuracy. */
double cg_interpretation_accuracy(const cg_interpretation *in);

/* A cell of the confusion matrix off its diagonal. */
typedef struct cg_confused_pair {
    int actual, predicted;
    int64_t count;
} cg_confused_pair;
/* most_confused(min_val): the off-diagonal cells with count >= min_val
 * (at least 1), most first (ties: by actual, then predicted), into out,
 * which needs room for n_classes * (n_classes - 1); returns how many. */
int64_t cg_interpretation_most_confused(const cg_interpretation *in, int64_t min_val,
                                        cg_confused_pair *out);
/* top_losses(k): the indices of the k items (at most n) with the highest
 * loss, highest first (ties: the lower index first), into idx; returns how
 * many (-1 + an error when out of memory). */
int64_t cg_interpretation_top_losses(const cg_interpretation *in, int64_t k, int64_t *idx);
/* plot_confusion_matrix: the matrix as a heatmap with its counts, rows
 * "Actual", columns "Predicted", labelled with names (n_classes of them);
 * .png or .svg (cgrad/plot.h). title NULL: "Confusion matrix". */
cg_status cg_interpretation_plot_confusion(const cg_interpretation *in,
                                           const char (*names)[CG_CLASS_NAME_MAX],
                                           const char *title, const char *path);
/* plot_top_losses(k): the k images of ds (the split interpreted) with the
 * highest losses, highest first, each captioned "predicted/actual" over
 * "loss / probability", under fastai's title. */
cg_status cg_interpretation_plot_top_losses(const cg_interpretation *in, const cg_dataset *ds,
                                            int64_t k, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* CGRAD_NN_H */
