/* A small GGUF v3 writer. Metadata and tensor descriptions are collected in
 * memory; the file is then written in one call (tensor data given up front)
 * or streamed (header first, then each tensor's bytes in order), so a
 * multi-gigabyte model never has to be held in memory.
 *
 *   struct gguf_writer *w = gguf_writer_new();
 *   gguf_writer_add_str(w, "general.architecture", "llama");
 *   gguf_writer_add_tensor(w, "x", 2, (uint64_t[]){64, 8}, GGML_TYPE_F32, data);
 *   if (gguf_writer_write(w, "out.gguf", err, sizeof err) != 0) ... ;
 *   gguf_writer_free(w);
 *
 * The add functions return 0 or -1; the first failure (out of memory, a
 * duplicate key or tensor name, a bad shape) is kept and reported by the
 * later write/begin call, so callers may check only that. */
#ifndef CTX_GGUF_WRITE_H
#define CTX_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "gguf.h"

struct gguf_writer;

struct gguf_writer *gguf_writer_new(void);
void gguf_writer_free(struct gguf_writer *w);

/* Data alignment (power of two); anything other than the default 32 is also
 * recorded as general.alignment (u32). Call before adding tensors. */
int gguf_writer_set_alignment(struct gguf_writer *w, uint32_t alignment);

/* Scalars of every GGUF value type. */
int gguf_writer_add_u8(struct gguf_writer *w, const char *key, uint8_t v);
int gguf_writer_add_i8(struct gguf_writer *w, const char *key, int8_t v);
int gguf_writer_add_u16(struct gguf_writer *w, const char *key, uint16_t v);
int gguf_writer_add_i16(struct gguf_writer *w, const char *key, int16_t v);
int gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_add_i32(struct gguf_writer *w, const char *key, int32_t v);
int gguf_writer_add_u64(struct gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_add_i64(struct gguf_writer *w, const char *key, int64_t v);
int gguf_writer_add_f32(struct gguf_writer *w, const char *key, float v);
int gguf_writer_add_f64(struct gguf_writer *w, const char *key, double v);
int gguf_writer_add_bool(struct gguf_writer *w, const char *key, bool v);
int gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *v);
/* A string with explicit length (may contain NUL bytes). */
int gguf_writer_add_strn(struct gguf_writer *w, const char *key, const char *v, uint64_t len);

/* Array of n fixed-size elements of elem_type (any scalar type except
 * string), copied from elems, which holds them in their file layout
 * (uint8_t for bool). */
int gguf_writer_add_array(struct gguf_writer *w, const char *key, enum gguf_value_type elem_type,
                          const void *elems, uint64_t n);
/* Array of n NUL-terminated strings. */
int gguf_writer_add_str_array(struct gguf_writer *w, const char *key, const char *const *strs, uint64_t n);

/* Describes a tensor; ne[0] is the row length. `data` (ggml_row_bytes(type,
 * ne[0]) * rows bytes) is referenced, not copied, and must stay valid until
 * the file is written; pass NULL for a tensor whose bytes will be streamed
 * with gguf_writer_append. */
int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                           uint32_t type, const void *data);
/* Bytes of the tensor with that index (in order of adding). */
uint64_t gguf_writer_tensor_nbytes(const struct gguf_writer *w, size_t index);

/* Writes the whole file; every tensor must have been given its data. Returns 0 or -1 with err set. */
int gguf_writer_write(struct gguf_writer *w, const char *path, char *err, size_t errlen);

/* Streaming: begin writes the header, metadata and tensor infos; append
 * writes the next bytes of tensor data (tensors in the order they were
 * added, any chunking; padding between tensors is inserted automatically);
 * end checks that every tensor got exactly its bytes and closes the file.
 * After an error, call gguf_writer_free (the partial file is removed). */
int gguf_writer_begin(struct gguf_writer *w, const char *path, char *err, size_t errlen);
int gguf_writer_append(struct gguf_writer *w, const void *bytes, size_t n, char *err, size_t errlen);
int gguf_writer_end(struct gguf_writer *w, char *err, size_t errlen);

#endif
