/* SHA-256 for provenance: which model file and which dataset a result came from.
 * A thin layer over Debian's nettle, with a whole-file helper and hex output. */
#ifndef CTX_SHA256_H
#define CTX_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

struct sha256 {
    struct sha256_ctx ctx;
    uint64_t n_bytes;        /* message length so far */
};

void sha256_begin(struct sha256 *s);
void sha256_add(struct sha256 *s, const void *data, size_t n);
void sha256_end(struct sha256 *s, uint8_t digest[32]);
/* Lower-case hex of a digest into out[65]. */
void sha256_hex(const uint8_t digest[32], char out[65]);
/* Hashes a whole file: 0 with hex digest and size, or -1 + reason. */
int sha256_file(const char *path, char hex[65], uint64_t *size, char *err, size_t errlen);

#endif
