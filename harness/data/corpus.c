/* A dataset tokenized with one model's vocabulary, cached on disk. A sweep runs the same
 * corpus through many cells; tokenizing a shelf of books each time would cost more than
 * some cells, so the ids are stored under a key that changes whenever the text, the way
 * it is split into documents, or the vocabulary changes.
 *
 * Cache file layout (little-endian, native): "CTXCORP1", the 64-hex key, int64 n_docs,
 * int64 n_ids, int64 doc_start[n_docs + 1], int32 ids[n_ids]. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "gguf.h"
#include "input.h"
#include "model.h"
#include "sha256.h"
#include "tokenizer.h"

#define CORPUS_MAGIC "CTXCORP1"
/* Bump when the cache layout or the document rules change. */
#define CORPUS_VERSION "ctxbench-corpus-1"

static void hash_u64(struct sha256 *h, uint64_t v) { sha256_add(h, &v, sizeof v); }

int dataset_tokenizer_hash(const struct model *m, char hex[65], char *err, size_t errlen) {
    if (!m || !m->tok || !m->gguf) {
        snprintf(err, errlen, "the model has no tokenizer");
        return -1;
    }
    struct sha256 h;
    sha256_begin(&h);
    sha256_add(&h, CORPUS_VERSION, strlen(CORPUS_VERSION));
    const struct gguf *g = m->gguf;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct gguf_kv *kv = &g->kv[i];
        if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10) != 0) continue;
        hash_u64(&h, kv->key.len);
        sha256_add(&h, kv->key.ptr, kv->key.len);
        hash_u64(&h, kv->type);
        if (kv->type == GGUF_TYPE_STRING) {
            hash_u64(&h, kv->v.str.len);
            sha256_add(&h, kv->v.str.ptr, kv->v.str.len);
        } else if (kv->type == GGUF_TYPE_ARRAY) {
            hash_u64(&h, kv->v.arr.type);
            hash_u64(&h, kv->v.arr.n);
            if (kv->v.arr.type == GGUF_TYPE_STRING)
                for (uint64_t k = 0; k < kv->v.arr.n; k++) {
                    struct gguf_str s = gguf_arr_str(kv, k);
                    hash_u64(&h, s.len);
                    sha256_add(&h, s.ptr, s.len);
                }
            else   /* the reader checked that n elements lie within the file */
                sha256_add(&h, kv->v.arr.data, (size_t)kv->v.arr.n * gguf_type_size(kv->v.arr.type));
        } else {
            hash_u64(&h, kv->v.u64);   /* every scalar is widened into the same 8 bytes */
        }
    }
    /* The ids of a probe text: a change in the tokenizer code changes them too. */
    static const char probe[] = "Once upon a time, 123 ducks said \"Hello!\"\n\nThe pass key is 72498.  \xC3\xBC\xE4\xBD\xA0";
    int32_t *ids;
    size_t n;
    if (tokenizer_encode(m->tok, probe, sizeof probe - 1, false, &ids, &n) != 0) {
        snprintf(err, errlen, "the tokenizer failed on a probe text");
        return -1;
    }
    hash_u64(&h, n);
    sha256_add(&h, ids, n * sizeof *ids);
    free(ids);
    uint8_t dg[32];
    sha256_end(&h, dg);
    sha256_hex(dg, hex);
    return 0;
}

/* The cache key: what was read, how it was split, and with which vocabulary. */
static void cache_key(const struct dataset *ds, const char *tok_hex, char key[65]) {
    struct sha256 h;
    sha256_begin(&h);
    char head[256];
    int w = snprintf(head, sizeof head, "%s|format=%d|field=%s|data=%s|tok=", CORPUS_VERSION, (int)ds->format,
                     ds->field, ds->sha256);
    sha256_add(&h, head, (size_t)w < sizeof head ? (size_t)w : sizeof head - 1);
    sha256_add(&h, tok_hex, 64);
    uint8_t dg[32];
    sha256_end(&h, dg);
    sha256_hex(dg, key);
}

/* Reads a cache file; 0 when it is complete and consistent, -1 otherwise (not an error:
 * the corpus is then tokenized again and the file replaced). The file is read whole by
 * the one file reader (input.h) without its text limit, since the harness wrote and
 * sized it itself; every count is checked against the bytes read before it is used. */
static int cache_read(const char *path, const char *key, int32_t n_vocab, struct corpus *c) {
    char err[256];
    size_t size;
    char *buf = input_read_file_max(path, INPUT_UNLIMITED, &size, err, sizeof err);
    if (!buf) return -1;   /* no cache yet, or unreadable */
    const size_t fixed = 8 + 64 + 16;
    int64_t nd, ni;
    int rc = -1;
    if (size < fixed || memcmp(buf, CORPUS_MAGIC, 8) != 0 || memcmp(buf + 8, key, 64) != 0) goto out;
    memcpy(&nd, buf + 72, sizeof nd);
    memcpy(&ni, buf + 80, sizeof ni);
    if (nd < 1 || nd > INT32_MAX || ni < 0 || (uint64_t)nd > (size - fixed) / 8 || (uint64_t)ni > (size - fixed) / 4 ||
        fixed + (uint64_t)(nd + 1) * 8 + (uint64_t)ni * 4 != size)
        goto out;
    c->doc_start = malloc((size_t)(nd + 1) * sizeof *c->doc_start);
    if (!c->doc_start) goto out;
    memcpy(c->doc_start, buf + fixed, (size_t)(nd + 1) * sizeof *c->doc_start);
    if (c->doc_start[0] != 0 || c->doc_start[nd] != ni) goto out;
    for (int64_t i = 0; i < nd; i++)
        if (c->doc_start[i + 1] < c->doc_start[i]) goto out;
    /* The ids are the file's tail: moved to the front of its buffer, which becomes c->ids,
     * so a large corpus is never held twice. */
    memmove(buf, buf + fixed + (size_t)(nd + 1) * 8, (size_t)ni * sizeof *c->ids);
    int32_t *ids = (int32_t *)(void *)buf;   /* malloc'd: aligned for any type */
    for (int64_t i = 0; i < ni; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) goto out;
    int32_t *fit = realloc(buf, (size_t)(ni ? ni : 1) * sizeof *ids);
    c->ids = fit ? fit : ids;   /* a failed shrink keeps the larger block */
    buf = NULL;
    c->n_docs = (int)nd;
    c->n_ids = ni;
    rc = 0;
out:
    if (rc != 0) {
        free(c->doc_start);
        c->doc_start = NULL;
    }
    free(buf);
    return rc;
}

/* mkdir -p */
static int make_dirs(const char *dir) {
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* Writes the cache: a temporary file in the same folder, then rename, so a reader sees
 * either no file or a whole one even if this process is killed half way. */
static int cache_write(const char *dir, const char *path, const char *key, const struct corpus *c) {
    if (make_dirs(dir) != 0) return -1;
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int64_t nd = c->n_docs, ni = c->n_ids;
    bool ok = fwrite(CORPUS_MAGIC, 1, 8, f) == 8 && fwrite(key, 1, 64, f) == 64 && fwrite(&nd, 8, 1, f) == 1 &&
              fwrite(&ni, 8, 1, f) == 1 && fwrite(c->doc_start, 8, (size_t)nd + 1, f) == (size_t)nd + 1 &&
              fwrite(c->ids, 4, (size_t)ni, f) == (size_t)ni && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int tokenize_all(const struct dataset *ds, const struct tokenizer *tok, struct corpus *c, char *err,
                        size_t errlen) {
    c->doc_start = malloc((size_t)(ds->n_docs + 1) * sizeof *c->doc_start);
    if (!c->doc_start) goto oom;
    size_t cap = 0;
    c->doc_start[0] = 0;
    for (int d = 0; d < ds->n_docs; d++) {
        int32_t *ids;
        size_t n;
        if (tokenizer_encode(tok, ds->docs[d], ds->doc_len[d], false, &ids, &n) != 0) {
            snprintf(err, errlen, "dataset '%s': could not tokenize document %d (%zu bytes)", ECHO(ds->spec), d + 1,
                     ds->doc_len[d]);
            return -1;
        }
        if ((size_t)c->n_ids + n > cap) {
            size_t want = cap ? cap : 1 << 16;
            while (want < (size_t)c->n_ids + n) want *= 2;
            int32_t *grown = realloc(c->ids, want * sizeof *grown);
            if (!grown) {
                free(ids);
                goto oom;
            }
            c->ids = grown;
            cap = want;
        }
        if (n) memcpy(c->ids + c->n_ids, ids, n * sizeof *ids);   /* c->ids is still NULL after empty documents */
        free(ids);
        c->n_ids += (int64_t)n;
        c->doc_start[d + 1] = c->n_ids;
    }
    if (!c->ids && !(c->ids = malloc(sizeof *c->ids))) goto oom;
    c->n_docs = ds->n_docs;
    return 0;
oom:
    snprintf(err, errlen, "dataset '%s': out of memory while tokenizing", ECHO(ds->spec));
    return -1;
}

int corpus_load(const struct dataset *ds, const struct model *m, const char *cache_dir, struct corpus *c,
                char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    if (dataset_tokenizer_hash(m, c->tokenizer_sha256, err, errlen) != 0) return -1;
    char key[65];
    cache_key(ds, c->tokenizer_sha256, key);
    if (cache_dir && *cache_dir) {
        int w = snprintf(c->cache_path, sizeof c->cache_path, "%s/corpus-%.32s.bin", cache_dir, key);
        if (w < 0 || (size_t)w >= sizeof c->cache_path - 16) c->cache_path[0] = 0;   /* no room for ".tmp.PID" */
    }
    if (c->cache_path[0] && cache_read(c->cache_path, key, tokenizer_n_vocab(m->tok), c) == 0) {
        if (c->n_docs == ds->n_docs) {
            c->from_cache = true;
            return 0;
        }
        free(c->ids);
        free(c->doc_start);
        c->ids = NULL;
        c->doc_start = NULL;
        c->n_docs = 0;
        c->n_ids = 0;
    }
    if (tokenize_all(ds, m->tok, c, err, errlen) != 0) {
        corpus_free(c);
        return -1;
    }
    if (c->cache_path[0] && cache_write(cache_dir, c->cache_path, key, c) != 0) c->cache_path[0] = 0;
    return 0;
}

void corpus_free(struct corpus *c) {
    free(c->ids);
    free(c->doc_start);
    memset(c, 0, sizeof *c);
}

int corpus_require(const struct corpus *c, const struct dataset *ds, int64_t needed, const char *what, char *err,
                   size_t errlen) {
    if (c->n_ids >= needed) return 0;
    snprintf(err, errlen, "dataset '%s' (%s) has %lld tokens in %d documents; %s needs %lld", ECHO(ds->spec),
             ECHO(ds->path), (long long)c->n_ids, c->n_docs, what, (long long)needed);
    return -1;
}
