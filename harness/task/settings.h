/* Task settings: the "k=v,k=v" text a sweep passes to a task, parsed once and read
 * through typed getters that check ranges. Every error is one line naming the key,
 * the value and what would be valid. */
#ifndef CTX_SETTINGS_H
#define CTX_SETTINGS_H

#include <stddef.h>

#define SETTINGS_MAX 32
#define SETTINGS_KEY_MAX 32
#define SETTINGS_VAL_MAX 256

struct setting {
    char key[SETTINGS_KEY_MAX];
    char val[SETTINGS_VAL_MAX];
};

struct settings {
    int n;
    struct setting kv[SETTINGS_MAX];
};

/* Parses "k=v,k=v" (NULL or "" = no settings). Keys are [a-z0-9_]+, values non-empty,
 * no key twice. 0, or -1 + reason. */
int settings_parse(const char *text, struct settings *s, char *err, size_t errlen);

/* Rejects keys not in `valid` (NULL-terminated); the message lists the valid keys.
 * `who` (e.g. "ppl") starts the message. */
int settings_check_keys(const struct settings *s, const char *who, const char *const *valid, char *err,
                        size_t errlen);

/* The value text of key, or NULL when absent. */
const char *settings_get(const struct settings *s, const char *key);

/* Typed getters: *out = the value, or def when the key is absent. The value must be a
 * whole number (or a finite number) within [lo, hi]. 0, or -1 + reason. */
int settings_int(const struct settings *s, const char *key, long def, long lo, long hi, long *out, char *err,
                 size_t errlen);
int settings_double(const struct settings *s, const char *key, double def, double lo, double hi, double *out,
                    char *err, size_t errlen);
/* The value must be one of choices (NULL-terminated); *out = its index, or def_index
 * when absent. The message lists the choices. */
int settings_choice(const struct settings *s, const char *key, const char *const *choices, int def_index,
                    int *out, char *err, size_t errlen);

/* Parses text and checks its keys in one step (what a task's check hook needs). */
int settings_parse_checked(const char *text, const char *who, const char *const *valid, struct settings *s,
                           char *err, size_t errlen);

#endif
