/* GGUF v3 writer: metadata is serialized into a byte buffer as it is added,
 * tensor descriptions are kept in a list with their data offsets assigned at
 * add time, and the file is produced in one sequential pass (see gguf_write.h). */
#include "gguf_write.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_ALIGNMENT 32

/* A growable byte buffer. */
struct bytes {
    uint8_t *p;
    size_t len, cap;
};

struct tensor_desc {
    char *name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t offset;     /* within the data section */
    uint64_t nbytes;
    const void *data;    /* NULL when streamed */
};

struct gguf_writer {
    struct bytes kv;         /* serialized key/value pairs */
    uint64_t n_kv;
    char **keys;             /* for duplicate detection */
    size_t keys_cap;
    struct tensor_desc *tensors;
    size_t n_tensors, tensors_cap;
    uint64_t data_size;      /* data section bytes so far, padded */
    uint32_t alignment;
    char err[256];           /* first error from an add call */

    /* streaming state */
    FILE *f;
    char *path;
    size_t cur;              /* tensor being written */
    uint64_t cur_written;    /* bytes of it written so far */
};

static int set_err(struct gguf_writer *w, const char *fmt, ...) {
    if (w->err[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->err, sizeof w->err, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int bytes_put(struct bytes *b, const void *data, size_t n) {
    if (n > SIZE_MAX - b->len) return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) return -1;
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static int put_u32(struct bytes *b, uint32_t v) { return bytes_put(b, &v, 4); }
static int put_u64(struct bytes *b, uint64_t v) { return bytes_put(b, &v, 8); }
static int put_str(struct bytes *b, const char *s, uint64_t len) {
    if (put_u64(b, len) || bytes_put(b, s, (size_t)len)) return -1;
    return 0;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

struct gguf_writer *gguf_writer_new(void) {
    struct gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(struct gguf_writer *w) {
    if (!w) return;
    if (w->f) {          /* an unfinished stream: do not leave half a model behind */
        fclose(w->f);
        if (w->path) unlink(w->path);
    }
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w->kv.p);
    free(w->path);
    free(w);
}

/* Records the key (rejecting duplicates) and writes its key string and value type. */
static int begin_kv(struct gguf_writer *w, const char *key, enum gguf_value_type type) {
    if (!key || !*key) return set_err(w, "empty metadata key");
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return set_err(w, "duplicate metadata key '%s'", key);
    if (w->n_kv == w->keys_cap) {
        size_t cap = w->keys_cap ? 2 * w->keys_cap : 32;
        char **k = realloc(w->keys, cap * sizeof *k);
        if (!k) return set_err(w, "out of memory");
        w->keys = k;
        w->keys_cap = cap;
    }
    char *copy = strdup(key);
    if (!copy) return set_err(w, "out of memory");
    if (put_str(&w->kv, key, strlen(key)) || put_u32(&w->kv, (uint32_t)type)) {
        free(copy);
        return set_err(w, "out of memory");
    }
    w->keys[w->n_kv++] = copy;
    return 0;
}

static int add_scalar(struct gguf_writer *w, const char *key, enum gguf_value_type t, const void *v, size_t size) {
    if (begin_kv(w, key, t)) return -1;
    if (bytes_put(&w->kv, v, size)) return set_err(w, "out of memory");
    return 0;
}

int gguf_writer_add_u8(struct gguf_writer *w, const char *k, uint8_t v) { return add_scalar(w, k, GGUF_TYPE_UINT8, &v, 1); }
int gguf_writer_add_i8(struct gguf_writer *w, const char *k, int8_t v) { return add_scalar(w, k, GGUF_TYPE_INT8, &v, 1); }
int gguf_writer_add_u16(struct gguf_writer *w, const char *k, uint16_t v) { return add_scalar(w, k, GGUF_TYPE_UINT16, &v, 2); }
int gguf_writer_add_i16(struct gguf_writer *w, const char *k, int16_t v) { return add_scalar(w, k, GGUF_TYPE_INT16, &v, 2); }
int gguf_writer_add_u32(struct gguf_writer *w, const char *k, uint32_t v) { return add_scalar(w, k, GGUF_TYPE_UINT32, &v, 4); }
int gguf_writer_add_i32(struct gguf_writer *w, const char *k, int32_t v) { return add_scalar(w, k, GGUF_TYPE_INT32, &v, 4); }
int gguf_writer_add_u64(struct gguf_writer *w, const char *k, uint64_t v) { return add_scalar(w, k, GGUF_TYPE_UINT64, &v, 8); }
int gguf_writer_add_i64(struct gguf_writer *w, const char *k, int64_t v) { return add_scalar(w, k, GGUF_TYPE_INT64, &v, 8); }
int gguf_writer_add_f32(struct gguf_writer *w, const char *k, float v) { return add_scalar(w, k, GGUF_TYPE_FLOAT32, &v, 4); }
int gguf_writer_add_f64(struct gguf_writer *w, const char *k, double v) { return add_scalar(w, k, GGUF_TYPE_FLOAT64, &v, 8); }
int gguf_writer_add_bool(struct gguf_writer *w, const char *k, bool v) {
    uint8_t b = v ? 1 : 0;
    return add_scalar(w, k, GGUF_TYPE_BOOL, &b, 1);
}

int gguf_writer_add_strn(struct gguf_writer *w, const char *key, const char *v, uint64_t len) {
    if (begin_kv(w, key, GGUF_TYPE_STRING)) return -1;
    if (put_str(&w->kv, v, len)) return set_err(w, "out of memory");
    return 0;
}

int gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *v) {
    return gguf_writer_add_strn(w, key, v, strlen(v));
}

int gguf_writer_add_array(struct gguf_writer *w, const char *key, enum gguf_value_type elem_type,
                          const void *elems, uint64_t n) {
    size_t es = gguf_type_size(elem_type);
    if (es == 0) return set_err(w, "key '%s': arrays of %s need gguf_writer_add_str_array or are not supported",
                                key, gguf_type_name(elem_type));
    if (n > SIZE_MAX / es) return set_err(w, "key '%s': array too large", key);
    if (begin_kv(w, key, GGUF_TYPE_ARRAY)) return -1;
    if (put_u32(&w->kv, (uint32_t)elem_type) || put_u64(&w->kv, n) || bytes_put(&w->kv, elems, (size_t)n * es))
        return set_err(w, "out of memory");
    return 0;
}

int gguf_writer_add_str_array(struct gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    if (begin_kv(w, key, GGUF_TYPE_ARRAY)) return -1;
    if (put_u32(&w->kv, GGUF_TYPE_STRING) || put_u64(&w->kv, n)) return set_err(w, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        if (put_str(&w->kv, strs[i], strlen(strs[i]))) return set_err(w, "out of memory");
    return 0;
}

int gguf_writer_set_alignment(struct gguf_writer *w, uint32_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        return set_err(w, "alignment %u is not a power of two", alignment);
    if (w->n_tensors > 0) return set_err(w, "alignment must be set before tensors are added");
    w->alignment = alignment;
    if (alignment != DEFAULT_ALIGNMENT) return gguf_writer_add_u32(w, "general.alignment", alignment);
    return 0;
}

int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                           uint32_t type, const void *data) {
    if (!name || !*name) return set_err(w, "empty tensor name");
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS) return set_err(w, "tensor '%s': %u dimensions", name, n_dims);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return set_err(w, "duplicate tensor name '%s'", name);
    char tb[32];
    if (!ggml_type_supported(type)) return set_err(w, "tensor '%s': type %s cannot be written", name,
                                                   ggml_type_name(type, tb, sizeof tb));
    uint64_t rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0) return set_err(w, "tensor '%s': dimension %u is 0", name, d);
        if (d > 0) {
            if (rows > UINT64_MAX / ne[d]) return set_err(w, "tensor '%s' is too large", name);
            rows *= ne[d];
        }
    }
    uint64_t row = ggml_row_bytes(type, ne[0]);
    if (row == 0) return set_err(w, "tensor '%s': row length %llu is not a multiple of the %s block size %zu",
                                 name, (unsigned long long)ne[0], ggml_type_name(type, tb, sizeof tb),
                                 ggml_block_elems(type));
    if (rows > UINT64_MAX / row || row * rows > UINT64_MAX - w->data_size - w->alignment)
        return set_err(w, "tensor '%s' is too large", name);
    if (w->n_tensors == w->tensors_cap) {
        size_t cap = w->tensors_cap ? 2 * w->tensors_cap : 64;
        struct tensor_desc *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) return set_err(w, "out of memory");
        w->tensors = t;
        w->tensors_cap = cap;
    }
    struct tensor_desc *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return set_err(w, "out of memory");
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t->type = type;
    t->nbytes = row * rows;
    t->offset = w->data_size;
    t->data = data;
    w->data_size = align_up(t->offset + t->nbytes, w->alignment);
    w->n_tensors++;
    return 0;
}

uint64_t gguf_writer_tensor_nbytes(const struct gguf_writer *w, size_t index) {
    return index < w->n_tensors ? w->tensors[index].nbytes : 0;
}

static int io_err(struct gguf_writer *w, char *err, size_t errlen, const char *what) {
    if (err && errlen) snprintf(err, errlen, "%s: %s: %s", w->path ? w->path : "gguf", what, strerror(errno));
    return -1;
}

static int write_zeros(FILE *f, uint64_t n) {
    static const uint8_t zeros[64];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fwrite(zeros, 1, k, f) != k) return -1;
        n -= k;
    }
    return 0;
}

int gguf_writer_begin(struct gguf_writer *w, const char *path, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (w->err[0]) {
        if (err && errlen) snprintf(err, errlen, "%s: %s", path, w->err);
        return -1;
    }
    if (w->f) {
        if (err && errlen) snprintf(err, errlen, "%s: writer already started", path);
        return -1;
    }
    struct bytes h = { 0 };
    int bad = bytes_put(&h, "GGUF", 4) || put_u32(&h, 3) || put_u64(&h, w->n_tensors) || put_u64(&h, w->n_kv) ||
              bytes_put(&h, w->kv.p, w->kv.len);
    for (size_t i = 0; i < w->n_tensors && !bad; i++) {
        const struct tensor_desc *t = &w->tensors[i];
        bad = put_str(&h, t->name, strlen(t->name)) || put_u32(&h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && !bad; d++) bad = put_u64(&h, t->ne[d]);
        bad = bad || put_u32(&h, t->type) || put_u64(&h, t->offset);
    }
    if (bad) {
        free(h.p);
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    free(w->path);
    w->path = strdup(path);
    if (!w->path) {
        free(h.p);
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    w->f = fopen(path, "wb");
    if (!w->f) {
        free(h.p);
        int e = errno;
        free(w->path);
        w->path = NULL;
        errno = e;
        if (err && errlen) snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);
    size_t pad = (size_t)(align_up(h.len, w->alignment) - h.len);
    int ok = fwrite(h.p, 1, h.len, w->f) == h.len && write_zeros(w->f, pad) == 0;
    free(h.p);
    if (!ok) return io_err(w, err, errlen, "write failed");
    w->cur = 0;
    w->cur_written = 0;
    return 0;
}

int gguf_writer_append(struct gguf_writer *w, const void *bytes, size_t n, char *err, size_t errlen) {
    if (!w->f) {
        if (err && errlen) snprintf(err, errlen, "gguf writer: append before begin");
        return -1;
    }
    const uint8_t *p = bytes;
    while (n > 0) {
        if (w->cur >= w->n_tensors) {
            if (err && errlen) snprintf(err, errlen, "%s: more tensor data than the tensors hold", w->path);
            return -1;
        }
        struct tensor_desc *t = &w->tensors[w->cur];
        uint64_t need = t->nbytes - w->cur_written;
        size_t k = n < need ? n : (size_t)need;
        if (fwrite(p, 1, k, w->f) != k) return io_err(w, err, errlen, "write failed");
        p += k;
        n -= k;
        w->cur_written += k;
        if (w->cur_written == t->nbytes) {
            uint64_t pad = align_up(t->nbytes, w->alignment) - t->nbytes;
            if (write_zeros(w->f, pad)) return io_err(w, err, errlen, "write failed");
            w->cur++;
            w->cur_written = 0;
        }
    }
    return 0;
}

int gguf_writer_end(struct gguf_writer *w, char *err, size_t errlen) {
    if (!w->f) {
        if (err && errlen) snprintf(err, errlen, "gguf writer: end before begin");
        return -1;
    }
    if (w->cur != w->n_tensors) {
        if (err && errlen)
            snprintf(err, errlen, "%s: tensor data incomplete (tensor %zu of %zu, '%s', has %llu of %llu bytes)",
                     w->path, w->cur, w->n_tensors, w->tensors[w->cur].name,
                     (unsigned long long)w->cur_written, (unsigned long long)w->tensors[w->cur].nbytes);
        return -1;
    }
    FILE *f = w->f;
    w->f = NULL;
    if (fclose(f) != 0) {
        io_err(w, err, errlen, "close failed");
        unlink(w->path);
        return -1;
    }
    return 0;
}

int gguf_writer_write(struct gguf_writer *w, const char *path, char *err, size_t errlen) {
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!w->tensors[i].data) {
            if (err && errlen) snprintf(err, errlen, "%s: tensor '%s' has no data", path, w->tensors[i].name);
            return -1;
        }
    if (gguf_writer_begin(w, path, err, errlen)) return -1;
    for (size_t i = 0; i < w->n_tensors; i++) {
        /* fwrite takes size_t; a tensor larger than that cannot be in memory anyway */
        if (gguf_writer_append(w, w->tensors[i].data, (size_t)w->tensors[i].nbytes, err, errlen)) return -1;
    }
    return gguf_writer_end(w, err, errlen);
}
