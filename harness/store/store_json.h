/* A results file as one JSON document (results/results.schema.json): every cell with its
 * configuration (method and its parameters as used, task settings given and in effect,
 * length, seed, limit), provenance (model, data, backend, device, build, host), its
 * metrics and texts, and, when asked, its per-sample records. Made from the cells as
 * store_read returns them, so `sweep --output-path` and `export --json` write the same. */
#ifndef CTX_STORE_JSON_H
#define CTX_STORE_JSON_H

#include <stdbool.h>
#include <stdio.h>

#include "store.h"

#define STORE_JSON_FORMAT "ctxbench-results-json"
#define STORE_JSON_SCHEMA_VERSION 1

/* The order rows are written in by export and the JSON: method, task, length as a number,
 * then cell id (a total order, independent of the file's). For qsort over pointers. */
int store_cell_order(const void *a, const void *b);

/* Writes the document for cells (any order: written in store_cell_order) to f. source is
 * the results file's path, recorded as given. samples: add each cell's per-sample records
 * (read from its sample_* items, see results/README.md). 0, or -1 when out of memory. */
int store_write_json(FILE *f, const struct store_cell *cells, int n, const char *source, bool samples);

#endif
