/* ctxbench tasks: the registry, with each task's settings, ranges and defaults. */
#include <stdio.h>
#include <string.h>

#include "task.h"

int cmd_tasks(int argc, char **argv);

int cmd_tasks(int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        puts("usage: ctxbench tasks\n"
             "Lists every task compiled in (one file each in tasks/), with its settings: name, type,\n"
             "range or choices, default and what it does. Give settings to a sweep with\n"
             "--task-opt 'task:key=value,...;task:...'; `ctxbench sweep --help` has each task's protocol.");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "ctxbench: tasks takes no arguments\n");
        return 2;
    }
    task_print_all(stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
