/* Datasets: documents of text read from ../shared/datasets (or any path), and the same
 * documents tokenized with one vocabulary and cached on disk, so a sweep tokenizes a
 * corpus once rather than once per cell.
 *
 * A dataset spec is one of
 *   NAME              a named dataset (dataset_print_names lists them):
 *                     tinystories, tinystories-sampled, children, books, govreport, passkey
 *   PATH.txt          the whole file is one document (a book)
 *   PATH.txt#stories  documents separated by blank lines (TinyStories "story\n\n" files)
 *   DIR               every *.txt file in DIR is one document, in name order
 *   PATH.jsonl[#F]    one document per JSON line, from string field F (default "text")
 *   PATH.csv[#C]      one document per row, from the column headed C (default "text")
 * A relative PATH that does not exist from the working directory is looked up under
 * $CTXBENCH_SHARED/datasets (default ../shared/datasets).
 * Every document has a UTF-8 BOM stripped, CRLF turned into LF, and surrounding
 * whitespace trimmed; a document empty after that (a BOM and blanks) is dropped. Files
 * are read with input_read_file (input.h): at most 1 GiB each. */
#ifndef CTX_DATASET_H
#define CTX_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct model;

enum dataset_format { DATASET_TXT, DATASET_STORIES, DATASET_DIR, DATASET_JSONL, DATASET_CSV };

struct dataset {
    char spec[256];             /* as given */
    char path[1024];            /* the resolved file or directory */
    enum dataset_format format;
    char field[64];             /* JSONL field or CSV column */
    char sha256[65];            /* content hash of the raw bytes, see dataset_load */
    uint64_t bytes;             /* raw bytes read */
    int n_docs, docs_cap;
    char **docs;                /* NUL-terminated texts */
    size_t *doc_len;
};

/* Resolves a spec to its path, format and field without reading any text.
 * 0, or -1 + one-line reason (an unknown name lists the named datasets). */
int dataset_resolve(const char *spec, char *path, size_t cap, enum dataset_format *format, char *field,
                    size_t field_cap, char *err, size_t errlen);

/* Reads every document. sha256 is of the file's bytes; for a directory, of the lines
 * "<file sha256>  <name>\n" over its .txt files in name order (`sha256sum *.txt | sha256sum`).
 * A dataset with no document is an error naming it. */
int dataset_load(const char *spec, struct dataset *ds, char *err, size_t errlen);
void dataset_free(struct dataset *ds);

/* dataset_load's reader for one file whose bytes are already in memory (a fuzzer's
 * input): the caller sets ds->spec, path, format (not DATASET_DIR) and field; raw holds
 * n bytes plus room for a NUL and is normalised in place. Sets sha256 and bytes and
 * appends the documents (possibly none). 0, or -1 + reason; dataset_free(ds) after
 * either. */
int dataset_load_bytes(struct dataset *ds, char *raw, size_t n, char *err, size_t errlen);

/* Provenance line: "PATH sha256=HEX" into buf. */
const char *dataset_provenance(const struct dataset *ds, char *buf, size_t cap);

/* Finds a file of the repository's own datasets/ folder (prompt templates, filler text):
 * $CTXBENCH_DATASETS/REL, ./datasets/REL, then beside the executable (../datasets,
 * ../../datasets). 0 with the path, or -1 + reason. */
int dataset_repo_file(const char *rel, char *path, size_t cap, char *err, size_t errlen);

/* Reads a whole text file with the BOM stripped and CRLF -> LF. NULL + reason on failure. */
char *dataset_read_text(const char *path, size_t *len, char *err, size_t errlen);

/* A dataset tokenized with one model's vocabulary: documents' ids without BOS,
 * concatenated, with the offset where each document starts. */
struct corpus {
    int n_docs;
    int64_t n_ids;
    int32_t *ids;
    int64_t *doc_start;         /* n_docs + 1 offsets into ids */
    char tokenizer_sha256[65];  /* the vocabulary's hash, see dataset_tokenizer_hash */
    char cache_path[1100];      /* the cache file used or written; "" without a cache */
    bool from_cache;            /* true when read from the cache without tokenizing */
};

/* Tokenizes ds with m's tokenizer, or reads the result from cache_dir (NULL = no cache).
 * The cache file is keyed by the dataset's content hash, its format/field and the
 * tokenizer hash, and is written atomically (temporary file + rename); a cache that
 * cannot be written is not an error. 0, or -1 + reason. */
int corpus_load(const struct dataset *ds, const struct model *m, const char *cache_dir, struct corpus *c,
                char *err, size_t errlen);
void corpus_free(struct corpus *c);

/* Tokens of document i. */
static inline int64_t corpus_doc_len(const struct corpus *c, int i) { return c->doc_start[i + 1] - c->doc_start[i]; }

/* Checks that the corpus holds at least `needed` tokens in total; otherwise -1 and
 * "dataset SPEC (PATH) has N tokens in D documents; WHAT needs M". */
int corpus_require(const struct corpus *c, const struct dataset *ds, int64_t needed, const char *what, char *err,
                   size_t errlen);

/* SHA-256 over the model's tokenizer.* metadata (tokens, scores, merges, types, special
 * ids, flags) and the ids of a fixed probe text (so a tokenizer code change shows too). */
int dataset_tokenizer_hash(const struct model *m, char hex[65], char *err, size_t errlen);

/* Writes the named datasets, one per line, to buf. */
const char *dataset_names(char *buf, size_t cap);

#endif
