/* The cell journal beside a results file (store.h, the store's own use): an append-only
 * file OUT.h5.journal of records, one per finished cell, each written with one write()
 * and synced before store_put returns. A record is
 *
 *   "CXJ1" | u64 payload length | payload | first 8 bytes of SHA-256(length | payload)
 *
 * (integers little-endian), the payload the cell: its id, status, attributes and, for a
 * done cell, its result items, strings already as HDF5 stores them (UTF-8 cleaned). A
 * kill can only leave the last record short; a short or damaged record ends the journal
 * (everything from it on is ignored, and the writer cuts it off before appending). */
#ifndef CTX_STORE_JOURNAL_H
#define CTX_STORE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define JOURNAL_SUFFIX ".journal"

/* Attribute texts as HDF5 stores them: invalid UTF-8 bytes become U+FFFD. malloc'd, or NULL. */
char *store_utf8_clean(const char *s);

/* The cell as one journal record in a malloc'd buffer (*rec, *len). -1 when out of memory. */
int journal_encode(const char *id, enum cell_status status, const struct store_attr *attrs, int n_attrs,
                   const struct result *res, unsigned char **rec, size_t *len);

/* The intact record starting at buf + *off: 1 with its payload and *off past it; 0 at the end of
 * the buffer or at a short or damaged record (*off stays at its start: the valid length). */
int journal_next(const unsigned char *buf, size_t len, size_t *off, const unsigned char **payload, size_t *plen);

/* A record's payload as store_read returns a cell: "status" the first attribute, result
 * scalars and texts in their order, then (with_arrays) the arrays. 0, or -1 (damaged, out
 * of memory; out is freed and zeroed). */
int journal_decode(const unsigned char *payload, size_t n, bool with_arrays, struct store_cell *out);

#endif
