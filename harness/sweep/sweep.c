/* The grid runner (sweep.h): lengths outermost, so a sweep stopped early still holds
 * every method and task at the shorter lengths; then tasks, then methods. */
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dataset.h"
#include "host.h"
#include "input.h"
#include "progress.h"
#include "settings.h"
#include "sha256.h"
#include "store.h"
#include "sweep_plan.h"

/* The build writes the revision into $(BUILD)/gen/git_rev.h (see the Makefile). */
#if defined(__has_include)
#if __has_include("gen/git_rev.h")
#include "gen/git_rev.h"
#endif
#endif
#ifndef CTXBENCH_GIT_REV
#define CTXBENCH_GIT_REV "unknown"
#endif

const char *ctxbench_git_rev(void) { return CTXBENCH_GIT_REV; }

/* ------------------------------------------------------------------ lengths */

/* One length: N, Nk or Nx, in TASK_MIN_LENGTH..TASK_MAX_LENGTH. 0, or -1 (the caller
 * writes the message). */
static int parse_one_length(const char *s, size_t len, int ctx_train, long *out) {
    char buf[64];
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    double mult = 1;
    char last = buf[len - 1];
    if (last == 'k' || last == 'K') mult = 1024;
    else if (last == 'x' || last == 'X') mult = ctx_train;
    if (mult != 1 || last == 'x' || last == 'X') buf[--len] = 0;
    if (len == 0) return -1;
    for (size_t i = 0; i < len; i++)   /* plain decimal numbers only: no signs, exponents, hex */
        if (!((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '.')) return -1;
    char *end;
    errno = 0;
    double v = strtod(buf, &end) * mult;
    if (errno || *end || !(v >= TASK_MIN_LENGTH) || v > TASK_MAX_LENGTH || v != floor(v)) return -1;
    *out = (long)v;
    return 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int sweep_parse_lengths(const char *text, int ctx_train, int **out, int *n_out, char *err, size_t errlen) {
    *out = NULL;
    *n_out = 0;
    if (!text || !*text) {
        snprintf(err, errlen, "no lengths given");
        return -1;
    }
    int *v = malloc(SWEEP_MAX_LENGTHS * sizeof *v), n = 0;
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (const char *p = text;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        long a, b;
        int bad = colon ? parse_one_length(p, (size_t)(colon - p), ctx_train, &a) ||
                              parse_one_length(colon + 1, len - (size_t)(colon - p) - 1, ctx_train, &b)
                        : parse_one_length(p, len, ctx_train, &a);
        if (bad) {
            snprintf(err, errlen,
                     "bad length '%s' in '%s': expected N, Nk (x1024) or Nx (x the trained context %d) with "
                     "%d <= length <= %d (16384k), or A:B for A, 2A, 4A, ... up to B",
                     ECHO_N(p, len), ECHO(text), ctx_train, TASK_MIN_LENGTH, TASK_MAX_LENGTH);
            free(v);
            return -1;
        }
        if (!colon) b = a;
        if (b < a) {
            snprintf(err, errlen, "bad length range '%s' in '%s': the end is below the start", ECHO_N(p, len),
                     ECHO(text));
            free(v);
            return -1;
        }
        for (long x = a; x <= b; x *= 2) {
            if (n == SWEEP_MAX_LENGTHS) {
                snprintf(err, errlen, "lengths '%s': more than %d lengths", ECHO(text), SWEEP_MAX_LENGTHS);
                free(v);
                return -1;
            }
            v[n++] = (int)x;
        }
        if (!comma) break;
        p = comma + 1;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_int);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || v[i] != v[m - 1]) v[m++] = v[i];
    *out = v;
    *n_out = m;
    return 0;
}

/* ------------------------------------------------------------------ settings, data */

static int cmp_setting(const void *a, const void *b) {
    return strcmp(((const struct setting *)a)->key, ((const struct setting *)b)->key);
}

int sweep_canonical_settings(const char *text, char *out, size_t cap, char *err, size_t errlen) {
    /* Later items replace earlier ones, so split and parse item by item. */
    struct settings merged = {0}, one;
    char item[SETTINGS_KEY_MAX + SETTINGS_VAL_MAX + 2];
    for (const char *p = text ? text : ""; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len >= sizeof item) {
            snprintf(err, errlen, "settings '%s': item '%s' is too long", ECHO(text), ECHO_N(p, len));
            return -1;
        }
        memcpy(item, p, len);
        item[len] = 0;
        if (settings_parse(item, &one, err, errlen) != 0) return -1;
        if (one.n == 0) {
            snprintf(err, errlen, "settings '%s': empty item (expected k=v,k=v)", ECHO(text));
            return -1;
        }
        int i = 0;
        while (i < merged.n && strcmp(merged.kv[i].key, one.kv[0].key) != 0) i++;
        if (i == merged.n) {
            if (merged.n == SETTINGS_MAX) {
                snprintf(err, errlen, "settings '%s': more than %d items", ECHO(text), SETTINGS_MAX);
                return -1;
            }
            merged.n++;
        }
        merged.kv[i] = one.kv[0];
        if (!comma) break;
        p = comma + 1;
    }
    qsort(merged.kv, (size_t)merged.n, sizeof merged.kv[0], cmp_setting);
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < merged.n; i++) {
        int w = snprintf(out + used, cap - used, "%s%s=%s", i ? "," : "", merged.kv[i].key, merged.kv[i].val);
        if (w < 0 || (size_t)w >= cap - used) {
            snprintf(err, errlen, "settings '%s' are too long", ECHO(text));
            return -1;
        }
        used += (size_t)w;
    }
    return 0;
}

int sweep_data_path(const char *name, char *path, size_t cap, char *err, size_t errlen) {
    enum dataset_format format;
    char field[64];
    return dataset_resolve(name, path, cap, &format, field, sizeof field, err, errlen);
}

/* ------------------------------------------------------------------ cell key */

void sweep_cell_key(const char *model_sha256, const char *backend, const struct kv_types *kv,
                    const struct method_spec *m, const struct sweep_task *t, const char *data_sha256, int length,
                    uint64_t seed, char *key, size_t keycap, char *id, size_t idcap) {
    int n = snprintf(key, keycap,
                     "model_sha256=%s;backend=%s;method=%s;task=%s;settings=%s;data=%s;data_sha256=%s;length=%d;seed=%llu",
                     model_sha256, backend, m->text, t->task->name, t->settings, t->data, data_sha256, length,
                     (unsigned long long)seed);
    if (kv && (kv->k != KV_F32 || kv->v != KV_F32) && n > 0 && (size_t)n < keycap)
        snprintf(key + n, keycap - (size_t)n, ";cache_type_k=%s;cache_type_v=%s", kv_type_name(kv->k),
                 kv_type_name(kv->v));
    struct sha256 s;
    uint8_t d[32];
    char hex[65];
    sha256_begin(&s);
    sha256_add(&s, key, strlen(key));
    sha256_end(&s, d);
    sha256_hex(d, hex);
    /* readable prefix, cut to fit; the hash keeps ids unique */
    char method[96];
    snprintf(method, sizeof method, "%.95s", m->text);
    for (char *c = method; *c; c++)
        if (*c == '/') *c = '_';
    snprintf(id, idcap, "%.40s.%s.L%d.%.12s", t->task->name, method, length, hex);
}

/* ------------------------------------------------------------------ host facts */


/* ------------------------------------------------------------------ provenance */

#define MAX_ATTRS (64 + METHOD_MAX_PARAMS)

struct attr_list {
    struct store_attr a[MAX_ATTRS];
    int n;
};

static struct store_attr *attr_add(struct attr_list *l, const char *name) {
    if (l->n >= MAX_ATTRS) return NULL;   /* sized for every attribute below */
    struct store_attr *a = &l->a[l->n++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%.47s", name);
    return a;
}
static void add_s(struct attr_list *l, const char *name, const char *s) {
    struct store_attr *a = attr_add(l, name);
    if (a) { a->kind = STORE_STR; a->s = (char *)(s ? s : ""); }
}
static void add_f(struct attr_list *l, const char *name, double v) {
    struct store_attr *a = attr_add(l, name);
    if (a) { a->kind = STORE_F64; a->f = v; }
}
static void add_i(struct attr_list *l, const char *name, int64_t v) {
    struct store_attr *a = attr_add(l, name);
    if (a) { a->kind = STORE_I64; a->i = v; }
}

/* What is the same for every cell of this sweep. */
struct sweep_facts {
    char model_sha256[65];
    uint64_t model_size;
    const char *model_file;     /* base name */
    char host[256];
    int threads;
    char (*data_path)[4096];    /* per task */
    char (*data_sha256)[65];    /* per task; "" for no data */
};

static void add_common(struct attr_list *l, const struct sweep_config *cfg, const struct sweep_facts *fx,
                       const struct runtime *rt) {
    const struct model_config *c = &rt->model->cfg;
    add_s(l, "ctxbench_version", CTXBENCH_VERSION);
    add_s(l, "git_rev", ctxbench_git_rev());
    add_s(l, "model", fx->model_file);
    add_s(l, "model_path", cfg->model_path);
    add_i(l, "model_size", (int64_t)fx->model_size);
    add_s(l, "model_sha256", fx->model_sha256);
    add_s(l, "arch", c->arch_name);
    add_i(l, "n_params", (int64_t)rt->model->n_params);
    add_s(l, "weight_type", rt->model->weight_type);
    add_i(l, "dim", c->dim);
    add_i(l, "n_layers", c->n_layers);
    add_i(l, "n_heads", c->n_heads);
    add_i(l, "n_kv_heads", c->n_kv_heads);
    add_i(l, "head_dim", c->head_dim);
    add_i(l, "n_vocab", c->n_vocab);
    add_i(l, "ctx_train", c->ctx_train);
    add_i(l, "rope_dims", c->n_rot);
    add_f(l, "rope_base", c->rope_base);
    add_s(l, "rope_style", c->rope_style == ROPE_NEOX ? "neox" : "norm");
    add_s(l, "rope_scaling_type", c->rope_scaling.type);
    add_f(l, "rope_scaling_factor", c->rope_scaling.factor);
    add_i(l, "rope_scaling_original_ctx", c->rope_scaling.original_ctx);
    add_i(l, "sliding_window", c->sliding_window);
    add_s(l, "backend", rt->be->name);
    add_s(l, "device", rt->device.name);
    add_s(l, "backend_params", rt->device.params);
    add_i(l, "threads", fx->threads);
    add_s(l, "cache_type_k", kv_type_name(rt->kv.k));
    add_s(l, "cache_type_v", kv_type_name(rt->kv.v));
    add_s(l, "host", fx->host);
    add_i(l, "seed", (int64_t)cfg->seed);
}

/* ------------------------------------------------------------------ the run */

struct cell_progress {
    struct progress *p;
    long tokens;
};

static void on_progress(void *arg, double frac, long tokens) {
    struct cell_progress *cp = arg;
    if (tokens > cp->tokens) cp->tokens = tokens;
    if (cp->p) progress_update(cp->p, frac, tokens);
}

static int prepare_facts(const struct sweep_config *cfg, const struct runtime *rt, struct sweep_facts *fx,
                         char *err, size_t errlen) {
    memset(fx, 0, sizeof *fx);
    if (sha256_file(cfg->model_path, fx->model_sha256, &fx->model_size, err, errlen) != 0) return -1;
    const char *slash = strrchr(cfg->model_path, '/');
    fx->model_file = slash ? slash + 1 : cfg->model_path;
    if (gethostname(fx->host, sizeof fx->host - 1) != 0) snprintf(fx->host, sizeof fx->host, "unknown");
    fx->threads = rt->device.n_threads;
    fx->data_path = calloc((size_t)cfg->n_tasks, sizeof *fx->data_path);
    fx->data_sha256 = calloc((size_t)cfg->n_tasks, sizeof *fx->data_sha256);
    if (!fx->data_path || !fx->data_sha256) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int t = 0; t < cfg->n_tasks; t++) {
        const char *data = cfg->tasks[t].data;
        if (!data[0]) continue;
        /* the dataset module's own path and hash: exactly what the task will read */
        struct dataset ds;
        if (dataset_load(data, &ds, err, errlen) != 0) return -1;
        snprintf(fx->data_path[t], sizeof fx->data_path[t], "%s", ds.path);
        snprintf(fx->data_sha256[t], sizeof fx->data_sha256[t], "%s", ds.sha256);
        dataset_free(&ds);
    }
    return 0;
}

/* One cell: decide skip/fail/run, then write it. -1 only when writing failed. */
static int run_cell(struct runtime *rt, const struct sweep_config *cfg, const struct sweep_facts *fx,
                    struct store *st, struct progress *pg, const char *id, const char *key,
                    const struct method_spec *m, int ti, int length, struct sweep_summary *sum, char *err,
                    size_t errlen) {
    const struct sweep_task *t = &cfg->tasks[ti];
    struct attr_list l = {0};
    char cell_err[1024] = "", note[256] = "", started[64], outcome[1200];
    enum cell_status status = CELL_FAILED;
    struct result res = {0};
    struct cell_progress cp = {.p = pg};
    double used[METHOD_MAX_PARAMS];
    int n_used = 0;

    double t_wall = host_wall_s(), t0 = host_monotonic_s();
    const double load_start = host_load_avg();   /* a shared machine's other work shows in the timings */
    time_t secs = (time_t)t_wall;
    struct tm tmv;
    gmtime_r(&secs, &tmv);
    strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tmv);

    /* A method plan that fails (e.g. a derived parameter out of range at this length)
     * fails the cell: the task could not run either. */
    struct cell_need cn;
    sweep_cell_need(rt, t, m, length, cfg->mem_limit ? cfg->mem_limit : rt->device.mem_free, &cn);
    int tokens = cn.tokens;
    size_t need = cn.bytes;
    if (cn.fit != CELL_FITS) {
        if (cn.fit != CELL_NO_PLAN) status = CELL_SKIPPED;
        snprintf(cell_err, sizeof cell_err, "%s", cn.reason);
    } else {
        snprintf(note, sizeof note, "%s", cn.plan.note);
        n_used = m->method->n_params;
        memcpy(used, cn.plan.used, sizeof used);
        host_reset_peak_rss();
        struct task_ctx tc = {.rt = rt,
                              .method = m,
                              .length = length,
                              .data = t->data[0] ? t->data : NULL,
                              .settings = t->settings,
                              .seed = cfg->seed,
                              .cache_dir = cfg->cache_dir,
                              .progress = on_progress,
                              .progress_arg = &cp};
        if (t->task->run(&tc, &res, cell_err, sizeof cell_err) == 0) status = CELL_DONE;
        else {
            result_free(&res);
            if (!cell_err[0]) snprintf(cell_err, sizeof cell_err, "task %s failed without a reason", t->task->name);
        }
    }
    double wall = host_monotonic_s() - t0;
    const struct result_item *tok_item = result_find(&res, "tokens");
    long n_tok = cp.tokens > 0 ? cp.tokens : tok_item && tok_item->kind == RESULT_SCALAR ? (long)tok_item->value : 0;
    const char *headline = "";
    for (int i = 0; i < res.n; i++)
        if (res.items[i].kind == RESULT_SCALAR) {
            headline = res.items[i].name;
            break;
        }

    add_s(&l, "key", key);
    if (status != CELL_DONE) add_s(&l, "error", cell_err);
    add_s(&l, "task", t->task->name);
    add_s(&l, "task_settings", t->settings);
    add_s(&l, "data", t->data);
    if (t->limit > 0) add_i(&l, "limit", t->limit);
    add_s(&l, "data_path", fx->data_path[ti]);
    add_s(&l, "data_sha256", fx->data_sha256[ti]);
    add_i(&l, "length", length);
    add_s(&l, "method", m->text);
    add_s(&l, "method_name", m->method->name);
    char pname[METHOD_MAX_PARAMS][48];
    for (int i = 0; i < n_used; i++) {
        snprintf(pname[i], sizeof pname[i], "method.%s", m->method->params[i].name);
        add_f(&l, pname[i], used[i]);
    }
    add_s(&l, "method_note", note);
    add_s(&l, "headline", headline);
    add_common(&l, cfg, fx, rt);
    add_i(&l, "session_tokens", tokens);
    add_f(&l, "session_mib", (double)need / (1 << 20));
    add_s(&l, "started", started);
    add_f(&l, "started_unix", t_wall);
    add_f(&l, "wall_s", wall);
    add_i(&l, "tokens", n_tok);
    add_f(&l, "tokens_per_s", wall > 0 ? n_tok / wall : 0);
    add_f(&l, "peak_rss_mib", status == CELL_DONE ? host_peak_rss_mib() : NAN);
    add_f(&l, "load_avg_start", load_start);
    add_f(&l, "load_avg_end", host_load_avg());

    if (cfg->writing) *cfg->writing = 1;
    int w = store_put(st, id, status, l.a, l.n, status == CELL_DONE ? &res : NULL, err, errlen);
    if (cfg->writing) *cfg->writing = 0;

    if (status == CELL_DONE) {
        sum->done++;
        const struct result_item *h = headline[0] ? result_find(&res, headline) : NULL;
        if (h) snprintf(outcome, sizeof outcome, "done, %s = %.6g", h->name, h->value);
        else snprintf(outcome, sizeof outcome, "done");
    } else {
        if (status == CELL_SKIPPED) sum->skipped++;
        else sum->failed++;
        snprintf(outcome, sizeof outcome, "%s: %s", cell_status_name(status), cell_err);
    }
    if (pg) progress_end(pg, outcome);
    result_free(&res);
    return w;
}

/* ------------------------------------------------------------------ shards */

int sweep_parse_shard(const char *text, int *shard, int *n_shards, char *err, size_t errlen) {
    const char *slash = text ? strchr(text, '/') : NULL;
    char a[16], b[16];
    long i = 0, n = 0;
    bool ok = slash && slash > text && (size_t)(slash - text) < sizeof a && strlen(slash + 1) < sizeof b;
    if (ok) {
        snprintf(a, sizeof a, "%.*s", (int)(slash - text), text);
        snprintf(b, sizeof b, "%s", slash + 1);
        char *e1, *e2;
        ok = a[0] >= '0' && a[0] <= '9' && b[0] >= '0' && b[0] <= '9';
        i = strtol(a, &e1, 10);
        n = strtol(b, &e2, 10);
        ok = ok && !*e1 && !*e2 && n >= 1 && n <= 100000 && i >= 1 && i <= n;
    }
    if (!ok) {
        snprintf(err, errlen, "--shard '%s': expected I/N, the I-th of N shares with 1 <= I <= N <= 100000 (e.g. 2/8)",
                 ECHO(text));
        return -1;
    }
    *shard = (int)i;
    *n_shards = (int)n;
    return 0;
}

struct by_cost {
    const struct sweep_cell_info *c;
};
static int cmp_by_cost(const void *a, const void *b) {
    const struct sweep_cell_info *x = ((const struct by_cost *)a)->c, *y = ((const struct by_cost *)b)->c;
    if (x->cost != y->cost) return x->cost > y->cost ? -1 : 1;   /* largest first */
    return strcmp(x->id, y->id);
}

/* Longest processing time first: each cell, largest first, to the least loaded share. */
static int assign_shards(struct sweep_cell_info *cells, int n, int n_shards) {
    struct by_cost *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    double *load = calloc((size_t)n_shards, sizeof *load);
    if (!order || !load) {
        free(order);
        free(load);
        return -1;
    }
    for (int c = 0; c < n; c++) order[c].c = &cells[c];
    qsort(order, (size_t)n, sizeof *order, cmp_by_cost);
    for (int k = 0; k < n; k++) {
        int best = 0;
        for (int s = 1; s < n_shards; s++)
            if (load[s] < load[best]) best = s;
        ((struct sweep_cell_info *)order[k].c)->shard = best;
        load[best] += order[k].c->cost;
    }
    free(order);
    free(load);
    return 0;
}

/* The grid's cells with ids, keys (keys may be NULL) and shares. */
static int list_cells(const struct runtime *rt, const struct sweep_config *cfg, const struct sweep_facts *fx,
                      int n_shards, struct sweep_cell_info *cells, char (*keys)[2048]) {
    char key[2048];
    for (int li = 0, c = 0; li < cfg->n_lengths; li++)
        for (int ti = 0; ti < cfg->n_tasks; ti++)
            for (int mi = 0; mi < cfg->n_methods; mi++, c++) {
                struct sweep_cell_info *ci = &cells[c];
                sweep_cell_key(fx->model_sha256, rt->be->name, &rt->kv, &cfg->methods[mi], &cfg->tasks[ti], fx->data_sha256[ti],
                               cfg->lengths[li], cfg->seed, keys ? keys[c] : key, sizeof key, ci->id, sizeof ci->id);
                ci->li = li;
                ci->ti = ti;
                ci->mi = mi;
                ci->cost = n_shards > 0 ? sweep_cell_cost(rt, &cfg->tasks[ti], cfg->lengths[li]) : 0;
                ci->shard = 0;
            }
    return n_shards > 0 ? assign_shards(cells, cfg->n_methods * cfg->n_tasks * cfg->n_lengths, n_shards) : 0;
}

static int grid_size(const struct sweep_config *cfg, char *err, size_t errlen) {
    if (cfg->n_methods < 1 || cfg->n_tasks < 1 || cfg->n_lengths < 1 || !cfg->methods || !cfg->tasks ||
        !cfg->lengths) {
        snprintf(err, errlen, "the grid is empty (methods %d, tasks %d, lengths %d)", cfg->n_methods, cfg->n_tasks,
                 cfg->n_lengths);
        return -1;
    }
    if ((long)cfg->n_methods * cfg->n_tasks * cfg->n_lengths > 1000000) {
        snprintf(err, errlen, "the grid has more than a million cells");
        return -1;
    }
    return cfg->n_methods * cfg->n_tasks * cfg->n_lengths;
}

int sweep_list_cells(struct runtime *rt, const struct sweep_config *cfg, int n_shards, struct sweep_cell_info **out,
                     int *n_out, char *err, size_t errlen) {
    *out = NULL;
    *n_out = 0;
    int n = grid_size(cfg, err, errlen);
    if (n < 0) return -1;
    struct sweep_facts fx;
    struct sweep_cell_info *cells = calloc((size_t)n, sizeof *cells);
    int rc = -1;
    if (!cells) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (prepare_facts(cfg, rt, &fx, err, errlen) == 0) {
        if (list_cells(rt, cfg, &fx, n_shards, cells, NULL) != 0) snprintf(err, errlen, "out of memory");
        else rc = 0;
    }
    free(fx.data_path);
    free(fx.data_sha256);
    if (rc != 0) {
        free(cells);
        return -1;
    }
    *out = cells;
    *n_out = n;
    return 0;
}

static int cmp_cell_id(const void *key, const void *cell) {
    return strcmp(key, ((const struct store_cell *)cell)->id);
}

/* Whether cell `id` is done among cells read from the file (sorted by id). */
static bool prior_done(const struct store_cell *cells, int n, const char *id) {
    const struct store_cell *c = n > 0 ? bsearch(id, cells, (size_t)n, sizeof *cells, cmp_cell_id) : NULL;
    return c && c->status == CELL_DONE;
}

int sweep_run(struct runtime *rt, const struct sweep_config *cfg, struct sweep_summary *sum, char *err,
              size_t errlen) {
    memset(sum, 0, sizeof *sum);
    int n = grid_size(cfg, err, errlen), rc = -1;
    if (n < 0) return -1;
    if (cfg->n_shards < 0 || (cfg->n_shards > 0 && (cfg->shard < 1 || cfg->shard > cfg->n_shards))) {
        snprintf(err, errlen, "shard %d of %d: expected 1 <= shard <= shards", cfg->shard, cfg->n_shards);
        return -1;
    }
    struct sweep_facts fx;
    struct store *st = NULL;
    struct sweep_cell_info *cells = calloc((size_t)n, sizeof *cells);
    char (*keys)[2048] = calloc((size_t)n, sizeof *keys);
    bool *mine = calloc((size_t)n, sizeof *mine);   /* this shard's cells (all without sharding) */
    struct progress_cell *todo = NULL;
    bool *done = NULL;                 /* per cell: done in the file before this run */
    struct store_cell *prior = NULL;   /* a dry run: the file's cells, sorted by id */
    int n_prior = 0;
    memset(&fx, 0, sizeof fx);
    if (!cells || !keys || !mine) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (prepare_facts(cfg, rt, &fx, err, errlen) != 0) goto out;
    if (list_cells(rt, cfg, &fx, cfg->n_shards, cells, keys) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    done = calloc((size_t)n, sizeof *done);
    if (!done) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* A dry run only reads what is done (no lock, no file created); a run opens the file
     * for writing. */
    if (cfg->dry_run ? access(cfg->out_path, F_OK) == 0 &&
                           store_read(cfg->out_path, false, &prior, &n_prior, err, errlen) != 0
                     : !(st = store_open(cfg->out_path, err, errlen)))
        goto out;

    /* The grid, in run order, and what is already done. */
    todo = malloc((size_t)n * sizeof *todo);
    if (!todo) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    int n_todo = 0, n_mine = 0;
    double cost_mine = 0, cost_all = 0;
    for (int li = 0, c = 0; li < cfg->n_lengths; li++)
        for (int ti = 0; ti < cfg->n_tasks; ti++)
            for (int mi = 0; mi < cfg->n_methods; mi++, c++) {
                mine[c] = cfg->n_shards == 0 || cells[c].shard == cfg->shard - 1;
                cost_all += cells[c].cost;
                if (!mine[c]) continue;
                n_mine++;
                cost_mine += cells[c].cost;
                done[c] = st ? store_cell_status(st, cells[c].id) == CELL_DONE : prior_done(prior, n_prior, cells[c].id);
                if (done[c]) sum->cached++;
                else todo[n_todo++] = (struct progress_cell){.group = ti % PROGRESS_MAX_GROUPS, .length = cfg->lengths[li]};
            }
    sum->total = n_mine;
    struct progress pg;
    if (cfg->log) {
        char line[2048];
        snprintf(line, sizeof line, "sweep: %s (%llu bytes, sha256 %.16s...), %d methods x %d tasks x %d lengths = %d cells, "
                 "%d already done in %s", cfg->model_path, (unsigned long long)fx.model_size, fx.model_sha256,
                 cfg->n_methods, cfg->n_tasks, cfg->n_lengths, n, sum->cached, cfg->out_path);
        fprintf(cfg->log, "%s\n", line);
        if (cfg->n_shards > 0)
            fprintf(cfg->log, "  shard %d/%d: %d of the %d cells, %.1f%% of the grid's nominal cost\n", cfg->shard,
                    cfg->n_shards, n_mine, n, cost_all > 0 ? 100 * cost_mine / cost_all : 0.0);
        for (int ti = 0; ti < cfg->n_tasks; ti++)
            fprintf(cfg->log, "  task %s: settings '%s', data '%s'\n", cfg->tasks[ti].task->name,
                    cfg->tasks[ti].settings[0] ? cfg->tasks[ti].settings : "(defaults)",
                    cfg->tasks[ti].data[0] ? cfg->tasks[ti].data : "(none)");
    }
    size_t avail = cfg->mem_limit ? cfg->mem_limit : rt->device.mem_free;
    if (cfg->dry_run) {
        rc = sweep_dry_run(cfg->log ? cfg->log : stdout, rt, cfg, done, mine, avail, sum);
        goto out;
    }
    if (cfg->log) {
        sweep_warn_skips(cfg->log, rt, cfg, done, mine, avail);
        progress_init(&pg, cfg->log, isatty(fileno(cfg->log)), n_mine, todo, n_todo);
    }
    int k_mine = 0;
    for (int li = 0, c = 0; li < cfg->n_lengths; li++)
        for (int ti = 0; ti < cfg->n_tasks; ti++)
            for (int mi = 0; mi < cfg->n_methods; mi++, c++) {
                if (!mine[c]) continue;
                k_mine++;   /* the cell's number within this run's share */
                if (done[c]) continue;
                if (cfg->stop && *cfg->stop) {
                    sum->interrupted = 1;
                    rc = 0;
                    goto out;
                }
                char label[160];
                snprintf(label, sizeof label, "%.40s %.100s L=%d", cfg->tasks[ti].task->name, cfg->methods[mi].text,
                         cfg->lengths[li]);
                if (cfg->log) progress_begin(&pg, k_mine, label);
                if (run_cell(rt, cfg, &fx, st, cfg->log ? &pg : NULL, cells[c].id, keys[c], &cfg->methods[mi], ti,
                             cfg->lengths[li], sum, err, errlen) != 0)
                    goto out;
            }
    if (cfg->stop && *cfg->stop) sum->interrupted = 1;
    rc = 0;
out:
    /* the journaled cells into the HDF5 file; a failure (a full disk) loses none: they stay
     * in the journal, which readers see and the next run folds */
    if (rc == 0 && st && store_fold(st, err, errlen) != 0) rc = -1;
    store_close(st);
    store_cells_free(prior, n_prior);
    free(done);
    free(fx.data_path);
    free(fx.data_sha256);
    free(cells);
    free(keys);
    free(mine);
    free(todo);
    return rc;
}
