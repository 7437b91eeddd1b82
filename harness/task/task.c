/* The task registry: tasks/NAME.c files listed at build time (scripts/gen_registry.sh). */
#include <string.h>

#include "task.h"

const struct task *task_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; registry_tasks[i]; i++)
        if (strcmp(registry_tasks[i]->name, name) == 0) return registry_tasks[i];
    return NULL;
}
