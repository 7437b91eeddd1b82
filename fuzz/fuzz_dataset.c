/* Fuzzes the dataset readers (harness/data/dataset.c: whole text, blank-line-separated
 * stories, JSONL with a field, CSV with a column via libcsv) on bytes in memory
 * (dataset_load_bytes), then tokenizes what they produce with stories260K's vocabulary
 * as a sweep does (corpus_load in harness/data/corpus.c). Input: byte 0 picks the format,
 * then for JSONL and CSV the field name up to the first newline, then the file's bytes.
 * Checks: errors are one line; documents are NUL-terminated at their length and not
 * empty; the corpus's document offsets rise to its id count and every id is in the
 * vocabulary. */
#include <stdbool.h>
#include <stdint.h>

#include "dataset.h"
#include "fuzz_util.h"
#include "model.h"
#include "tokenizer.h"

static struct model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    model = fuzz_load_stories260k();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const enum dataset_format formats[] = {DATASET_TXT, DATASET_STORIES, DATASET_JSONL, DATASET_CSV};
    if (size < 1) return 0;
    struct dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.format = formats[data[0] % 4];
    data++, size--;
    if (ds.format == DATASET_JSONL || ds.format == DATASET_CSV) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t flen = nl ? (size_t)(nl - data) : size;
        if (flen == 0 || flen >= sizeof ds.field || memchr(data, 0, flen)) return 0;
        memcpy(ds.field, data, flen);
        data += nl ? flen + 1 : flen;
        size -= nl ? flen + 1 : flen;
    }
    snprintf(ds.spec, sizeof ds.spec, "fuzz");
    snprintf(ds.path, sizeof ds.path, "fuzz-input");
    char *raw = malloc(size + 1);   /* the bytes and room for the NUL */
    if (!raw) abort();
    memcpy(raw, data, size);
    char err[512];
    int rc = dataset_load_bytes(&ds, raw, size, err, sizeof err);
    free(raw);
    if (rc != 0) {
        fuzz_check_error(err);
        dataset_free(&ds);
        return 0;
    }
    FUZZ_CHECK(ds.bytes == size, "bytes %llu of %zu", (unsigned long long)ds.bytes, size);
    for (int i = 0; i < ds.n_docs; i++) {
        FUZZ_CHECK(ds.docs[i][ds.doc_len[i]] == 0, "document %d is not NUL-terminated at its length", i);
        FUZZ_CHECK(ds.doc_len[i] > 0, "document %d is empty", i);
    }
    if (ds.n_docs > 0) {
        struct corpus c;
        if (corpus_load(&ds, model, NULL, &c, err, sizeof err) != 0) fuzz_check_error(err);
        else {
            FUZZ_CHECK(c.n_docs == ds.n_docs && c.doc_start[0] == 0 && c.doc_start[c.n_docs] == c.n_ids,
                       "corpus offsets");
            for (int i = 0; i < c.n_docs; i++) FUZZ_CHECK(corpus_doc_len(&c, i) >= 0, "document %d", i);
            for (int64_t i = 0; i < c.n_ids; i++)
                FUZZ_CHECK(c.ids[i] >= 0 && c.ids[i] < tokenizer_n_vocab(model->tok), "id %d", c.ids[i]);
            corpus_free(&c);
        }
    }
    dataset_free(&ds);
    return 0;
}
