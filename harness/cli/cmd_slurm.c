#include "cli.h"
int cmd_slurm(int argc, char **argv) { (void)argc; (void)argv; return 2; }
