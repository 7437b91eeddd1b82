/* The bounded whole-file reader and the escaped echo of user text (input.h). */
#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

size_t input_file_limit(void) {
    const char *e = getenv("CTXBENCH_MAX_FILE_BYTES");
    if (e && *e >= '0' && *e <= '9') {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(e, &end, 10);
        if (!errno && !*end && v > 0 && v < INPUT_MAX_FILE_BYTES) return (size_t)v;
    }
    return INPUT_MAX_FILE_BYTES;
}

/* "1 GiB", or the exact byte count when the limit is not whole GiB. */
static const char *limit_text(size_t limit, char *buf, size_t cap) {
    if (limit % ((size_t)1 << 30) == 0) snprintf(buf, cap, "%zu GiB", limit >> 30);
    else snprintf(buf, cap, "%zu bytes", limit);
    return buf;
}

/* read(2) that retries after a signal. */
static ssize_t read_retry(int fd, char *buf, size_t n) {
    ssize_t got;
    do got = read(fd, buf, n);
    while (got < 0 && errno == EINTR);
    return got;
}

char *input_read_file(const char *path, size_t *len, char *err, size_t errlen) {
    return input_read_file_max(path, input_file_limit(), len, err, errlen);
}

char *input_read_file_max(const char *path, size_t limit, size_t *len, char *err, size_t errlen) {
    if (limit > INPUT_UNLIMITED) limit = INPUT_UNLIMITED;   /* limit + 1 below must not wrap */
    char lim[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", ECHO(path), strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "%s: %s", ECHO(path), strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: is a directory, not a file", ECHO(path));
        goto fail;
    }
    /* A regular file says its size: refuse a big one before reading a byte. Anything
     * else is read in growing steps, never past limit + 1 bytes. */
    size_t cap = 65536;   /* bytes of buf, the NUL included */
    if (S_ISREG(sb.st_mode)) {
        if ((uint64_t)sb.st_size > limit) {
            snprintf(err, errlen, "%s: %lld bytes, more than the %s a file read whole may have", ECHO(path),
                     (long long)sb.st_size, limit_text(limit, lim, sizeof lim));
            goto fail;
        }
        cap = (size_t)sb.st_size + 1;
    } else if (cap > limit + 1) cap = limit + 1;
    buf = malloc(cap);
    if (!buf) goto oom;
    size_t n = 0;
    for (;;) {
        ssize_t got;
        if (n + 1 == cap) {
            /* Full. A probe read tells the end of the file from more data without
             * growing the buffer of a file that was exactly its stat size. */
            char probe[4096];
            got = read_retry(fd, probe, sizeof probe);
            if (got < 0) goto read_error;
            if (got == 0) break;
            if ((size_t)got > limit - n) {
                snprintf(err, errlen, "%s: more than the %s a file read whole may have", ECHO(path),
                         limit_text(limit, lim, sizeof lim));
                goto fail;
            }
            size_t want = cap > (limit + 1) / 2 ? limit + 1 : cap * 2;
            if (want < n + (size_t)got + 1) want = n + (size_t)got + 1;
            char *grown = realloc(buf, want);
            if (!grown) goto oom;
            buf = grown;
            cap = want;
            memcpy(buf + n, probe, (size_t)got);
            n += (size_t)got;
            continue;
        }
        got = read_retry(fd, buf + n, cap - 1 - n);
        if (got < 0) goto read_error;
        if (got == 0) break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = 0;
    *len = n;
    return buf;
read_error:
    snprintf(err, errlen, "%s: read error: %s", ECHO(path), strerror(errno));
    goto fail;
oom:
    snprintf(err, errlen, "%s: out of memory reading the file", ECHO(path));
fail:
    free(buf);
    close(fd);
    return NULL;
}

/* ---- echo ------------------------------------------------------------------ */

/* Length of the valid, shortest-form UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_valid(const unsigned char *s, size_t n, uint32_t *cp) {
    size_t need;
    uint32_t v, min;
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    if ((s[0] & 0xE0) == 0xC0) { need = 2; v = s[0] & 0x1Fu; min = 0x80; }
    else if ((s[0] & 0xF0) == 0xE0) { need = 3; v = s[0] & 0x0Fu; min = 0x800; }
    else if ((s[0] & 0xF8) == 0xF0) { need = 4; v = s[0] & 0x07u; min = 0x10000; }
    else return 0;
    if (need > n) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) return 0;
    *cp = v;
    return need;
}

/* Characters a terminal acts on rather than shows. */
static bool non_printable(uint32_t cp) {
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

const char *echo_text(char *buf, size_t cap, const char *text, size_t n) {
    if (!buf || cap < 4) return "";
    if (!text) {
        snprintf(buf, cap, "(null)");
        return buf;
    }
    size_t room = cap - 4;   /* output before "..." and the NUL */
    const unsigned char *s = (const unsigned char *)text;
    size_t o = 0, i = 0;
    while (i < n) {
        char piece[16];
        size_t plen;
        uint32_t cp;
        size_t used = utf8_valid(s + i, n - i, &cp);
        if (used == 0) {   /* not UTF-8: the byte itself */
            plen = (size_t)snprintf(piece, sizeof piece, "\\x%02X", s[i]);
            used = 1;
        } else if (cp == '\n') plen = (size_t)snprintf(piece, sizeof piece, "\\n");
        else if (cp == '\r') plen = (size_t)snprintf(piece, sizeof piece, "\\r");
        else if (cp == '\t') plen = (size_t)snprintf(piece, sizeof piece, "\\t");
        else if (cp == '\\') plen = (size_t)snprintf(piece, sizeof piece, "\\\\");
        else if (non_printable(cp)) {
            plen = 0;
            for (size_t k = 0; k < used; k++)
                plen += (size_t)snprintf(piece + plen, sizeof piece - plen, "\\x%02X", s[i + k]);
        } else {
            memcpy(piece, s + i, used);
            plen = used;
        }
        if (o + plen > room) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, piece, plen);
        o += plen;
        i += used;
    }
    buf[o] = 0;
    return buf;
}

void text_append(char *buf, size_t cap, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}
