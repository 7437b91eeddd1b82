/* GGUF v2/v3 reader: the file is mmap'd read-only and every count, length
 * and offset is checked against the file size before it is used, so a
 * corrupt or hostile file yields an error message, never an out-of-bounds
 * read. */
#ifndef CTX_GGUF_H
#define CTX_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "quant.h"

enum gguf_value_type {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

/* A string inside the mapped file: not NUL-terminated. */
struct gguf_str {
    const char *ptr;
    uint64_t len;
};

/* One metadata key/value. Scalars are decoded; strings and arrays point into the map.
 * For arrays of strings, `arr.data` points at the first length prefix and
 * gguf_arr_str() walks them (offsets were validated at open time). */
struct gguf_kv {
    struct gguf_str key;
    enum gguf_value_type type;
    union {
        uint64_t u64;   /* every unsigned integer type and bool, widened */
        int64_t i64;    /* every signed integer type, widened */
        double f64;     /* FLOAT32 and FLOAT64, widened */
        struct gguf_str str;
        struct {
            enum gguf_value_type type;
            uint64_t n;
            const uint8_t *data;
            const uint64_t *str_offsets; /* for string arrays: n offsets (from data) of each length prefix; NULL otherwise */
        } arr;
    } v;
};

#define GGUF_MAX_DIMS 4

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];  /* ne[0] is the fastest-varying (row length); unused dims are 1 */
    enum ggml_type type;
    uint64_t offset;             /* relative to the data section */
    uint64_t nbytes;
    const void *data;            /* inside the map, checked to lie within the file */
};

struct gguf {
    char path[1024];
    int fd;
    const uint8_t *map;
    size_t size;
    uint32_t version;
    uint64_t alignment;
    uint64_t n_kv;
    struct gguf_kv *kv;
    uint64_t n_tensors;
    struct gguf_tensor *tensors;
    size_t data_offset;
    bool owns_map;               /* false for gguf_open_memory: the caller's bytes are not unmapped */
};

/* Opens and validates the whole file. On failure returns NULL and writes a
 * one-line reason (naming the file and the problem) into err. */
struct gguf *gguf_open(const char *path, char *err, size_t errlen);
/* The same over a GGUF image already in memory (a fuzzer's input, an embedded file):
 * `name` stands for the path in messages, and data must stay valid and unchanged
 * until gguf_close, which does not free it. */
struct gguf *gguf_open_memory(const void *data, size_t size, const char *name, char *err, size_t errlen);
void gguf_close(struct gguf *g);

const struct gguf_kv *gguf_find_kv(const struct gguf *g, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);

/* Typed getters: return true and set *out when the key exists with a compatible
 * type (any integer type for ints, float32/float64 for floats). */
bool gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out);
bool gguf_get_f64(const struct gguf *g, const char *key, double *out);
bool gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out);
/* i-th string of a string array (i < arr.n). */
struct gguf_str gguf_arr_str(const struct gguf_kv *kv, uint64_t i);

const char *gguf_type_name(enum gguf_value_type t);
/* Size in bytes of one element of a fixed-size value type; 0 for strings, arrays and unknown types. */
size_t gguf_type_size(enum gguf_value_type t);
/* Compare a gguf_str with a C string. */
bool gguf_str_eq(struct gguf_str s, const char *c);

#endif
