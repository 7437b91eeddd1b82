/* A loaded model bound to a backend: what commands and tasks hold while they run.
 * Backend choice ("cpu", "cuda", "auto") happens here and nowhere else. */
#ifndef CTX_RUNTIME_H
#define CTX_RUNTIME_H

#include <stddef.h>

#include "backend.h"
#include "model.h"

struct runtime {
    struct model *model;
    const struct backend_ops *be;
    struct engine *engine;
    struct engine_opts opts;
};

/* Backends compiled into this binary, NULL-terminated. */
extern const struct backend_ops *const backend_list[];
const struct backend_ops *backend_find(const char *name);   /* "auto" = the first listed */

int runtime_open(struct runtime *rt, const char *model_path, const char *backend, const struct engine_opts *o,
                 char *err, size_t errlen);
void runtime_close(struct runtime *rt);

#endif
