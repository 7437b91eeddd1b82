/* A backend: a device, the model's weights on it, and the kernels of the forward pass
 * on buffers it owns (as ggml's backends carry their own operations). The layer walk
 * that calls these kernels is written once, in engine.c, for every backend; methods and
 * tasks never see this interface (commands use it only to list devices and time kernels).
 *
 * Conventions:
 * - A struct dbuf is device memory of the backend that made it. Offsets and lengths
 *   count 4-byte elements (float, or int32 for token positions).
 * - Activations are row-major [n tokens][width]: dim for the residual stream,
 *   n_heads x head_dim for queries, n_kv_heads x head_dim for keys and values.
 * - Kernels may run asynchronously and report errors late: the first error since the
 *   last sync is kept, and sync() returns it (and clears it) once the queued work is
 *   done. After an error the kernels that follow may do nothing.
 * - tests/test_backends.c checks every kernel of every backend present against
 *   double-precision references written in the test, op by op, and whole models
 *   against the CPU backend. */
#ifndef CTX_BACKEND_H
#define CTX_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "forward_plan.h"

struct model;
struct backend;
struct dbuf;

/* What a device is and has (ggml's device properties). */
struct device_info {
    char name[128];          /* e.g. "CPU (2 threads, OpenBLAS Haswell)", or the OpenCL device name */
    char params[160];        /* the parameters in effect, e.g. "threads=2" */
    size_t mem_total;        /* bytes of device memory (host RAM for the CPU) */
    size_t mem_free;         /* bytes available now; SIZE_MAX when unknown */
    size_t max_buffer;       /* bytes of the largest single buffer (OpenCL caps it); SIZE_MAX: no cap */
    int n_threads;           /* host threads the backend computes with (0: not host threads) */
    size_t model_bytes;      /* bytes of device memory the backend holds for the model beyond the mapped
                                file (the CPU: F32 copies of weights, scratch), sessions aside; 0 where
                                not counted */
};

/* The element type of a session's K or V cache (llama.cpp's -ctk/-ctv names f32, f16,
 * q8_0). A cache row is the kv_dim = n_kv_heads x head_dim values of one token: f32 and
 * f16 values in a row; q8_0 in ggml's blocks of 32 (an fp16 scale and 32 int8), so a
 * head's values are whole blocks only when head_dim is a multiple of 32. Backends
 * convert F32 rows as they store them (kv_store) and read them back converted
 * (attention). */
enum kv_type { KV_F32, KV_F16, KV_Q8_0 };
#define KV_TYPE_NAMES "f32, f16, q8_0"
struct kv_types { enum kv_type k, v; };
/* "f32", "f16", "q8_0". */
const char *kv_type_name(enum kv_type t);
/* The type named s (exactly one of KV_TYPE_NAMES); false if none. */
bool kv_type_parse(const char *s, enum kv_type *out);
/* Bytes of a cache row of n values of type t; 0 when n is not representable (q8_0: n
 * not a multiple of 32). */
size_t kv_row_bytes(enum kv_type t, size_t n);
/* NULL if a model with heads of head_dim values can keep its cache in t; otherwise why
 * not, in one line (written into why). */
const char *kv_type_unfit(enum kv_type t, int head_dim, char *why, size_t cap);

/* The weight matrices of a layer, and the model's output projection (layer ignored). */
enum weight_id { W_Q, W_K, W_V, W_O, W_GATE, W_UP, W_DOWN, W_OUTPUT };
/* The weight vectors: norms and biases of a layer, the final norm (layer ignored). */
enum vec_id { V_ATTN_NORM, V_FFN_NORM, V_BQ, V_BK, V_BV, V_OUTPUT_NORM };

/* One attention call (see attn_args in kernels.h for the meaning): queries of n_q new
 * tokens against the n_kv cached keys of one layer. Strides are the row widths. */
struct attn_call {
    int n_q, n_kv;
    const struct dbuf *q;        /* [n_q][n_heads*head_dim] from element 0 */
    const struct dbuf *k, *v;    /* caches: n_kv rows (kv_store's layout) from row kv_row */
    size_t kv_row;
    struct kv_types kv;          /* the caches' types (k_group's is kv.k) */
    const struct dbuf *q_group;  /* SelfExtend grouped-position copies, or NULL */
    const struct dbuf *k_group;  /* from row kv_row, or NULL */
    int group_window;            /* SelfExtend neighbour window W */
    const struct dbuf *q_pos;    /* n_q int32 positions */
    const struct dbuf *k_pos;    /* n_kv int32 positions */
    float scale;                 /* 1/sqrt(head_dim) */
    int window;                  /* SWA: keys with q_pos - k_pos < window; 0 = all */
    struct dbuf *out;            /* [n_q][n_heads*head_dim] */
};

struct backend_ops {
    const char *name;                 /* --backend NAME */
    const char *params_help;          /* the parameters create() understands */
    /* NULL when this machine can run the backend (a device exists); otherwise why not,
     * in one line. Cheap; creates nothing. */
    const char *(*unavailable)(void);
    /* How much "auto" wants this backend here: the backend with the highest rank runs;
     * < 0: never chosen by auto (it cannot run here, or e.g. OpenCL on a CPU-only
     * platform). Asked on every run with --backend auto, whichever backend then runs, so
     * it must leave nothing behind in the process (no driver loaded, no memory held). */
    int (*auto_rank)(void);
    /* Prints this machine's devices for the backend, with their memory (ctxbench info
     * --backend NAME); the index is what the backend's device=N parameter takes. */
    void (*list_devices)(FILE *f);
    /* The model's weights on the device. params: "key=value,key=value" (NULL or ""
     * = defaults); an unknown key or bad value is an error. NULL + reason on error. */
    struct backend *(*create)(const struct model *m, const char *params, char *err, size_t errlen);
    void (*destroy)(struct backend *b);
    void (*device)(const struct backend *b, struct device_info *out);
    /* NULL if the backend can run this plan with caches of these types; otherwise why not
     * (a cell it cannot run is recorded as skipped with this reason). */
    const char *(*cannot_run)(const struct backend *b, const struct forward_plan *plan, const struct kv_types *kv);

    /* ---- buffers ---- */
    struct dbuf *(*alloc)(struct backend *b, size_t n_elems, char *err, size_t errlen);
    void (*release)(struct backend *b, struct dbuf *d);
    /* Copies n_elems from host src into d at off; src may be reused as soon as it returns. */
    void (*write)(struct backend *b, struct dbuf *d, size_t off, const void *src, size_t n_elems);
    /* Copies n_elems of d from off into host dst once every queued kernel is done
     * (synchronous): 0, or -1 + reason (also for any earlier kernel's error). */
    int (*read)(struct backend *b, const struct dbuf *d, size_t off, void *dst, size_t n_elems, char *err,
                size_t errlen);
    void (*copy)(struct backend *b, struct dbuf *dst, size_t dst_off, const struct dbuf *src, size_t src_off,
                 size_t n_elems);
    int (*sync)(struct backend *b, char *err, size_t errlen);

    /* ---- kernels ---- */
    /* x[t] = the embedding row of tokens[t] (host ids, already checked < n_vocab). */
    void (*embed)(struct backend *b, struct dbuf *x, const int32_t *tokens, int n);
    /* y = rmsnorm(x) * weight w of `layer`, n rows of dim; y may be x. */
    void (*rmsnorm)(struct backend *b, struct dbuf *y, const struct dbuf *x, int layer, enum vec_id w, int n);
    /* y[n][rows of W] (from element y_off) = x[n][cols of W] . W^T */
    void (*matmul)(struct backend *b, struct dbuf *y, size_t y_off, const struct dbuf *x, int layer, enum weight_id w,
                   int n);
    /* y[t] += bias w of `layer` for n rows (the bias's width), from element y_off */
    void (*add_bias)(struct backend *b, struct dbuf *y, size_t y_off, int layer, enum vec_id w, int n);
    /* Rotates the first n_rot dims of n rows of n_heads heads (from element off) by the
     * table cos_sin ([n][n_rot/2][cos, sin], rope_table.h), pairs as the model's rope_style. */
    void (*rope)(struct backend *b, struct dbuf *x, size_t off, int n, int n_heads, const struct dbuf *cos_sin);
    /* Rows [row, row + n) of a cache of type t (a buffer of kv_row_bytes(t, kv_dim) bytes
     * per row, rounded up to whole elements by the engine) = the n F32 rows of src (kv_dim
     * wide, from element 0), converted: f16 rounded to nearest even, q8_0 as ggml's
     * quantizer (quant.h). f32 is a plain copy. */
    void (*kv_store)(struct backend *b, struct dbuf *cache, enum kv_type t, size_t row, const struct dbuf *src,
                     int n);
    void (*attention)(struct backend *b, const struct attn_call *a);
    void (*add)(struct backend *b, struct dbuf *x, const struct dbuf *y, size_t n_elems);   /* x += y */
    /* gate = silu(gate) * up */
    void (*swiglu)(struct backend *b, struct dbuf *gate, const struct dbuf *up, size_t n_elems);
    /* For the n final (normed) rows of x: logprob[t] (when logprob is not NULL) = log-softmax
     * of the vocabulary projection at targets[t] (targets NULL or < 0: 0, and the row need
     * not be projected), and the n_vocab logits of the last row into last_logits (may be
     * NULL). Host arrays; the projection runs in blocks, never n x vocab. Synchronous:
     * returns 0 or -1 + reason (also for any earlier kernel's error). */
    int (*score)(struct backend *b, const struct dbuf *x, int n, const int32_t *targets, float *logprob,
                 float *last_logits, char *err, size_t errlen);
};

/* For score(): whether rows [r0, r0+nr) must be projected onto the vocabulary (a target
 * >= 0 among them, or need_last); rows without a target get logprob 0 here (logprob may be
 * NULL). Every backend's score loop asks it, so all agree on which rows are computed. */
bool score_block_needed(const int32_t *targets, float *logprob, int r0, int nr, bool need_last);

/* Backends compiled into this binary (the registry, generated from the folders under
 * backends/), NULL-terminated. */
extern const struct backend_ops *const backend_list[];
/* "auto" = the available backend of the highest auto_rank; NULL + reason if the name is
 * unknown or the backend cannot run on this machine. */
const struct backend_ops *backend_find(const char *name, char *err, size_t errlen);

/* Parameter strings "key=value,...": the value of key (the last one given) into val, cut
 * to vlen - 1 bytes; returns its full length, or -1 if the key is absent. And a check that
 * every key is one of `known` (NULL-terminated). */
long backend_param(const char *params, const char *key, char *val, size_t vlen);
int backend_params_check(const char *backend, const char *params, const char *const *known, char *err,
                         size_t errlen);
/* An integer parameter in [lo, hi] (def when absent); -1 + reason when malformed. */
int backend_param_long(const char *backend, const char *params, const char *key, long lo, long hi, long def,
                       long *out, char *err, size_t errlen);

#endif
