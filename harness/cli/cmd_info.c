/* ctxbench info MODEL */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "cli.h"
#include "gguf.h"
#include "input.h"
#include "quant.h"
#include "tokenizer.h"

static const char *help =
    "usage: ctxbench info [-m] MODEL\n"
    "       ctxbench info --backend NAME|all\n"
    "Prints the architecture, hyperparameters, tensor types, RoPE settings (with any\n"
    "rope.scaling metadata and rope_freqs tensor), the tokenizer and the general.* provenance keys.\n"
    "With --backend: the backend's devices on this machine with their memory (the N of\n"
    "--device N), or why the backend cannot run here; `all`: every backend of this build.\n";

/* The devices of one backend (or of all): what --backend/--device can choose here. */
static int backend_info(const char *name) {
    bool all = strcmp(name, "all") == 0, found = false;
    for (int i = 0; backend_list[i]; i++) {
        const struct backend_ops *be = backend_list[i];
        if (!all && strcmp(be->name, name) != 0) continue;
        found = true;
        const char *why = be->unavailable();
        if (why) printf("%s: cannot run here: %s\n", be->name, why);
        else be->list_devices(stdout);
        printf("%s: parameters %s\n", be->name, be->params_help);
    }
    if (!found) {
        char names[128] = "";
        for (int i = 0; backend_list[i]; i++) {
            strncat(names, " ", sizeof names - strlen(names) - 1);
            strncat(names, backend_list[i]->name, sizeof names - strlen(names) - 1);
        }
        fprintf(stderr, "ctxbench: unknown backend '%s' (this build has:%s; or all)\n", ECHO(name), names);
        return 1;
    }
    return 0;
}

int cmd_info(int argc, char **argv) {
    static const struct option longopts[] = {{"model", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'},
                                             {"backend", required_argument, 0, 'b'}, {0}};
    const char *path = NULL, *backend = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "m:h", longopts, NULL)) != -1) {
        if (opt == 'm') path = optarg;
        else if (opt == 'b') backend = optarg;
        else if (opt == 'h') { fputs(help, stdout); return 0; }
        else { fputs(help, stderr); return 2; }
    }
    if (backend) return backend_info(backend);
    if (!path && optind < argc) path = argv[optind++];
    if (!path) { fputs(help, stderr); return 2; }
    char err[512];
    struct model *m = model_load(path, err, sizeof err);
    if (!m) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return 1;
    }
    const struct model_config *c = &m->cfg;
    const struct gguf *g = m->gguf;
    printf("file             %s (GGUF v%u, %zu bytes, %llu tensors, %llu metadata keys)\n", path, g->version,
           g->size, (unsigned long long)g->n_tensors, (unsigned long long)g->n_kv);
    printf("architecture     %s\n", c->arch_name);
    printf("parameters       %llu (%.2f M)\n", (unsigned long long)m->n_params, m->n_params / 1e6);
    printf("weights          mostly %s\n", m->weight_type);
    printf("dim              %d\nlayers           %d\nheads            %d (kv heads %d, head dim %d)\n", c->dim,
           c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim);
    printf("ffn              %d\nvocab            %d\ncontext (train)  %d\n", c->ffn_dim, c->n_vocab, c->ctx_train);
    printf("rope             base %g, %d rotary dims (%d frequencies), %s pairs\n", c->rope_base, c->n_rot,
           c->n_rot / 2, c->rope_style == ROPE_NEOX ? "NEOX (i, i+d/2)" : "NORM (2i, 2i+1)");
    if (strcmp(c->rope_scaling.type, "none") != 0)
        printf("rope scaling     %s, factor %g, original context %lld, attn_factor %g\n", c->rope_scaling.type,
               c->rope_scaling.factor, (long long)c->rope_scaling.original_ctx, c->rope_scaling.attn_factor);
    else
        printf("rope scaling     none\n");
    if (c->rope_freqs) {
        double lo = c->rope_freqs[0], hi = lo;
        for (int i = 1; i < c->n_rot / 2; i++) {
            lo = c->rope_freqs[i] < lo ? c->rope_freqs[i] : lo;
            hi = c->rope_freqs[i] > hi ? c->rope_freqs[i] : hi;
        }
        printf("rope freqs       rope_freqs.weight: %d divisors in [%g, %g], applied under every method\n",
               c->n_rot / 2, lo, hi);
    }
    printf("rms eps          %g\n", c->rms_eps);
    printf("sliding window   %s", c->sliding_window ? "" : "none\n");
    if (c->sliding_window) printf("%d\n", c->sliding_window);
    printf("output           %s\n", c->tied_output ? "tied to token_embd" : "separate output.weight");

    unsigned long long count[64] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].type < 64) count[g->tensors[i].type]++;
    printf("tensor types    ");
    char buf[16];
    for (int t = 0; t < 64; t++)
        if (count[t]) printf(" %s x%llu", ggml_type_name((uint32_t)t, buf, sizeof buf), count[t]);
    printf("\n");
    if (m->tok)
        printf("tokenizer        %s (%s), %d tokens, bos %d, eos %d, add_bos %s\n",
               tokenizer_kind(m->tok) == TOKENIZER_SPM ? "llama/SentencePiece BPE" : "gpt2/byte-level BPE",
               tokenizer_pre_name(m->tok), tokenizer_n_vocab(m->tok), tokenizer_bos(m->tok), tokenizer_eos(m->tok),
               tokenizer_add_bos_default(m->tok) ? "yes" : "no");
    else
        printf("tokenizer        none in file\n");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct gguf_kv *kv = &g->kv[i];
        if (kv->key.len < 8 || (strncmp(kv->key.ptr, "general.", 8) != 0 && strncmp(kv->key.ptr, "ctxbench.", 9) != 0))
            continue;
        if (kv->type == GGUF_TYPE_STRING) {
            /* a file's text, escaped; ctxbench.* provenance (a training recipe, data hashes) in full */
            static const size_t general_cap = 204, provenance_cap = 8192;
            char shown[8192];
            bool provenance = kv->key.ptr[0] == 'c';
            printf("%-16.*s %s\n", (int)kv->key.len, kv->key.ptr,
                   echo_text(shown, provenance ? provenance_cap : general_cap, kv->v.str.ptr, kv->v.str.len));
        }
        else if (kv->type == GGUF_TYPE_FLOAT32 || kv->type == GGUF_TYPE_FLOAT64)
            printf("%-16.*s %g\n", (int)kv->key.len, kv->key.ptr, kv->v.f64);
        else if (kv->type == GGUF_TYPE_INT8 || kv->type == GGUF_TYPE_INT16 || kv->type == GGUF_TYPE_INT32 ||
                 kv->type == GGUF_TYPE_INT64)
            printf("%-16.*s %lld\n", (int)kv->key.len, kv->key.ptr, (long long)kv->v.i64);
        else if (kv->type != GGUF_TYPE_ARRAY)
            printf("%-16.*s %llu\n", (int)kv->key.len, kv->key.ptr, (unsigned long long)kv->v.u64);
    }
    model_free(m);
    return 0;
}
