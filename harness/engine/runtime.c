#include "runtime.h"

#include <stdio.h>
#include <string.h>

int runtime_open(struct runtime *rt, const char *model_path, const char *backend, const char *params,
                 const struct kv_types *kv, char *err, size_t errlen) {
    memset(rt, 0, sizeof *rt);
    rt->be = backend_find(backend, err, errlen);
    if (!rt->be) return -1;
    rt->model = model_load(model_path, err, errlen);
    if (!rt->model) return -1;
    rt->engine = engine_create(rt->be, rt->model, params, kv, err, errlen);
    if (!rt->engine) {
        model_free(rt->model);
        rt->model = NULL;
        return -1;
    }
    engine_device(rt->engine, &rt->device);
    rt->kv = engine_kv_types(rt->engine);
    return 0;
}

void runtime_close(struct runtime *rt) {
    engine_destroy(rt->engine);
    model_free(rt->model);
    memset(rt, 0, sizeof *rt);
}
