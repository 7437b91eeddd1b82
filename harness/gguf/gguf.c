/* GGUF v2/v3 reader.
 *
 * Layout (little-endian):
 *   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
 *   padding to `general.alignment` | tensor data (each tensor at data_offset + offset)
 * where string = u64 length + bytes (no NUL) and array = u32 elem_type + u64 n + elems.
 *
 * The file is mapped read-only and parsed through a cursor that refuses to
 * step past the end, so every length and count is validated before use, and
 * every count is compared with the bytes left before anything is allocated. */
#include "gguf.h"
#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_DEFAULT_ALIGNMENT 32

/* Parse state: the mapped bytes, a position in them, and where to report errors. */
struct cursor {
    const uint8_t *base;
    size_t size;
    size_t pos;
    const char *path;
    char *err;
    size_t errlen;
};

/* Writes "path: message" into the error buffer; always returns false so
 * callers can `return fail(...)`. */
static bool fail(struct cursor *c, const char *fmt, ...) {
    if (!c->err || c->errlen == 0) return false;
    int n = snprintf(c->err, c->errlen, "%s: ", ECHO(c->path));
    if (n < 0) n = 0;
    if ((size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Copies a string from the file into buf for an error message: at most 64
 * characters, anything unprintable (newlines included) replaced by '?', so
 * the message stays one line whatever the file contains. */
static const char *printable(struct gguf_str s, char *buf, size_t cap) {
    size_t n = s.len < 64 ? (size_t)s.len : 64;
    if (n + 4 > cap) n = cap > 4 ? cap - 4 : 0;
    size_t i = 0;
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        buf[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (s.len > n && cap >= 4) { memcpy(buf + i, "...", 3); i += 3; }
    buf[i] = '\0';
    return buf;
}

static size_t remaining(const struct cursor *c) { return c->size - c->pos; }

static bool take(struct cursor *c, size_t n, const char *what, const void **out) {
    if (n > remaining(c))
        return fail(c, "truncated: %s at byte %zu needs %zu bytes, only %zu left",
                    what, c->pos, n, remaining(c));
    *out = c->base + c->pos;
    c->pos += n;
    return true;
}

static bool read_u32(struct cursor *c, const char *what, uint32_t *v) {
    const void *p = NULL;
    if (!take(c, 4, what, &p)) return false;
    memcpy(v, p, 4);
    return true;
}

static bool read_u64(struct cursor *c, const char *what, uint64_t *v) {
    const void *p = NULL;
    if (!take(c, 8, what, &p)) return false;
    memcpy(v, p, 8);
    return true;
}

static bool read_str(struct cursor *c, const char *what, struct gguf_str *s) {
    uint64_t len;
    if (!read_u64(c, what, &len)) return false;
    if (len > remaining(c))
        return fail(c, "truncated: %s at byte %zu has length %llu but only %zu bytes are left in the file",
                    what, c->pos - 8, (unsigned long long)len, remaining(c));
    s->ptr = (const char *)(c->base + c->pos);
    s->len = len;
    c->pos += (size_t)len;
    return true;
}

size_t gguf_type_size(enum gguf_value_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

const char *gguf_type_name(enum gguf_value_type t) {
    static const char *const names[GGUF_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
    };
    return (unsigned)t < GGUF_TYPE_COUNT ? names[t] : "unknown";
}

/* Widens a scalar at p into the kv's union member for its type. */
static void decode_scalar(uint32_t t, const uint8_t *p, struct gguf_kv *kv) {
    switch (t) {
    case GGUF_TYPE_UINT8: kv->v.u64 = p[0]; break;
    case GGUF_TYPE_BOOL: kv->v.u64 = p[0] != 0; break;
    case GGUF_TYPE_INT8: kv->v.i64 = (int8_t)p[0]; break;
    case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, p, 2); kv->v.u64 = x; break; }
    case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, p, 2); kv->v.i64 = x; break; }
    case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, p, 4); kv->v.u64 = x; break; }
    case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, p, 4); kv->v.i64 = x; break; }
    case GGUF_TYPE_UINT64: { uint64_t x; memcpy(&x, p, 8); kv->v.u64 = x; break; }
    case GGUF_TYPE_INT64: { int64_t x; memcpy(&x, p, 8); kv->v.i64 = x; break; }
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, p, 4); kv->v.f64 = x; break; }
    case GGUF_TYPE_FLOAT64: { double x; memcpy(&x, p, 8); kv->v.f64 = x; break; }
    default: break;
    }
}

static bool read_array(struct cursor *c, struct gguf_kv *kv, const char *key) {
    uint32_t et;
    uint64_t n;
    if (!read_u32(c, "array element type", &et)) return false;
    if (!read_u64(c, "array length", &n)) return false;
    if (et == GGUF_TYPE_ARRAY)
        return fail(c, "key '%s' is an array of arrays, which ctxbench does not read", key);
    kv->v.arr.type = (enum gguf_value_type)et;
    kv->v.arr.n = n;
    kv->v.arr.data = c->base + c->pos;
    kv->v.arr.str_offsets = NULL;
    if (et == GGUF_TYPE_STRING) {
        /* Each string takes at least its 8-byte length prefix: a count that
         * cannot fit in what is left is rejected before the offsets table
         * is allocated. */
        if (n > remaining(c) / 8)
            return fail(c, "key '%s': array of %llu strings cannot fit in the %zu bytes left",
                        key, (unsigned long long)n, remaining(c));
        uint64_t *offs = malloc((size_t)(n ? n : 1) * sizeof *offs);
        if (!offs) return fail(c, "out of memory for the %llu strings of key '%s'", (unsigned long long)n, key);
        kv->v.arr.str_offsets = offs;   /* owned by kv from here on, freed by gguf_close */
        size_t start = c->pos;
        for (uint64_t i = 0; i < n; i++) {
            struct gguf_str s;
            offs[i] = c->pos - start;
            if (!read_str(c, "array string", &s)) return false;
        }
        return true;
    }
    size_t es = gguf_type_size((enum gguf_value_type)et);
    if (es == 0)
        return fail(c, "key '%s': array element type %u is not a GGUF value type", key, et);
    if (n > remaining(c) / es)
        return fail(c, "key '%s': array of %llu %s values cannot fit in the %zu bytes left",
                    key, (unsigned long long)n, gguf_type_name((enum gguf_value_type)et), remaining(c));
    c->pos += (size_t)n * es;
    return true;
}

static bool read_kv(struct cursor *c, struct gguf_kv *kv) {
    char kbuf[80];
    if (!read_str(c, "metadata key", &kv->key)) return false;
    const char *key = printable(kv->key, kbuf, sizeof kbuf);
    if (kv->key.len == 0) return fail(c, "metadata key at byte %zu is empty", c->pos - 8);
    uint32_t t;
    if (!read_u32(c, "metadata value type", &t)) return false;
    kv->type = (enum gguf_value_type)t;
    if (t == GGUF_TYPE_STRING) return read_str(c, "string value", &kv->v.str);
    if (t == GGUF_TYPE_ARRAY) return read_array(c, kv, key);
    size_t es = gguf_type_size((enum gguf_value_type)t);
    if (es == 0) return fail(c, "key '%s' has value type %u, which is not a GGUF value type", key, t);
    const void *p = NULL;
    if (!take(c, es, "metadata value", &p)) return false;
    decode_scalar(t, p, kv);
    return true;
}

/* Compares two file strings for sorting (length-aware; they are not NUL-terminated). */
static int str_cmp(struct gguf_str a, struct gguf_str b) {
    size_t n = a.len < b.len ? (size_t)a.len : (size_t)b.len;
    int r = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (r) return r;
    return (a.len > b.len) - (a.len < b.len);
}

static int str_ptr_cmp(const void *a, const void *b) {
    return str_cmp(**(const struct gguf_str *const *)a, **(const struct gguf_str *const *)b);
}

/* Sorts pointers to the n names and reports the first name that appears twice. */
static bool check_unique(struct cursor *c, const struct gguf_str **names, uint64_t n, const char *what) {
    if (n < 2) return true;
    qsort(names, (size_t)n, sizeof *names, str_ptr_cmp);
    for (uint64_t i = 1; i < n; i++) {
        if (str_cmp(*names[i - 1], *names[i]) == 0) {
            char buf[80];
            return fail(c, "duplicate %s '%s'", what, printable(*names[i], buf, sizeof buf));
        }
    }
    return true;
}

static bool read_tensor_info(struct cursor *c, struct gguf_tensor *t, uint64_t index) {
    char nbuf[80];
    if (!read_str(c, "tensor name", &t->name)) return false;
    const char *name = printable(t->name, nbuf, sizeof nbuf);
    if (t->name.len == 0) return fail(c, "tensor %llu has an empty name", (unsigned long long)index);
    if (!read_u32(c, "tensor n_dims", &t->n_dims)) return false;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return fail(c, "tensor %llu '%s' has %u dimensions (must be 1 to %d)",
                    (unsigned long long)index, name, t->n_dims, GGUF_MAX_DIMS);
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (!read_u64(c, "tensor dimension", &t->ne[d])) return false;
    uint32_t type;
    if (!read_u32(c, "tensor type", &type)) return false;
    if (!read_u64(c, "tensor offset", &t->offset)) return false;

    /* Every dimension positive and the element count representable. */
    uint64_t nel = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX)
            return fail(c, "tensor '%s' has invalid dimension %u = %llu", name, d, (unsigned long long)t->ne[d]);
        if (nel > (uint64_t)INT64_MAX / t->ne[d])
            return fail(c, "tensor '%s' has too many elements (dimensions overflow)", name);
        nel *= t->ne[d];
    }

    char tbuf[32];
    const char *tname = ggml_type_name(type, tbuf, sizeof tbuf);
    if (!ggml_type_supported(type)) {
        if (strncmp(tname, "type ", 5) == 0)
            return fail(c, "tensor '%s' has unknown type %u (supported: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K)",
                        name, type);
        return fail(c, "tensor '%s' has type %s, which ctxbench does not read "
                       "(supported: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K)", name, tname);
    }
    t->type = (enum ggml_type)type;
    size_t be = ggml_block_elems(type);
    if (t->ne[0] % be != 0)
        return fail(c, "tensor '%s' has rows of %llu elements, not a multiple of the %s block size %zu",
                    name, (unsigned long long)t->ne[0], tname, be);
    uint64_t row = ggml_row_bytes(type, t->ne[0]);
    uint64_t rows = nel / t->ne[0];
    if (row == 0 || rows > UINT64_MAX / row)
        return fail(c, "tensor '%s' is too large", name);
    t->nbytes = row * rows;
    return true;
}

/* Validates the whole image g->map[0, g->size) and fills g; the cursor carries the
 * name used in error messages. Closes g and returns NULL on failure. */
static struct gguf *parse(struct gguf *g, struct cursor *cur) {
    struct cursor c = *cur;
    size_t size = g->size;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    c.base = g->map;
    c.size = size;
    const struct gguf_str **names = NULL;
    const void *magic = NULL;
    if (!take(&c, 4, "magic", &magic)) goto bad;
    if (memcmp(magic, "GGUF", 4) != 0) {
        const unsigned char *m = magic;
        fail(&c, "not a GGUF file (magic bytes %02x %02x %02x %02x, expected \"GGUF\")", m[0], m[1], m[2], m[3]);
        goto bad;
    }
    if (!read_u32(&c, "version", &g->version)) goto bad;
    if (g->version == 1) { fail(&c, "GGUF version 1 is not supported (ctxbench reads versions 2 and 3)"); goto bad; }
    if (g->version != 2 && g->version != 3) {
        if (g->version != 0 && (g->version & 0xffff) == 0)
            fail(&c, "GGUF version field %u looks byte-swapped: big-endian GGUF files are not supported", g->version);
        else
            fail(&c, "GGUF version %u is not supported (ctxbench reads versions 2 and 3)", g->version);
        goto bad;
    }
    if (!read_u64(&c, "tensor count", &g->n_tensors)) goto bad;
    if (!read_u64(&c, "metadata count", &g->n_kv)) goto bad;

    /* A kv takes at least 8 (key length) + 1 (key) + 4 (type) + 1 (value) bytes,
     * a tensor info at least 8 + 1 + 4 + 8 + 4 + 8; anything more than the
     * rest of the file could hold is rejected before allocating. */
    if (g->n_kv > remaining(&c) / 14) {
        fail(&c, "metadata count %llu cannot fit in a file of %zu bytes", (unsigned long long)g->n_kv, size);
        goto bad;
    }
    if (g->n_tensors > remaining(&c) / 33) {
        fail(&c, "tensor count %llu cannot fit in a file of %zu bytes", (unsigned long long)g->n_tensors, size);
        goto bad;
    }
    g->kv = calloc((size_t)g->n_kv ? (size_t)g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc((size_t)g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *g->tensors);
    uint64_t n_names = g->n_kv > g->n_tensors ? g->n_kv : g->n_tensors;
    names = malloc((size_t)(n_names ? n_names : 1) * sizeof *names);
    if (!g->kv || !g->tensors || !names) { fail(&c, "out of memory"); goto bad; }

    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!read_kv(&c, &g->kv[i])) goto bad;
    for (uint64_t i = 0; i < g->n_kv; i++) names[i] = &g->kv[i].key;
    if (!check_unique(&c, names, g->n_kv, "metadata key")) goto bad;

    const struct gguf_kv *al = gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_TYPE_UINT32 && al->type != GGUF_TYPE_UINT64 &&
            al->type != GGUF_TYPE_UINT16 && al->type != GGUF_TYPE_UINT8) {
            fail(&c, "general.alignment has type %s, expected an unsigned integer", gguf_type_name(al->type));
            goto bad;
        }
        uint64_t a = al->v.u64;
        if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 30)) {
            fail(&c, "general.alignment %llu is not a power of two between 1 and 2^30", (unsigned long long)a);
            goto bad;
        }
        g->alignment = a;
    }

    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!read_tensor_info(&c, &g->tensors[i], i)) goto bad;
    for (uint64_t i = 0; i < g->n_tensors; i++) names[i] = &g->tensors[i].name;
    if (!check_unique(&c, names, g->n_tensors, "tensor name")) goto bad;

    /* The data section starts at the next multiple of the alignment. A file
     * with no tensors may end before that padding. */
    uint64_t data_off = ((uint64_t)c.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (data_off > size) {
        if (g->n_tensors > 0) {
            fail(&c, "truncated: the data section would start at byte %llu, past the end of the %zu-byte file",
                 (unsigned long long)data_off, size);
            goto bad;
        }
        data_off = size;
    }
    g->data_offset = (size_t)data_off;
    uint64_t data_size = size - data_off;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct gguf_tensor *t = &g->tensors[i];
        char nbuf[80];
        const char *name = printable(t->name, nbuf, sizeof nbuf);
        if (t->offset % g->alignment != 0) {
            fail(&c, "tensor '%s' offset %llu is not a multiple of the alignment %llu",
                 name, (unsigned long long)t->offset, (unsigned long long)g->alignment);
            goto bad;
        }
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            fail(&c, "truncated: tensor '%s' (%llu bytes at data offset %llu) extends past the end of the file "
                     "(data section is %llu bytes)", name, (unsigned long long)t->nbytes,
                 (unsigned long long)t->offset, (unsigned long long)data_size);
            goto bad;
        }
        t->data = g->map + data_off + t->offset;
    }
    free(names);
    return g;

bad:
    free(names);
    gguf_close(g);
    return NULL;
}

struct gguf *gguf_open(const char *path, char *err, size_t errlen) {
    struct cursor c = { .path = path, .err = err, .errlen = errlen };
    if (err && errlen) err[0] = '\0';

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { fail(&c, "cannot open: %s", strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st) != 0) { fail(&c, "cannot stat: %s", strerror(errno)); close(fd); return NULL; }
    if (!S_ISREG(st.st_mode)) { fail(&c, "not a regular file"); close(fd); return NULL; }
    if (st.st_size < 24) {
        fail(&c, "file is %lld bytes, too small to be GGUF (the header alone is 24)", (long long)st.st_size);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) { fail(&c, "cannot mmap: %s", strerror(errno)); close(fd); return NULL; }

    struct gguf *g = calloc(1, sizeof *g);
    if (!g) { fail(&c, "out of memory"); munmap(map, size); close(fd); return NULL; }
    snprintf(g->path, sizeof g->path, "%s", path);
    g->fd = fd;
    g->map = map;
    g->size = size;
    g->owns_map = true;
    return parse(g, &c);
}

struct gguf *gguf_open_memory(const void *data, size_t size, const char *name, char *err, size_t errlen) {
    struct cursor c = { .path = name, .err = err, .errlen = errlen };
    if (err && errlen) err[0] = '\0';
    if (size < 24) {
        fail(&c, "%zu bytes, too small to be GGUF (the header alone is 24)", size);
        return NULL;
    }
    struct gguf *g = calloc(1, sizeof *g);
    if (!g) { fail(&c, "out of memory"); return NULL; }
    snprintf(g->path, sizeof g->path, "%s", name);
    g->fd = -1;
    g->map = data;
    g->size = size;
    return parse(g, &c);
}

void gguf_close(struct gguf *g) {
    if (!g) return;
    if (g->kv) {
        for (uint64_t i = 0; i < g->n_kv; i++)
            if (g->kv[i].type == GGUF_TYPE_ARRAY) free((void *)g->kv[i].v.arr.str_offsets);
        free(g->kv);
    }
    free(g->tensors);
    if (g->map && g->owns_map) munmap((void *)g->map, g->size);
    if (g->fd >= 0) close(g->fd);
    free(g);
}

bool gguf_str_eq(struct gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

const struct gguf_kv *gguf_find_kv(const struct gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (gguf_str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (gguf_str_eq(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

bool gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out) {
    const struct gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv) return false;
    switch (kv->type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32: case GGUF_TYPE_UINT64: case GGUF_TYPE_BOOL:
        *out = kv->v.u64;
        return true;
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        if (kv->v.i64 < 0) return false;   /* a negative value is not a count */
        *out = (uint64_t)kv->v.i64;
        return true;
    default:
        return false;
    }
}

bool gguf_get_f64(const struct gguf *g, const char *key, double *out) {
    const struct gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || (kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64)) return false;
    *out = kv->v.f64;
    return true;
}

bool gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out) {
    const struct gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_TYPE_STRING) return false;
    *out = kv->v.str;
    return true;
}

struct gguf_str gguf_arr_str(const struct gguf_kv *kv, uint64_t i) {
    struct gguf_str s = { "", 0 };
    if (kv->type != GGUF_TYPE_ARRAY || kv->v.arr.type != GGUF_TYPE_STRING || i >= kv->v.arr.n) return s;
    const uint8_t *p = kv->v.arr.data + kv->v.arr.str_offsets[i];
    memcpy(&s.len, p, 8);
    s.ptr = (const char *)(p + 8);
    return s;
}
