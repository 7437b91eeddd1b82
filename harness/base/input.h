/* User input, read and echoed safely: the one reader of whole files (bounded, so a huge
 * file or an endless device such as /dev/zero is refused instead of eating all memory)
 * and the one way an error message shows text the user gave (a path, an argument, a
 * CSV header): control characters escaped and the text cut, so every message stays one
 * readable line. */
#ifndef CTX_INPUT_H
#define CTX_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The most bytes a file read whole may have: 1 GiB. More than any text corpus this
 * harness can tokenize (the tokenizer takes at most 128 MiB per document), and small
 * enough to hold twice on the machines it runs on. $CTXBENCH_MAX_FILE_BYTES, a positive
 * byte count, lowers it (never raises it); the tests use that. */
#define INPUT_MAX_FILE_BYTES ((size_t)1 << 30)

/* The limit in force: INPUT_MAX_FILE_BYTES or the lower $CTXBENCH_MAX_FILE_BYTES. */
size_t input_file_limit(void);

/* Reads a whole file into a NUL-terminated malloc'd buffer (*len excludes the NUL). A
 * regular file over the limit is refused before reading; anything else (a pipe, a
 * device) is read up to the limit and refused if there is more. A directory is refused.
 * NULL + one-line reason on failure. */
char *input_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* The same with an explicit limit (at most INPUT_UNLIMITED), for files the harness
 * itself wrote and sizes itself, such as a results file. */
#define INPUT_UNLIMITED ((size_t)PTRDIFF_MAX - 1)
char *input_read_file_max(const char *path, size_t limit, size_t *len, char *err, size_t errlen);

/* Escaped form of user text for a message: \n \r \t and \\ as such, other control
 * characters, DEL, C1 controls, Unicode line separators and bidi overrides, and bytes
 * that are not valid UTF-8 as \xNN; printable UTF-8 kept. Cut to at most cap - 4 bytes
 * of output (ECHO_MAX through the macros below) at a character boundary, with "..." after
 * a cut. Writes into buf (cap >= 4) and returns it; NULL text shows as "(null)". */
#define ECHO_MAX 160
#define ECHO_CAP (ECHO_MAX + 4)
const char *echo_text(char *buf, size_t cap, const char *s, size_t n);

/* ECHO(s) / ECHO_N(s, n): the escaped text in a buffer that lives until the end of the
 * enclosing block, for use straight inside a printf argument list:
 *   snprintf(err, errlen, "dataset '%s' not found", ECHO(spec)); */
static inline const char *echo_str(char *buf, size_t cap, const char *s) {
    return echo_text(buf, cap, s, s ? strlen(s) : 0);
}
/* Appends printf-style text to the NUL-terminated buf of cap bytes, cut at the end (for
 * error text and listings). */
void text_append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define ECHO(s) echo_str((char[ECHO_CAP]){0}, ECHO_CAP, (s))
#define ECHO_N(s, n) echo_text((char[ECHO_CAP]){0}, ECHO_CAP, (s), (n))

#endif
