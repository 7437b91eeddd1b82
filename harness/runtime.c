#include "runtime.h"
#include "input.h"

#include <stdio.h>
#include <string.h>

const struct backend_ops *const backend_list[] = {
    &cpu_backend,
    NULL,
};

const struct backend_ops *backend_find(const char *name) {
    if (!name || strcmp(name, "auto") == 0) return backend_list[0];
    for (int i = 0; backend_list[i]; i++)
        if (strcmp(backend_list[i]->name, name) == 0) return backend_list[i];
    return NULL;
}

int runtime_open(struct runtime *rt, const char *model_path, const char *backend, const struct engine_opts *o,
                 char *err, size_t errlen) {
    memset(rt, 0, sizeof *rt);
    rt->be = backend_find(backend);
    if (!rt->be) {
        char names[128] = "";
        for (int i = 0; backend_list[i]; i++) {
            strncat(names, " ", sizeof names - strlen(names) - 1);
            strncat(names, backend_list[i]->name, sizeof names - strlen(names) - 1);
        }
        snprintf(err, errlen, "unknown backend '%s' (this build has:%s, auto)", ECHO(backend), names);
        return -1;
    }
    rt->model = model_load(model_path, err, errlen);
    if (!rt->model) return -1;
    rt->opts = *o;
    rt->engine = rt->be->create(rt->model, o, err, errlen);
    if (!rt->engine) {
        model_free(rt->model);
        rt->model = NULL;
        return -1;
    }
    return 0;
}

void runtime_close(struct runtime *rt) {
    if (rt->engine) rt->be->destroy(rt->engine);
    model_free(rt->model);
    memset(rt, 0, sizeof *rt);
}
