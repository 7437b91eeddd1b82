/* ctxbench synth: random-weight GGUF models of real shapes, for tests and benchmarks
 * at sizes no one can download here. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "input.h"
#include "quant.h"
#include "synth.h"

static void usage(FILE *f) {
    fprintf(f, "usage: ctxbench synth -o FILE [--preset NAME] [--type T] [shape options]\n"
               "Writes a random-weight GGUF (llama.cpp tensor names and keys, small byte-level vocabulary).\n"
               "  -o, --output FILE       where to write\n"
               "      --preset NAME       starting shape:");
    for (int i = 0; synth_preset_names[i]; i++) fprintf(f, " %s", synth_preset_names[i]);
    fprintf(f, " (default small)\n"
               "      --type T            matrix type: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K (default F16)\n"
               "      --arch A            llama | qwen2\n"
               "      --dim N --layers N --heads N --kv-heads N --ffn N --vocab N --ctx N\n"
               "      --rope-base B       RoPE base\n"
               "      --tied              no output.weight (tied embeddings)\n"
               "      --seed N            random seed (same seed and shape: same bytes)\n");
}

static const uint32_t types[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0,
                                 GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};

int cmd_synth(int argc, char **argv) {
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"preset", required_argument, 0, 'P'},
        {"type", required_argument, 0, 'T'},   {"arch", required_argument, 0, 'A'},
        {"dim", required_argument, 0, 1},      {"layers", required_argument, 0, 2},
        {"heads", required_argument, 0, 3},    {"kv-heads", required_argument, 0, 4},
        {"ffn", required_argument, 0, 5},      {"vocab", required_argument, 0, 6},
        {"ctx", required_argument, 0, 7},      {"seed", required_argument, 0, 8},
        {"rope-base", required_argument, 0, 9}, {"tied", no_argument, 0, 10},
        {"help", no_argument, 0, 'h'},         {0}};
    /* Two passes: the preset first, then overrides, whatever their order. */
    const char *preset = "small", *out = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        if (opt == 'P') preset = optarg;
        else if (opt == 'o') out = optarg;
        else if (opt == 'h') { usage(stdout); return 0; }
        else if (opt == '?') { usage(stderr); return 2; }
    }
    struct synth_spec s;
    if (!synth_preset(preset, &s)) {
        fprintf(stderr, "ctxbench: unknown preset '%s'\n", ECHO(preset));
        usage(stderr);
        return 2;
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        long v = 0;
        double d;
        char buf[16];
        if (opt >= 1 && opt <= 8 && !parse_int(optarg, 1, opt == 8 ? 0x7fffffffL : (1L << 24), &v)) {
            fprintf(stderr, "ctxbench: --%s expects a positive integer, got '%s'\n", longopts[opt + 3].name,
                    ECHO(optarg));
            return 2;
        }
        switch (opt) {
        case 'T': {
            int found = 0;
            for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
                if (strcmp(optarg, ggml_type_name(types[i], buf, sizeof buf)) == 0) { s.weight_type = types[i]; found = 1; }
            if (!found) {
                fprintf(stderr, "ctxbench: --type '%s' is not one of F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K\n",
                        ECHO(optarg));
                return 2;
            }
            break;
        }
        case 'A':
            if (strcmp(optarg, "llama") != 0 && strcmp(optarg, "qwen2") != 0) {
                fprintf(stderr, "ctxbench: --arch '%s' is not llama or qwen2\n", ECHO(optarg));
                return 2;
            }
            snprintf(s.arch, sizeof s.arch, "%s", optarg);
            break;
        case 1: s.dim = (int)v; break;
        case 2: s.n_layers = (int)v; break;
        case 3: s.n_heads = (int)v; break;
        case 4: s.n_kv_heads = (int)v; break;
        case 5: s.ffn_dim = (int)v; break;
        case 6: s.n_vocab = (int)v; break;
        case 7: s.ctx_train = (int)v; break;
        case 8: s.seed = (uint64_t)v; break;
        case 9:
            if (!parse_double(optarg, &d) || d <= 1) { fprintf(stderr, "ctxbench: --rope-base must be > 1\n"); return 2; }
            s.rope_base = d;
            break;
        case 10: s.tied_output = true; break;
        default: break;
        }
    }
    if (optind < argc) { fprintf(stderr, "ctxbench: unexpected argument '%s'\n", ECHO(argv[optind])); return 2; }
    if (!out) { usage(stderr); return 2; }
    char err[512];
    if (synth_check(&s, err, sizeof err) != 0 || synth_write(out, &s, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return 1;
    }
    char tb[16];
    fprintf(stderr, "wrote %s: %s dim %d, %d layers, %d heads (%d kv), ffn %d, vocab %d, ctx %d, %s%s\n", ECHO(out),
            s.arch,
            s.dim, s.n_layers, s.n_heads, s.n_kv_heads, s.ffn_dim, s.n_vocab, s.ctx_train,
            ggml_type_name(s.weight_type, tb, sizeof tb), s.tied_output ? ", tied output" : "");
    return 0;
}
