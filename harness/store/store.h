/* Sweep results in one HDF5 file (schema: results/README.md). Each cell is a group
 * /cells/<id> holding its key and provenance as attributes and a subgroup `results`
 * with the task's items (scalars and texts as attributes, arrays as datasets).
 *
 * Writing a cell costs the cell's own size, not the file's: store_put appends the cell
 * as one checksummed record to a journal beside the file (OUT.h5.journal,
 * store_journal.h) and syncs it. The journal is folded into the HDF5 file when the
 * writer finishes (store_fold, store_close), when the next writer opens the file, and
 * when report, export or plot read it (store_settle): the file is read into memory, the
 * cells added there (HDF5's core driver), the result written beside the file, synced
 * and renamed over the original, then the journal removed. HDF5 1.10 has no journal of
 * its own and a process killed inside H5Fclose can leave a file that no longer opens;
 * with journal + copy + rename a kill at any moment leaves every finished cell either
 * in the complete HDF5 file or in a whole journal record (a torn last record is a cell
 * that never finished, ignored and cut off), and the HDF5 file always opens. store_read
 * sees both. HDF5 never writes to the disk itself, so a full disk is an error of our own
 * write (a partial record or temporary file is removed), never a failed H5Fclose. A
 * path through a symbolic link is resolved once: lock, journal, copy and rename happen
 * beside the real file. Readers never need a lock: the file they opened is never
 * modified in place. Files of another schema_version are refused (the layout inside
 * the HDF5 file is unchanged by the journal: schema version 1). */
#ifndef CTX_STORE_H
#define CTX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "result.h"

#define STORE_FORMAT "ctxbench-results"
#define STORE_SCHEMA_VERSION 1
#define STORE_ID_MAX 200          /* longest cell group name */

enum cell_status { CELL_ABSENT, CELL_DONE, CELL_SKIPPED, CELL_FAILED };
const char *cell_status_name(enum cell_status s);   /* "absent", "done", "skipped", "failed" */

/* One named attribute of a cell group (its key, provenance, status). */
enum store_attr_kind { STORE_STR, STORE_F64, STORE_I64 };
struct store_attr {
    char name[48];
    enum store_attr_kind kind;
    char *s;          /* STORE_STR: NUL-terminated (borrowed when writing, owned when read) */
    double f;         /* STORE_F64 */
    int64_t i;        /* STORE_I64 */
};

/* --- writing (one writer per file, enforced with a lock file OUT.lock) --- */

struct store;
struct store_cell;
/* Opens or creates the results file for appending cells. Fails with a one-line reason
 * when the directory is not writable, another process holds the file, the file is not a
 * ctxbench results file of this schema version, or its mode is read-only. Removes a
 * temporary copy left by a killed writer. */
struct store *store_open(const char *path, char *err, size_t errlen);
enum cell_status store_cell_status(const struct store *st, const char *id);
/* Writes (or replaces) cell `id` with status and attributes (the "status" attribute is
 * added here) and, for CELL_DONE, the result items. On return 0 the cell is on disk; on
 * -1 (a one-line reason) the file is as it was. The file keeps its mode bits. */
int store_put(struct store *st, const char *id, enum cell_status status, const struct store_attr *attrs,
              int n_attrs, const struct result *res, char *err, size_t errlen);
int store_count(const struct store *st, enum cell_status s);
/* Folds the journaled cells into the HDF5 file (one atomic replace) and removes the
 * journal. 0, or -1 + reason: the journal is kept and no cell is lost. */
int store_fold(struct store *st, char *err, size_t errlen);
/* Folds (quietly: a failure keeps the journal for the next open) and releases the lock. */
void store_close(struct store *st);
/* Replaces the file's cells with exactly these (written whole into a new file beside it,
 * synced and renamed over it: a kill leaves the old file or the new one) and empties the
 * journal. 0, or -1 + reason with the file as it was. */
int store_replace(struct store *st, const struct store_cell *cells, int n, char *err, size_t errlen);
/* For readers that may leave the file self-contained (report, export, plot): folds a
 * journal left by a killed writer when no writer holds the file and it is writable.
 * 0 when there was nothing to fold or it was folded, -1 otherwise (store_read still
 * sees the journaled cells). */
int store_settle(const char *path);

/* --- reading --- */

struct store_cell {
    char id[STORE_ID_MAX + 1];
    enum cell_status status;
    int n_attrs;
    struct store_attr *attrs;   /* the cell group's attributes, in creation order */
    struct result res;          /* result scalars, texts and (when asked) arrays, in creation order */
};

/* Reads every cell of a results file and of its journal (a journaled cell replaces the
 * file's), sorted by id (refused: another schema_version). */
int store_read(const char *path, bool with_arrays, struct store_cell **cells, int *n, char *err, size_t errlen);
void store_cells_free(struct store_cell *cells, int n);
const struct store_attr *store_cell_attr(const struct store_cell *c, const char *name);
/* Attributes that describe one run of a cell rather than the cell: when and where it ran
 * and how long it took (started, started_unix, wall_s, tokens_per_s, peak_rss_mib,
 * load_avg_start, load_avg_end, host, threads, device, backend_params), the paths it read
 * from (model_path, data_path: the files are in the key by their SHA-256) and the build
 * (git_rev, ctxbench_version). The same cell computed twice differs only in these. */
bool store_attr_run_specific(const char *name);
/* The same for a task's result items: timings (names starting "timing_", e.g. each
 * window's forward-pass rate) differ on every run. */
bool store_result_run_specific(const char *name);
/* Whether a and b hold the same result: the same status, the same attributes other than
 * the run-specific ones (names, kinds, values; numbers bit for bit) and the same result
 * items bit for bit, timings aside. When not, what differs, in why (one line). */
bool store_cells_same(const struct store_cell *a, const struct store_cell *b, char *why, size_t cap);

/* The attribute as text ("" when absent); numbers are printed with %.17g / %lld. */
const char *store_attr_text(const struct store_cell *c, const char *name, char *buf, size_t cap);

#endif
