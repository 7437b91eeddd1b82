#include "sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sha256_begin(struct sha256 *s) {
    sha256_init(&s->ctx);
    s->n_bytes = 0;
}

void sha256_add(struct sha256 *s, const void *data, size_t n) {
    sha256_update(&s->ctx, n, data);
    s->n_bytes += n;
}

void sha256_end(struct sha256 *s, uint8_t digest[32]) { sha256_digest(&s->ctx, SHA256_DIGEST_SIZE, digest); }

void sha256_hex(const uint8_t digest[32], char out[65]) {
    static const char hexd[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hexd[digest[i] >> 4];
        out[2 * i + 1] = hexd[digest[i] & 15];
    }
    out[64] = 0;
}

int sha256_file(const char *path, char hex[65], uint64_t *size, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    enum { BUF = 1 << 20 };
    uint8_t *buf = malloc(BUF);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory for the hash buffer", path);
        return -1;
    }
    struct sha256 s;
    sha256_begin(&s);
    size_t got;
    while ((got = fread(buf, 1, BUF, f)) > 0) sha256_add(&s, buf, got);
    int bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad) {
        snprintf(err, errlen, "%s: read error while hashing", path);
        return -1;
    }
    uint8_t d[32];
    sha256_end(&s, d);
    sha256_hex(d, hex);
    if (size) *size = s.n_bytes;
    return 0;
}
