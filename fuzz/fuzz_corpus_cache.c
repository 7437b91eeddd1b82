/* Fuzzes the reader of the tokenized-corpus cache (harness/data/corpus.c): a sweep trusts a
 * cache file it finds in --cache-dir, so a truncated, stale or hostile one must be
 * rejected (and the corpus tokenized again), never read out of bounds. The input is the
 * cache file after its 72-byte header (magic and key, which the harness writes so the
 * reader gets past them). Checks: a corpus read from the cache has rising document
 * offsets ending at its id count and ids inside the vocabulary; otherwise it equals the
 * freshly tokenized one. */
#include <stdint.h>
#include <unistd.h>

#include "dataset.h"
#include "fuzz_util.h"
#include "model.h"
#include "tokenizer.h"

static struct model *model;
static struct dataset ds;
static char cache_dir[256], cache_path[1100], header[72];
static struct corpus fresh;   /* the tokenized corpus, for comparison */

static void cleanup(void) {
    unlink(cache_path);
    rmdir(cache_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char err[512];
    model = fuzz_load_stories260k();
    /* Two documents, as the stories reader makes them. */
    static const char text[] = "Once upon a time there was a cat.\n\nThe end.\n";
    char raw[sizeof text];
    memcpy(raw, text, sizeof text);
    ds.format = DATASET_STORIES;
    snprintf(ds.spec, sizeof ds.spec, "fuzz");
    snprintf(ds.path, sizeof ds.path, "fuzz-input");
    if (dataset_load_bytes(&ds, raw, sizeof text - 1, err, sizeof err) != 0) fuzz_setup_failed("dataset", err);
    const char *tmp = getenv("TMPDIR");
    snprintf(cache_dir, sizeof cache_dir, "%s/ctxbench-fuzz-cache.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(cache_dir)) fuzz_setup_failed(cache_dir, "mkdtemp failed");
    /* The first load writes the cache file: its header is the one every input gets. */
    if (corpus_load(&ds, model, cache_dir, &fresh, err, sizeof err) != 0) fuzz_setup_failed("corpus", err);
    snprintf(cache_path, sizeof cache_path, "%s", fresh.cache_path);
    atexit(cleanup);
    FILE *f = fopen(cache_path, "rb");
    if (!f || fread(header, 1, sizeof header, f) != sizeof header) fuzz_setup_failed(cache_path, "no cache written");
    fclose(f);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(cache_path, "wb");
    if (!f) abort();
    if (fwrite(header, 1, sizeof header, f) != sizeof header || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    struct corpus c;
    char err[512];
    FUZZ_CHECK(corpus_load(&ds, model, cache_dir, &c, err, sizeof err) == 0, "%s", err);
    FUZZ_CHECK(c.n_docs == ds.n_docs && c.doc_start[0] == 0 && c.doc_start[c.n_docs] == c.n_ids, "offsets");
    for (int i = 0; i < c.n_docs; i++) FUZZ_CHECK(corpus_doc_len(&c, i) >= 0, "document %d", i);
    for (int64_t i = 0; i < c.n_ids; i++)
        FUZZ_CHECK(c.ids[i] >= 0 && c.ids[i] < tokenizer_n_vocab(model->tok), "id %d", c.ids[i]);
    if (!c.from_cache)
        FUZZ_CHECK(c.n_ids == fresh.n_ids && memcmp(c.ids, fresh.ids, (size_t)c.n_ids * sizeof *c.ids) == 0,
                   "retokenized corpus differs");
    corpus_free(&c);
    return 0;
}
