/* A loaded model bound to a backend: what commands and tasks hold while they run.
 * Backend choice ("cpu", "auto", ...) happens here and nowhere else. */
#ifndef CTX_RUNTIME_H
#define CTX_RUNTIME_H

#include <stddef.h>

#include "engine.h"
#include "model.h"

struct runtime {
    struct model *model;
    const struct backend_ops *be;   /* the backend that runs (auto resolved) */
    struct engine *engine;
    struct device_info device;      /* its device, as it was when opened */
    struct kv_types kv;             /* the sessions' KV cache types */
};

/* backend: a name or "auto" (NULL = auto); params: the backend's parameter string; kv:
 * the KV cache types (NULL: f32). */
int runtime_open(struct runtime *rt, const char *model_path, const char *backend, const char *params,
                 const struct kv_types *kv, char *err, size_t errlen);
void runtime_close(struct runtime *rt);

#endif
