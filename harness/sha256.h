/* SHA-256 (FIPS 180-4) for provenance: which model file and which dataset a result
 * came from. Small and dependency-free so a fresh machine needs no crypto library. */
#ifndef CTX_SHA256_H
#define CTX_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t h[8];
    uint64_t n_bytes;        /* message length so far */
    uint8_t block[64];       /* pending partial block */
    size_t n_block;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
void sha256_final(struct sha256 *s, uint8_t digest[32]);
/* Lower-case hex of a digest into out[65]. */
void sha256_hex(const uint8_t digest[32], char out[65]);
/* Hashes a whole file: 0 with hex digest and size, or -1 + reason. */
int sha256_file(const char *path, char hex[65], uint64_t *size, char *err, size_t errlen);

#endif
