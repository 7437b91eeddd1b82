/* ctxbench methods: the registry, with parameters and defaults. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "method.h"

int cmd_methods(int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        puts("usage: ctxbench methods\n"
             "Lists every context-extension method compiled in (one file each in methods/), with\n"
             "its parameters, ranges and defaults. Use one as --method NAME[:k=v,...].");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "ctxbench: methods takes no arguments\n");
        return 2;
    }
    method_print_all(stdout);
    return 0;
}
