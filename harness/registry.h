/* Registries of extension methods (files in methods/) and tasks (files in tasks/). The lists
 * are generated at build time from the files present (scripts/gen_registry.sh). */
#ifndef CTX_REGISTRY_H
#define CTX_REGISTRY_H

#include "method.h"
#include "task.h"

extern const struct method *const registry_methods[];   /* NULL-terminated */
extern const struct task *const registry_tasks[];       /* NULL-terminated */

#endif
