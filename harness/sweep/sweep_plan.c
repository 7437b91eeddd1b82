/* Cell needs, the calibration and the dry run (sweep_plan.h). */
#include "sweep_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "host.h"
#include "progress.h"
#include "tokenizer.h"

#define CAL_CHUNK 512          /* the backends' batch: one chunk of a long prompt */
#define CAL_MAX_CHUNKS 8       /* the longest calibration context: 8 chunks = 4096 tokens */
#define CAL_LONG_S 1.0         /* time the longer context may take (it runs twice) */
#define CAL_STEPS 8            /* decode steps timed */
#define CAL_TEXT_BYTES 32768   /* text tokenized to time the tokenizer */
#define CAL_SLOW_S 4.0         /* a first chunk slower than this (a 7B model on a few cores) is timed once */

void sweep_cell_need(const struct runtime *rt, const struct sweep_task *t, const struct method_spec *m, int length,
                     size_t avail, struct cell_need *out) {
    memset(out, 0, sizeof *out);
    out->fit = CELL_NO_PLAN;
    out->tokens = t->task->session_tokens ? t->task->session_tokens(length, t->settings) : length;
    struct method_ctx mctx = {.cfg = &rt->model->cfg, .target_len = length, .seq_len = length};
    if (out->tokens <= 0) {
        snprintf(out->reason, sizeof out->reason, "task %s: session_tokens(%d) = %d", t->task->name, length,
                 out->tokens);
        return;
    }
    if (method_plan(m, &mctx, &out->plan, out->reason, sizeof out->reason) != 0) return;
    struct forward_plan fp = method_forward_plan(&out->plan);
    const char *why = engine_cannot_run(rt->engine, &fp);
    if (why) {
        out->fit = CELL_UNSUPPORTED;
        snprintf(out->reason, sizeof out->reason, "backend %s cannot run it: %s", rt->be->name, why);
        return;
    }
    /* The plan decides the size: SelfExtend keeps a second, grouped-position key cache. */
    out->bytes = engine_session_bytes(rt->engine, out->tokens, &(struct forward_plan){.se_group = out->plan.se_group});
    if (engine_session_too_big(rt->engine, out->tokens, out->reason, sizeof out->reason)) {
        out->fit = CELL_TOO_BIG;
        return;
    }
    if (out->bytes > avail) {
        out->fit = CELL_TOO_BIG;
        snprintf(out->reason, sizeof out->reason, "needs %zu MiB for a %d-token session, %zu MiB available",
                 out->bytes >> 20, out->tokens, avail >> 20);
        return;
    }
    out->fit = CELL_FITS;
}

/* ------------------------------------------------------------------ calibration */

static int timed_eval(struct session *s, const int32_t *ids, int n, const struct forward_plan *fp,
                      const int32_t *targets, float *logprob, float *logits, double *seconds, char *err,
                      size_t errlen) {
    double t0 = host_monotonic_s();
    int rc = session_eval(s, ids, NULL, n, fp, targets, logprob, logits, err, errlen);
    *seconds = host_monotonic_s() - t0;
    return rc;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void calibrate_tokenizer(const struct runtime *rt, struct sweep_rates *r) {
    const struct tokenizer *tok = rt->model->tok;
    if (!tok) return;   /* tasks that tokenize will fail on this model anyway */
    static const char sentence[] = "Once upon a time, there was a little girl named Lily. She liked to play outside "
                                   "in the park with her friends, and the sky was blue. ";
    char *text = malloc(CAL_TEXT_BYTES + 1);
    if (!text) return;
    size_t n = 0;
    while (n + sizeof sentence - 1 <= CAL_TEXT_BYTES) {
        memcpy(text + n, sentence, sizeof sentence - 1);
        n += sizeof sentence - 1;
    }
    text[n] = 0;
    int32_t *ids;
    size_t n_ids;
    for (int rep = 0; rep < 2; rep++) {   /* the faster of two */
        double t0 = host_monotonic_s();
        if (tokenizer_encode(tok, text, n, false, &ids, &n_ids) != 0) break;
        double el = host_monotonic_s() - t0;
        if (n_ids > 0 && (r->tokenize_s == 0 || el / (double)n_ids < r->tokenize_s)) r->tokenize_s = el / (double)n_ids;
        free(ids);
    }
    free(text);
}

int sweep_calibrate(struct runtime *rt, struct sweep_rates *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    const struct model_config *c = &rt->model->cfg;
    const int cap = CAL_CHUNK * CAL_MAX_CHUNKS + CAL_STEPS;
    struct method_spec spec;
    struct method_plan plan;
    struct method_ctx mc = {.cfg = c, .target_len = cap, .seq_len = cap};
    if (method_spec_parse("baseline", &spec, err, errlen) != 0 || method_plan(&spec, &mc, &plan, err, errlen) != 0)
        return -1;
    struct forward_plan fp = method_forward_plan(&plan);
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    float *logprob = malloc((size_t)cap * sizeof *logprob), *logits = malloc((size_t)c->n_vocab * sizeof *logits);
    struct session *s = NULL;
    int rc = -1;
    if (!ids || !logprob || !logits) {
        snprintf(err, errlen, "calibration: out of memory");
        goto out;
    }
    /* any valid ids: the cost of a forward pass does not depend on them */
    for (int i = 0; i < cap; i++) ids[i] = (int32_t)(((int64_t)i * 7919 + 13) % c->n_vocab);
    s = session_new(rt->engine, cap, err, errlen);
    if (!s) goto out;
    /* Every prediction scored, as ppl does: the output layer's cost is in token_s. The
     * first pass warms caches and dequantized weights up and is not counted. */
    const int32_t *targets = ids + 1;
    double t1 = INFINITY, t;
    for (int rep = 0; rep < 3; rep++) {
        session_reset(s);
        if (timed_eval(s, ids, CAL_CHUNK, &fp, targets, logprob, logits, &t, err, errlen) != 0) goto out;
        if (rep > 0 && t < t1) t1 = t;
        if (rep == 0 && t > CAL_SLOW_S) {   /* a big model: its warm-up is the timing, and FLOPs split it */
            t1 = t;
            r->one_pass = true;
            break;
        }
    }
    if (r->one_pass) {
        double q = 4.0 * c->n_layers * c->n_heads * c->head_dim / (2.0 * (double)rt->model->n_params);
        double p1 = (double)CAL_CHUNK * (CAL_CHUNK + 1) / 2;
        r->token_s = t1 / (CAL_CHUNK + q * p1);
        r->pair_s = r->token_s * q;
        r->pair_from_flops = true;
        double step;
        if (timed_eval(s, ids + CAL_CHUNK, 1, &fp, NULL, NULL, logits, &step, err, errlen) != 0) goto out;
        r->step_s = step - r->pair_s * (CAL_CHUNK + 1);
        if (r->step_s < 0.1 * step) r->step_s = 0.1 * step;
        r->chunk_s = t1;
        r->context = CAL_CHUNK + 1;
        calibrate_tokenizer(rt, r);
        rc = 0;
        goto out;
    }
    /* then more chunks on top, as many as the time allows: attention grows with context.
     * Each timing is the fastest of its repeats: other processes only ever slow it down. */
    int more = t1 > 0 ? (int)(CAL_LONG_S / t1) : CAL_MAX_CHUNKS - 1;
    more = more < 1 ? 1 : more > CAL_MAX_CHUNKS - 1 ? CAL_MAX_CHUNKS - 1 : more;
    int n2 = more * CAL_CHUNK, ctx = CAL_CHUNK + n2;
    double t2 = INFINITY;
    for (int rep = 0; rep < 2; rep++) {
        session_reset(s);
        if (session_eval(s, ids, NULL, CAL_CHUNK, &fp, targets, logprob, logits, err, errlen) != 0 ||
            timed_eval(s, ids + CAL_CHUNK, n2, &fp, targets + CAL_CHUNK, logprob, logits, &t, err, errlen) != 0)
            goto out;
        if (t < t2) t2 = t;
    }
    double step[CAL_STEPS];
    for (int i = 0; i < CAL_STEPS; i++)
        if (timed_eval(s, ids + ctx + i, 1, &fp, NULL, NULL, logits, &step[i], err, errlen) != 0) goto out;
    qsort(step, CAL_STEPS, sizeof step[0], cmp_double);
    double t3 = (step[CAL_STEPS / 2 - 1] + step[CAL_STEPS / 2]) / 2;   /* the median */
    /* t1 = a 512 + b P1, t2 = a n2 + b P2 with P the causal pairs of each pass */
    double p1 = (double)CAL_CHUNK * (CAL_CHUNK + 1) / 2, p2 = ((double)ctx * (ctx + 1) - (double)CAL_CHUNK * (CAL_CHUNK + 1)) / 2;
    double det = CAL_CHUNK * p2 - n2 * p1;
    double a = (t1 * p2 - t2 * p1) / det, b = (CAL_CHUNK * t2 - n2 * t1) / det;
    if (!(a > 0 && b > 0)) {
        /* Timer noise on a tiny model: split the measured time by FLOPs instead (matrix
         * 2 x params per token, attention 4 x layers x heads x head_dim per pair). */
        double q = 4.0 * c->n_layers * c->n_heads * c->head_dim / (2.0 * (double)rt->model->n_params);
        a = (t1 + t2) / (CAL_CHUNK + n2 + q * (p1 + p2));
        b = a * q;
        r->pair_from_flops = true;
    }
    r->token_s = a;
    r->pair_s = b;
    /* a step attends ctx + 1 .. ctx + CAL_STEPS keys */
    r->step_s = t3 - b * (ctx + (CAL_STEPS + 1) / 2.0);
    if (r->step_s < 0.1 * t3) r->step_s = 0.1 * t3;
    r->chunk_s = t1;
    r->context = ctx + CAL_STEPS;
    calibrate_tokenizer(rt, r);
    rc = 0;
out:
    if (s) session_free(s);
    free(ids);
    free(logprob);
    free(logits);
    return rc;
}

double sweep_cell_seconds(const struct sweep_rates *r, const struct sweep_task *t, int length) {
    if (!t->task->work) return NAN;
    struct task_work w = {0};
    t->task->work(length, t->settings, &w);
    return r->token_s * w.prefill_tokens + r->pair_s * w.attn_pairs + r->step_s * w.decode_steps +
           r->tokenize_s * w.tokenized;
}

/* ------------------------------------------------------------------ reports */

static const char *mib(size_t bytes, char *buf, size_t cap) {
    double m = (double)bytes / (1 << 20);
    if (m >= 10240) snprintf(buf, cap, "%.1f GiB", m / 1024);
    else if (m >= 10) snprintf(buf, cap, "%.0f MiB", m);
    else snprintf(buf, cap, "%.1f MiB", m);
    return buf;
}

/* "task method L=length" */
static void cell_label(const struct sweep_config *cfg, int ti, int mi, int li, char *buf, size_t cap) {
    snprintf(buf, cap, "%.40s %.100s L=%d", cfg->tasks[ti].task->name, cfg->methods[mi].text, cfg->lengths[li]);
}

/* Appends "item" to a one-line list, "..., and N more" once it is full. */
struct line_list {
    char s[1536];
    int n, left_out;
};
static void list_add(struct line_list *l, const char *item) {
    size_t used = strlen(l->s);
    if (l->left_out || used + strlen(item) + 2 >= sizeof l->s - 32) {
        l->left_out++;
    } else {
        snprintf(l->s + used, sizeof l->s - used, "%s%s", l->n ? ", " : "", item);
        l->n++;
    }
}
static const char *list_text(struct line_list *l) {
    if (l->left_out) {
        size_t used = strlen(l->s);
        snprintf(l->s + used, sizeof l->s - used, " and %d more", l->left_out);
        l->left_out = 0;
    }
    return l->s;
}

void sweep_warn_skips(FILE *f, const struct runtime *rt, const struct sweep_config *cfg, const bool *done,
                      const bool *mine, size_t avail) {
    struct line_list l = {0};
    int n = 0;
    for (int li = 0, c = 0; li < cfg->n_lengths; li++)
        for (int ti = 0; ti < cfg->n_tasks; ti++)
            for (int mi = 0; mi < cfg->n_methods; mi++, c++) {
                if (done[c] || (mine && !mine[c])) continue;
                struct cell_need need;
                sweep_cell_need(rt, &cfg->tasks[ti], &cfg->methods[mi], cfg->lengths[li], avail, &need);
                if (need.fit != CELL_TOO_BIG) continue;   /* the memory warning; unsupported cells say why in their results */
                char label[200], item[300], m[32];
                cell_label(cfg, ti, mi, li, label, sizeof label);
                snprintf(item, sizeof item, "%s (%s)", label, mib(need.bytes, m, sizeof m));
                list_add(&l, item);
                n++;
            }
    if (n == 0 || !f) return;
    char m[32];
    fprintf(f, "sweep: warning: %d cell%s will be skipped, %s session%s more than the %s available: %s\n", n,
            n == 1 ? "" : "s", n == 1 ? "its" : "their", n == 1 ? " needs" : "s need", mib(avail, m, sizeof m),
            list_text(&l));
    fflush(f);
}

/* The memory of the whole run, before anything is timed: the mapped weights, what the
 * backend holds beside them, and the largest session of a cell to run. */
static void print_memory(FILE *f, const struct runtime *rt, const struct sweep_config *cfg, const bool *done,
                         const bool *mine, size_t avail) {
    size_t largest = 0;
    int tokens = 0;
    for (int li = 0, c = 0; li < cfg->n_lengths; li++)
        for (int ti = 0; ti < cfg->n_tasks; ti++)
            for (int mi = 0; mi < cfg->n_methods; mi++, c++) {
                if (done[c] || (mine && !mine[c])) continue;
                struct cell_need need;
                sweep_cell_need(rt, &cfg->tasks[ti], &cfg->methods[mi], cfg->lengths[li], avail, &need);
                if ((need.fit == CELL_FITS || need.fit == CELL_TOO_BIG) && need.bytes > largest) {
                    largest = need.bytes;
                    tokens = need.tokens;
                }
            }
    size_t weights = rt->model->gguf->size, held = rt->device.model_bytes, total = weights + held + largest;
    char w[32], h[32], l[32], t[32], a[32];
    fprintf(f, "memory: weights %s (%s, kept in the file's types) + backend %s + the largest session %s (%d tokens, "
            "KV cache %s/%s) = %s: %s the %s %s\n", mib(weights, w, sizeof w), rt->model->weight_type,
            mib(held, h, sizeof h), mib(largest, l, sizeof l), tokens, kv_type_name(rt->kv.k), kv_type_name(rt->kv.v),
            mib(total, t, sizeof t), total <= avail ? "fits in" : "more than", mib(avail, a, sizeof a),
            cfg->mem_limit ? "of --mem-limit" : "available");
    fflush(f);
}

int sweep_dry_run(FILE *f, struct runtime *rt, const struct sweep_config *cfg, const bool *done, const bool *mine,
                  size_t avail, struct sweep_summary *sum) {
    struct sweep_rates r;
    char d[32], m[32], why[512];
    print_memory(f, rt, cfg, done, mine, avail);
    /* Without a calibration (e.g. no memory for its session) the cells are still listed,
     * with their memory, and no times. */
    bool calibrated = sweep_calibrate(rt, &r, why, sizeof why) == 0;
    if (!calibrated) {
        fprintf(f, "calibration failed, no time estimates: %s\n", why);
        r = (struct sweep_rates){NAN, NAN, NAN, NAN, NAN, 0, false, false};
    }
    const char *threads = rt->device.name;
    if (calibrated)
        fprintf(f,
            "calibration (%s, KV cache %s/%s): 512-token chunk %s (%.0f tok/s), attention %.3g ns per (query, key) "
            "pair%s, decode step %.3g ms at %d tokens, tokenizer %.2g M tokens/s%s\n",
            threads, kv_type_name(rt->kv.k), kv_type_name(rt->kv.v), progress_duration(r.chunk_s, d, sizeof d), CAL_CHUNK / r.chunk_s, r.pair_s * 1e9,
            r.pair_from_flops ? " (by FLOPs)" : "", (r.step_s + r.pair_s * r.context) * 1e3, r.context,
            r.tokenize_s > 0 ? 1e-6 / r.tokenize_s : 0.0, r.one_pass ? " (a slow model: one pass timed)" : "");
    struct line_list skipped = {0};
    double total_s = 0;
    int n_run = 0, unknown = 0, w = snprintf(NULL, 0, "%d", sum->total), k = 0;
    for (int li = 0, c = 0; li < cfg->n_lengths; li++)
        for (int ti = 0; ti < cfg->n_tasks; ti++)
            for (int mi = 0; mi < cfg->n_methods; mi++, c++) {
                if (mine && !mine[c]) continue;   /* another shard's */
                const struct sweep_task *t = &cfg->tasks[ti];
                char label[200];
                cell_label(cfg, ti, mi, li, label, sizeof label);
                fprintf(f, "[%*d/%d] %s (%s): ", w, ++k, sum->total, label, t->settings[0] ? t->settings : "defaults");
                if (done[c]) {
                    fprintf(f, "done before\n");
                    continue;
                }
                struct cell_need need;
                sweep_cell_need(rt, t, &cfg->methods[mi], cfg->lengths[li], avail, &need);
                if (need.fit != CELL_FITS) {
                    fprintf(f, "%s: %s\n", need.fit == CELL_NO_PLAN ? "will fail" : "will be skipped", need.reason);
                    list_add(&skipped, label);
                    sum->skipped++;
                    continue;
                }
                double s = sweep_cell_seconds(&r, t, cfg->lengths[li]);
                fprintf(f, "session %d tokens, %s, ~%s\n", need.tokens, mib(need.bytes, m, sizeof m),
                        progress_duration(s, d, sizeof d));
                n_run++;
                if (need.bytes > sum->max_session_bytes) sum->max_session_bytes = need.bytes;
                if (isfinite(s)) total_s += s;
                else unknown++;
            }
    sum->est_seconds = n_run > 0 && unknown == n_run ? NAN : total_s;
    fprintf(f, "dry run: %d cells: %d done before, %d to run, estimated %s%s", sum->total, sum->cached, n_run,
            n_run > 0 && unknown == n_run ? "?" : progress_duration(total_s, d, sizeof d),
            unknown && unknown < n_run ? " (without the cells of unknown cost)" : "");
    if (sum->skipped) fprintf(f, "; %d will not run: %s", sum->skipped, list_text(&skipped));
    fprintf(f, ". Nothing was run or written.\n");
    fflush(f);
    return 0;
}

double sweep_cell_cost(const struct runtime *rt, const struct sweep_task *t, int length) {
    const struct model_config *c = &rt->model->cfg;
    double token = 2.0 * (double)rt->model->n_params, pair = 4.0 * c->n_layers * c->n_heads * c->head_dim;
    struct sweep_rates flops = {.token_s = token, .pair_s = pair, .step_s = token, .tokenize_s = 1e3};
    double cost = sweep_cell_seconds(&flops, t, length);
    if (!isfinite(cost)) {
        int tokens = t->task->session_tokens ? t->task->session_tokens(length, t->settings) : length;
        cost = token * (tokens > 0 ? tokens : length);
    }
    return cost;
}
