/* A growable NUL-terminated byte string, for building prompts piece by piece. */
#ifndef CTX_TEXTBUF_H
#define CTX_TEXTBUF_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct textbuf {
    char *s;
    size_t n, cap;
    bool oom;          /* an append failed: the text is incomplete */
};

static inline void textbuf_append(struct textbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *g = realloc(b->s, cap);
        if (!g) {
            b->oom = true;
            return;
        }
        b->s = g;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static inline void textbuf_puts(struct textbuf *b, const char *s) { textbuf_append(b, s, strlen(s)); }
static inline void textbuf_clear(struct textbuf *b) {
    b->n = 0;
    if (b->s) b->s[0] = 0;
}
static inline void textbuf_free(struct textbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

#endif
