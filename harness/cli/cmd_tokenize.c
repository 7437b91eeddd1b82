/* ctxbench tokenize MODEL TEXT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gguf.h"
#include "input.h"
#include "tokenizer.h"

static const char *help =
    "usage: ctxbench tokenize [--bos|--no-bos] [-f FILE] MODEL [TEXT]\n"
    "Prints one line per token: id, TAB, the piece as stored in the vocabulary.\n"
    "Works on vocabulary-only GGUF files too. BOS follows the model's add_bos setting\n"
    "unless --bos / --no-bos is given. -f reads the text from FILE (at most 1 GiB).\n"
    "  --ids-only   print the ids on one line, space separated\n";

int cmd_tokenize(int argc, char **argv) {
    static const struct option longopts[] = {{"bos", no_argument, 0, 'b'},      {"no-bos", no_argument, 0, 'B'},
                                             {"file", required_argument, 0, 'f'}, {"ids-only", no_argument, 0, 'i'},
                                             {"help", no_argument, 0, 'h'},      {0}};
    int bos = -1, ids_only = 0, opt;
    const char *file = NULL;
    while ((opt = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
        if (opt == 'b') bos = 1;
        else if (opt == 'B') bos = 0;
        else if (opt == 'f') file = optarg;
        else if (opt == 'i') ids_only = 1;
        else if (opt == 'h') { fputs(help, stdout); return 0; }
        else { fputs(help, stderr); return 2; }
    }
    if (optind >= argc || (!file && optind + 1 >= argc)) { fputs(help, stderr); return 2; }
    char err[512];
    struct gguf *g = gguf_open(argv[optind], err, sizeof err);
    if (!g) { fprintf(stderr, "ctxbench: %s\n", err); return 1; }
    struct tokenizer *t = tokenizer_load(g, err, sizeof err);
    if (!t) { fprintf(stderr, "ctxbench: %s\n", err); gguf_close(g); return 1; }
    size_t len;
    char *text = NULL;
    if (file) {
        text = input_read_file(file, &len, err, sizeof err);
        if (!text) { fprintf(stderr, "ctxbench: %s\n", err); tokenizer_free(t); gguf_close(g); return 1; }
    }
    const char *src = file ? text : argv[optind + 1];
    if (!file) len = strlen(src);   /* a file's text is all of it, NUL bytes included */
    int32_t *ids;
    size_t n;
    int rc = tokenizer_encode(t, src, len, bos < 0 ? tokenizer_add_bos_default(t) : bos == 1, &ids, &n);
    if (rc != 0) {
        fprintf(stderr, "ctxbench: tokenization failed\n");
    } else {
        for (size_t i = 0; i < n; i++) {
            if (ids_only) { printf(i ? " %d" : "%d", ids[i]); continue; }
            size_t pl;
            const char *p = tokenizer_piece(t, ids[i], &pl);
            printf("%d\t%.*s\n", ids[i], (int)pl, p);
        }
        if (ids_only) printf("\n");
        free(ids);
    }
    free(text);
    tokenizer_free(t);
    gguf_close(g);
    return rc ? 1 : 0;
}
