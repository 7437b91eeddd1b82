/* The cell journal's record format (store_journal.h): encoding, scanning, decoding.
 * Plain bytes, no HDF5: the store writes records and folds them into the HDF5 file. */
#include "store_journal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

static const unsigned char magic[4] = {'C', 'X', 'J', '1'};
#define HEAD 12   /* magic + u64 length */
#define TAIL 8    /* checksum */
/* A payload larger than this is damage, not a cell (the largest arrays are per-position
 * curves: 2^31 doubles is what the reader accepts). */
#define MAX_PAYLOAD ((uint64_t)1 << 36)

char *store_utf8_clean(const char *s) {
    size_t n = strlen(s);
    if (n > ((size_t)-1 - 1) / 3) return NULL;
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        bool ok = len > 0;
        for (int i = 1; ok && i < len; i++) ok = (p[i] & 0xC0) == 0x80;
        if (ok && len > 1) {   /* reject overlong forms, surrogates and code points past U+10FFFF */
            unsigned cp = len == 2 ? (p[0] & 31u) << 6 | (p[1] & 63u)
                        : len == 3 ? (p[0] & 15u) << 12 | (p[1] & 63u) << 6 | (p[2] & 63u)
                                   : (p[0] & 7u) << 18 | (p[1] & 63u) << 12 | (p[2] & 63u) << 6 | (p[3] & 63u);
            unsigned min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
            ok = cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
        }
        if (ok) {
            memcpy(o, p, (size_t)len);
            o += len;
            p += len;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
        }
    }
    *o = 0;
    return out;
}

/* ------------------------------------------------------------------ encoding */

struct wbuf {
    unsigned char *p;
    size_t n, cap;
    bool oom;
};

static void put(struct wbuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u64(struct wbuf *b, uint64_t v) {
    unsigned char c[8];
    for (int i = 0; i < 8; i++) c[i] = (unsigned char)(v >> 8 * i);
    put(b, c, 8);
}
static void put_u32(struct wbuf *b, uint32_t v) {
    unsigned char c[4];
    for (int i = 0; i < 4; i++) c[i] = (unsigned char)(v >> 8 * i);
    put(b, c, 4);
}
static void put_u8(struct wbuf *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}
static void put_f64(struct wbuf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);   /* the bits: -0.0 and NaN payloads survive */
    put_u64(b, u);
}
static void put_str(struct wbuf *b, const char *s) {
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}
/* A text as HDF5 will store it. */
static void put_clean(struct wbuf *b, const char *s) {
    char *c = store_utf8_clean(s ? s : "");
    if (!c) {
        b->oom = true;
        return;
    }
    put_str(b, c);
    free(c);
}

static void checksum(const unsigned char *p, size_t n, unsigned char out[TAIL]) {
    struct sha256 s;
    uint8_t d[32];
    sha256_begin(&s);
    sha256_add(&s, p, n);
    sha256_end(&s, d);
    memcpy(out, d, TAIL);
}

int journal_encode(const char *id, enum cell_status status, const struct store_attr *attrs, int n_attrs,
                   const struct result *res, unsigned char **rec, size_t *len) {
    struct wbuf b = {0};
    put(&b, magic, 4);
    put_u64(&b, 0);   /* the payload length, filled in below */
    put_str(&b, id);
    put_u8(&b, (unsigned)status);
    put_u32(&b, (uint32_t)n_attrs);
    for (int i = 0; i < n_attrs; i++) {
        put_str(&b, attrs[i].name);
        put_u8(&b, (unsigned)attrs[i].kind);
        if (attrs[i].kind == STORE_STR) put_clean(&b, attrs[i].s);
        else if (attrs[i].kind == STORE_F64) put_f64(&b, attrs[i].f);
        else put_u64(&b, (uint64_t)attrs[i].i);
    }
    int n_items = status == CELL_DONE && res ? (res->n < RESULT_MAX_ITEMS ? res->n : RESULT_MAX_ITEMS) : 0;
    put_u32(&b, (uint32_t)n_items);
    for (int i = 0; i < n_items; i++) {
        const struct result_item *it = &res->items[i];
        put_str(&b, it->name);
        put_u8(&b, (unsigned)it->kind);
        if (it->kind == RESULT_SCALAR) {
            put_f64(&b, it->value);
        } else if (it->kind == RESULT_TEXT) {
            put_clean(&b, it->text);
        } else {
            put_u32(&b, (uint32_t)it->rows);
            put_u32(&b, (uint32_t)it->cols);
            for (size_t k = 0; k < (size_t)it->rows * (size_t)it->cols; k++) put_f64(&b, it->data[k]);
        }
    }
    unsigned char sum[TAIL];
    if (!b.oom) {
        uint64_t plen = b.n - HEAD;
        for (int i = 0; i < 8; i++) b.p[4 + i] = (unsigned char)(plen >> 8 * i);
        checksum(b.p + 4, b.n - 4, sum);
        put(&b, sum, TAIL);
    }
    if (b.oom) {
        free(b.p);
        return -1;
    }
    *rec = b.p;
    *len = b.n;
    return 0;
}

/* ------------------------------------------------------------------ scanning */

static uint64_t get_u64_at(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << 8 * i;
    return v;
}

int journal_next(const unsigned char *buf, size_t len, size_t *off, const unsigned char **payload, size_t *plen) {
    size_t o = *off;
    if (o > len || len - o < HEAD + TAIL || memcmp(buf + o, magic, 4) != 0) return 0;
    uint64_t n = get_u64_at(buf + o + 4);
    if (n > MAX_PAYLOAD || n > len - o - HEAD - TAIL) return 0;
    unsigned char sum[TAIL];
    checksum(buf + o + 4, 8 + (size_t)n, sum);
    if (memcmp(sum, buf + o + HEAD + n, TAIL) != 0) return 0;
    *payload = buf + o + HEAD;
    *plen = (size_t)n;
    *off = o + HEAD + (size_t)n + TAIL;
    return 1;
}

/* ------------------------------------------------------------------ decoding */

struct rbuf {
    const unsigned char *p;
    size_t n, off;
    bool bad;
};

static const unsigned char *take(struct rbuf *r, size_t n) {
    if (r->bad || n > r->n - r->off) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *p = r->p + r->off;
    r->off += n;
    return p;
}
static uint64_t get_u64(struct rbuf *r) {
    const unsigned char *p = take(r, 8);
    return p ? get_u64_at(p) : 0;
}
static uint32_t get_u32(struct rbuf *r) {
    const unsigned char *p = take(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : 0;
}
static unsigned get_u8(struct rbuf *r) {
    const unsigned char *p = take(r, 1);
    return p ? *p : 0;
}
static double get_f64(struct rbuf *r) {
    uint64_t u = get_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}
/* A string into buf (cap bytes, NUL-terminated); too long is damage. */
static void get_name(struct rbuf *r, char *buf, size_t cap) {
    uint32_t n = get_u32(r);
    const unsigned char *p = n < cap ? take(r, n) : (r->bad = true, NULL);
    if (!p) {
        buf[0] = 0;
        return;
    }
    memcpy(buf, p, n);
    buf[n] = 0;
}
static char *get_strdup(struct rbuf *r) {
    uint32_t n = get_u32(r);
    const unsigned char *p = take(r, n);
    char *s = p ? malloc((size_t)n + 1) : NULL;
    if (!s) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static void cell_free(struct store_cell *c) {
    for (int j = 0; j < c->n_attrs; j++) free(c->attrs[j].s);
    free(c->attrs);
    result_free(&c->res);
    memset(c, 0, sizeof *c);
}

int journal_decode(const unsigned char *payload, size_t n, bool with_arrays, struct store_cell *out) {
    struct rbuf r = {.p = payload, .n = n};
    memset(out, 0, sizeof *out);
    get_name(&r, out->id, sizeof out->id);
    unsigned status = get_u8(&r);
    uint32_t n_attrs = get_u32(&r);
    if (r.bad || !out->id[0] || status < CELL_DONE || status > CELL_FAILED || n_attrs > n) goto bad;
    out->status = (enum cell_status)status;
    out->attrs = calloc((size_t)n_attrs + 1, sizeof *out->attrs);
    if (!out->attrs) goto bad;
    struct store_attr *st = &out->attrs[out->n_attrs++];
    snprintf(st->name, sizeof st->name, "status");
    st->kind = STORE_STR;
    if (!(st->s = strdup(cell_status_name(out->status)))) goto bad;
    for (uint32_t i = 0; i < n_attrs; i++) {
        struct store_attr *a = &out->attrs[out->n_attrs];
        get_name(&r, a->name, sizeof a->name);
        unsigned kind = get_u8(&r);
        if (r.bad || kind > STORE_I64) goto bad;
        a->kind = (enum store_attr_kind)kind;
        if (kind == STORE_STR) a->s = get_strdup(&r);
        else if (kind == STORE_F64) a->f = get_f64(&r);
        else a->i = (int64_t)get_u64(&r);
        if (r.bad) goto bad;
        out->n_attrs++;
    }
    uint32_t n_items = get_u32(&r);
    if (r.bad || n_items > RESULT_MAX_ITEMS) goto bad;
    /* two passes, as HDF5 gives them back: scalars and texts (attributes), then arrays */
    size_t items_at = r.off;
    for (int pass = 0; pass < 2; pass++) {
        r.off = items_at;
        for (uint32_t i = 0; i < n_items; i++) {
            char name[RESULT_NAME_MAX];
            get_name(&r, name, sizeof name);
            unsigned kind = get_u8(&r);
            if (r.bad || kind > RESULT_TEXT) goto bad;
            int rc = 0;
            if (kind == RESULT_SCALAR) {
                double v = get_f64(&r);
                if (pass == 0 && !r.bad) rc = result_scalar(&out->res, name, v);
            } else if (kind == RESULT_TEXT) {
                char *s = get_strdup(&r);
                if (pass == 0 && s) rc = result_text(&out->res, name, s);
                free(s);
            } else {
                uint32_t rows = get_u32(&r), cols = get_u32(&r);
                uint64_t count = (uint64_t)rows * cols;
                if (r.bad || rows == 0 || cols == 0 || rows > (1u << 30) || cols > (1u << 30) || count > (r.n - r.off) / 8)
                    goto bad;
                const unsigned char *p = take(&r, (size_t)count * 8);
                if (pass == 1 && with_arrays && p) {
                    double *v = malloc((size_t)count * sizeof *v);
                    if (!v) goto bad;
                    for (uint64_t k = 0; k < count; k++) {
                        uint64_t u = get_u64_at(p + 8 * k);
                        memcpy(&v[k], &u, 8);
                    }
                    rc = result_array(&out->res, name, v, (int)rows, (int)cols);
                    free(v);
                }
            }
            if (r.bad || rc != 0) goto bad;
        }
    }
    if (r.off != r.n) goto bad;
    return 0;
bad:
    cell_free(out);
    return -1;
}
