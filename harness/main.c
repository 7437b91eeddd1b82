#include <stdio.h>
int main(void) { puts("ctxbench: under construction"); return 0; }
