/*
 * backward.c - reverse-mode automatic differentiation.
 *
 * Every op result remembers its op (an entry of the op table: a name and a
 * backward function) and its inputs. backward(loss):
 *   1. orders the graph topologically (inputs before the results that use
 *      them) with an iterative depth-first search;
 *   2. seeds d(loss)/d(loss) = 1;
 *   3. walks the order backwards; each node's backward reads its own grad
 *      (complete by then: every consumer came later in the order and has
 *      already run) and adds the chain-rule terms into its inputs' grads;
 *   4. frees the intermediate grads, keeping those of the leaves (the
 *      parameters), which accumulate across calls as in PyTorch.
 */
#include "cgrad_internal.h"

static _Thread_local uint32_t generation;

/* Post-order DFS: a node is emitted after all of its inputs. Each stack
 * frame remembers which input of its node to visit next. */
typedef struct frame {
    cg_tensor *t;
    int next;
} frame;

/* The DFS stack and the order backward walks, kept between calls: a
 * training loop sorts a graph of the same size every step and need not
 * allocate for it each time. Per thread; freed when the thread ends
 * (cg_backward_thread_free, called from tensor.c's thread-exit hook). */
static _Thread_local frame *stack;
static _Thread_local int64_t cap;
static _Thread_local cg_tensor_list order;

void cg_backward_thread_free(void) {
    free(stack);
    stack = NULL;
    cap = 0;
    free(order.items);
    order = (cg_tensor_list){0};
}

static cg_status topo_sort(cg_tensor *root, cg_tensor_list *out) {
    int64_t n = 0;
    uint32_t mark = ++generation;
    if (mark == 0) mark = ++generation; /* 0 means "never visited" */

    cg_tensor *push = root;
    root->visit = mark;
    for (;;) {
        if (push) {
            if (n == cap) {
                int64_t nc = cap ? cap * 2 : 64;
                frame *ns = realloc(stack, (size_t)nc * sizeof *ns);
                if (!ns) goto nomem;
                stack = ns;
                cap = nc;
            }
            stack[n++] = (frame){push, 0};
            push = NULL;
        }
        if (n == 0) break;
        frame *f = &stack[n - 1];
        while (f->t->op && f->next < 3) {
            cg_tensor *s = f->t->src[f->next++];
            if (s && s->requires_grad && s->visit != mark) {
                s->visit = mark;
                push = s;
                break;
            }
        }
        if (push) continue;
        if (!cg_tensor_list_push(out, f->t)) goto nomem;
        n--;
    }
    return CG_OK;
nomem:
    return cg_fail(CG_ERR_NOMEM, "backward: out of memory sorting the graph");
}

cg_status cg_backward(cg_tensor *loss) {
    if (!loss) {
        if (cg_last_status() != CG_OK) return cg_last_status();
        return cg_fail(CG_ERR_ARG, "backward: loss is NULL");
    }
    if (loss->numel != 1) {
        char s[64];
        return cg_fail(CG_ERR_SHAPE, "backward: the loss must have one element, not shape %s",
                       cg_shape_str(loss, s, sizeof s));
    }
    if (!loss->requires_grad) {
        return cg_fail(CG_ERR_STATE, "backward: the loss does not require grad (no input of it "
                                     "requires grad, or grad mode was off)");
    }
    order.n = 0;
    cg_status st = topo_sort(loss, &order);
    if (st != CG_OK) return st;
    float *g = cg_grad_buf(loss);
    if (!g) {
        return cg_fail(CG_ERR_NOMEM, "backward: out of memory");
    }
    g[0] += 1.0f; /* d loss / d loss */

    /* The ops' backward functions must not record a graph of their own. */
    bool prev = cg_set_grad_enabled(false);
    (void)cg_grad_alloc_failed(true);
    for (int64_t i = order.n - 1; i >= 0; i--) {
        cg_tensor *t = order.items[i];
        if (t->op && t->grad) t->op->backward(t);
    }
    cg_set_grad_enabled(prev);

    for (int64_t i = 0; i < order.n; i++) {
        cg_tensor *t = order.items[i];
        if (t->op && t->grad) {
            cg_floats_free(t->grad, t->numel);
            t->grad = NULL;
        }
    }
    if (cg_grad_alloc_failed(true))
        return cg_fail(CG_ERR_NOMEM, "backward: out of memory for gradients");
    return CG_OK;
}
