/* The HDF5 results store (store.h). Writing: lock file, copy, append, sync, rename.
 * Reading: every attribute and item back into plain structs, without knowing tasks. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "input.h"
#include "store_journal.h"

static const char *const status_names[] = {"absent", "done", "skipped", "failed"};

const char *cell_status_name(enum cell_status s) {
    return (unsigned)s < 4 ? status_names[s] : "absent";
}

static enum cell_status status_from_name(const char *s) {
    for (int i = 1; i < 4; i++)
        if (s && strcmp(s, status_names[i]) == 0) return (enum cell_status)i;
    return CELL_ABSENT;
}

/* HDF5 prints an error stack to stderr for every failed call; we report one line
 * instead. The library's handler is saved and restored around each public call. */
struct h5_quiet {
    H5E_auto2_t func;
    void *data;
};
static void quiet_begin(struct h5_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void quiet_end(const struct h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

/* ------------------------------------------------------------------ strings */

/* ------------------------------------------------------------------ attributes */

static hid_t vlen_utf8_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static int attr_write(hid_t loc, const char *name, hid_t type, const void *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = space < 0 ? -1 : H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, type, value) < 0 ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    if (space >= 0) H5Sclose(space);
    return rc;
}

static int attr_write_str(hid_t loc, const char *name, const char *s) {
    char *clean = store_utf8_clean(s ? s : "");   /* a model's broken bytes would trip h5py */
    hid_t t = vlen_utf8_type();
    int rc = !clean || t < 0 ? -1 : attr_write(loc, name, t, &clean);
    if (t >= 0) H5Tclose(t);
    free(clean);
    return rc;
}

static int attr_write_one(hid_t loc, const struct store_attr *a) {
    switch (a->kind) {
    case STORE_STR: return attr_write_str(loc, a->name, a->s);
    case STORE_F64: return attr_write(loc, a->name, H5T_NATIVE_DOUBLE, &a->f);
    case STORE_I64: return attr_write(loc, a->name, H5T_NATIVE_INT64, &a->i);
    }
    return -1;
}

/* Reads a scalar attribute of string, float or integer type. 1 = read, 0 = another
 * shape or type (ignored), -1 = error. */
static int attr_read(hid_t a, struct store_attr *out) {
    hid_t ft = H5Aget_type(a), space = H5Aget_space(a);
    int rc = -1;
    if (ft < 0 || space < 0) goto done;
    if (H5Sget_simple_extent_npoints(space) != 1) { rc = 0; goto done; }
    H5T_class_t cls = H5Tget_class(ft);
    if (cls == H5T_FLOAT) {
        out->kind = STORE_F64;
        rc = H5Aread(a, H5T_NATIVE_DOUBLE, &out->f) < 0 ? -1 : 1;
    } else if (cls == H5T_INTEGER) {
        out->kind = STORE_I64;
        rc = H5Aread(a, H5T_NATIVE_INT64, &out->i) < 0 ? -1 : 1;
    } else if (cls == H5T_STRING) {
        out->kind = STORE_STR;
        hid_t mt = H5Tcopy(ft);
        if (mt < 0) goto done;
        if (H5Tis_variable_str(ft) > 0) {
            char *vs = NULL;
            if (H5Aread(a, mt, &vs) >= 0) {
                out->s = strdup(vs ? vs : "");
                rc = out->s ? 1 : -1;
            }
            if (vs) H5free_memory(vs);
        } else {
            size_t n = H5Tget_size(ft);
            out->s = n < (1u << 30) ? calloc(n + 1, 1) : NULL;
            rc = out->s && H5Aread(a, mt, out->s) >= 0 ? 1 : -1;
        }
        H5Tclose(mt);
    } else {
        rc = 0;
    }
done:
    if (ft >= 0) H5Tclose(ft);
    if (space >= 0) H5Sclose(space);
    return rc;
}

/* Reads a string attribute by name into a malloc'd string; NULL if absent or not a string. */
static char *attr_read_str(hid_t loc, const char *name) {
    if (H5Aexists(loc, name) <= 0) return NULL;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    struct store_attr v = {0};
    int r = attr_read(a, &v);
    H5Aclose(a);
    if (r == 1 && v.kind == STORE_STR) return v.s;
    free(v.s);
    return NULL;
}

/* ------------------------------------------------------------------ files */

static char *str_cat(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
    }
    return s;
}

/* File access: objects in the HDF5 1.8 format, readable by every HDF5 since 1.8
 * (h5py, h5dump) and able to hold large attributes (dense attribute storage). Closing
 * the file closes every object still open in it. */
static hid_t file_access(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) {
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    }
    return fapl;
}

/* The writer's file access: the file lives in memory (the core driver, no backing
 * store), starting from `image` (the current file's bytes, copied by HDF5) or empty.
 * HDF5 then never writes to disk itself; store_put writes the finished image. */
static hid_t memory_access(const void *image, size_t len) {
    hid_t fapl = file_access();
    if (fapl < 0) return -1;
    if (H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 || (image && H5Pset_file_image(fapl, (void *)image, len) < 0)) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* Bob Jenkins' lookup3 hash (public domain), the checksum HDF5 puts on its metadata. */
#define LOOKUP3_ROT(x, k) (((x) << (k)) ^ ((x) >> (32 - (k))))
static uint32_t lookup3(const unsigned char *k, size_t length) {
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)length;
    while (length > 12) {
        a += k[0] | (uint32_t)k[1] << 8 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 24;
        b += k[4] | (uint32_t)k[5] << 8 | (uint32_t)k[6] << 16 | (uint32_t)k[7] << 24;
        c += k[8] | (uint32_t)k[9] << 8 | (uint32_t)k[10] << 16 | (uint32_t)k[11] << 24;
        a -= c; a ^= LOOKUP3_ROT(c, 4);  c += b;
        b -= a; b ^= LOOKUP3_ROT(a, 6);  a += c;
        c -= b; c ^= LOOKUP3_ROT(b, 8);  b += a;
        a -= c; a ^= LOOKUP3_ROT(c, 16); c += b;
        b -= a; b ^= LOOKUP3_ROT(a, 19); a += c;
        c -= b; c ^= LOOKUP3_ROT(b, 4);  b += a;
        length -= 12;
        k += 12;
    }
    if (length == 0) return c;
    unsigned char tail[12] = {0};
    memcpy(tail, k, length);
    a += tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
    b += tail[4] | (uint32_t)tail[5] << 8 | (uint32_t)tail[6] << 16 | (uint32_t)tail[7] << 24;
    c += tail[8] | (uint32_t)tail[9] << 8 | (uint32_t)tail[10] << 16 | (uint32_t)tail[11] << 24;
    c ^= b; c -= LOOKUP3_ROT(b, 14);
    a ^= c; a -= LOOKUP3_ROT(c, 11);
    b ^= a; b -= LOOKUP3_ROT(a, 25);
    c ^= b; c -= LOOKUP3_ROT(b, 16);
    a ^= c; a -= LOOKUP3_ROT(c, 4);
    b ^= a; b -= LOOKUP3_ROT(a, 14);
    c ^= b; c -= LOOKUP3_ROT(b, 24);
    return c;
}

/* H5Fget_file_image (HDF5 1.10) clears the superblock's status flags in the image it
 * returns ("no writer has the file open", as a closed file says) but keeps the checksum
 * computed with the flags set, so the image would not open. The superblock of a file
 * without a user block is at offset 0; versions 2 and 3 end in a lookup3 checksum of
 * the bytes before it. Recomputing it is a no-op where HDF5 got it right. */
static int fix_superblock_checksum(unsigned char *img, size_t len) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    if (len < 12 || memcmp(img, sig, 8) != 0) return -1;
    if (img[8] < 2) return 0;   /* versions 0 and 1 carry no checksum */
    size_t off = 12 + 4 * (size_t)img[9];
    if (img[8] > 3 || (img[9] != 4 && img[9] != 8) || off + 4 > len) return -1;
    uint32_t c = lookup3(img, off);
    for (int i = 0; i < 4; i++) img[off + (size_t)i] = (unsigned char)(c >> 8 * i);
    return 0;
}

/* H5Fclose; if it fails the id stays open and HDF5 would trip over it when the process
 * exits, so every object left in the file is closed and the file closed again. */
static int close_file(hid_t f) {
    if (H5Fclose(f) >= 0) return 0;
    ssize_t n = H5Fget_obj_count(f, H5F_OBJ_ALL & ~H5F_OBJ_FILE);
    if (n > 0 && n < 1 << 20) {
        hid_t *ids = malloc((size_t)n * sizeof *ids);
        ssize_t got = ids ? H5Fget_obj_ids(f, H5F_OBJ_ALL & ~H5F_OBJ_FILE, (size_t)n, ids) : 0;
        for (ssize_t i = 0; i < got; i++) {
            H5I_type_t t = H5Iget_type(ids[i]);
            if (t == H5I_ATTR) H5Aclose(ids[i]);
            else if (t == H5I_GROUP || t == H5I_DATASET || t == H5I_DATATYPE) H5Oclose(ids[i]);
        }
        free(ids);
    }
    H5Fclose(f);
    return -1;
}

/* The results schema this build reads and writes; anything else is refused, so an
 * older ctxbench never misreads (or appends old-style cells to) a newer file. */
static int check_schema(hid_t f, const char *path, char *err, size_t errlen) {
    struct store_attr v = {0};
    int r = 0;
    if (H5Aexists(f, "schema_version") > 0) {
        hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
        r = a < 0 ? -1 : attr_read(a, &v);
        if (a >= 0) H5Aclose(a);
    }
    free(v.s);
    if (r != 1 || v.kind != STORE_I64) {
        snprintf(err, errlen, "%s has no readable schema_version; this ctxbench reads results schema version %d only",
                 path, STORE_SCHEMA_VERSION);
        return -1;
    }
    if (v.i != STORE_SCHEMA_VERSION) {
        snprintf(err, errlen, "%s has results schema version %lld; this ctxbench reads version %d only%s", path,
                 (long long)v.i, STORE_SCHEMA_VERSION,
                 v.i > STORE_SCHEMA_VERSION ? " (use the newer ctxbench that wrote it)" : "");
        return -1;
    }
    return 0;
}

/* A group that remembers the order its links and attributes were created in. */
static hid_t ordered_group(hid_t loc, const char *name) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0) return -1;
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_attr_phase_change(gcpl, 0, 0);   /* dense storage: attributes may exceed 64 KiB */
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    return g;
}

/* Opens a results file read-only and checks it is ours. -1 + reason otherwise. */
static hid_t open_results(const char *path, char *err, size_t errlen) {
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        if (access(path, R_OK) != 0) snprintf(err, errlen, "%s: %s", path, strerror(errno));
        else snprintf(err, errlen, "%s is not an HDF5 file", path);
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(err, errlen, "%s: HDF5 could not open the file", path);
        return -1;
    }
    char *fmt = attr_read_str(f, "format");
    bool ours = fmt && strcmp(fmt, STORE_FORMAT) == 0 && H5Lexists(f, "cells", H5P_DEFAULT) > 0;
    free(fmt);
    if (!ours) {
        snprintf(err, errlen, "%s is an HDF5 file but not a ctxbench results file (no format=\"%s\" and /cells)",
                 path, STORE_FORMAT);
        H5Fclose(f);
        return -1;
    }
    if (check_schema(f, path, err, errlen) != 0) {
        H5Fclose(f);
        return -1;
    }
    return f;
}

/* ------------------------------------------------------------------ writer */

struct store_entry {
    char id[STORE_ID_MAX + 1];
    enum cell_status status;
};

struct store {
    char *shown;        /* the path as given, for messages */
    char *path;         /* the real file (links resolved): the lock, the journal, the copy and the rename are beside it */
    char *tmp_path, *lock_path, *journal_path;
    char *image_name;   /* a name no file can have (under the results file), for HDF5's in-memory file */
    int lock_fd;
    bool opened;        /* store_open succeeded: store_close may fold */
    int journal_fd;     /* open for appending once the journal exists; -1 before */
    off_t journal_len;  /* bytes of whole records in the journal */
    int journal_cells;  /* its records, not yet folded into the HDF5 file */
    struct store_entry *cells;
    int n, cap;
    int *slots;         /* hash table of indexes into cells (-1: empty), n_slots a power of two */
    size_t n_slots;
};

/* Frees what one cell read back holds (not the cell itself). */
static void cell_release(struct store_cell *c) {
    for (int j = 0; j < c->n_attrs; j++) free(c->attrs[j].s);
    free(c->attrs);
    result_free(&c->res);
    memset(c, 0, sizeof *c);
}

static uint64_t id_hash(const char *s) {   /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int index_find(const struct store *st, const char *id) {
    if (!st->n_slots) return -1;
    for (size_t k = id_hash(id) & (st->n_slots - 1);; k = (k + 1) & (st->n_slots - 1)) {
        int i = st->slots[k];
        if (i < 0) return -1;
        if (strcmp(st->cells[i].id, id) == 0) return i;
    }
}

static int index_set(struct store *st, const char *id, enum cell_status s) {
    int i = index_find(st, id);
    if (i >= 0) {
        st->cells[i].status = s;
        return 0;
    }
    if (st->n == st->cap) {
        int cap = st->cap ? 2 * st->cap : 64;
        struct store_entry *c = realloc(st->cells, (size_t)cap * sizeof *c);
        if (!c) return -1;
        st->cells = c;
        st->cap = cap;
    }
    if ((size_t)(st->n + 1) * 2 > st->n_slots) {   /* at most half full: short probes */
        size_t n_slots = st->n_slots ? 2 * st->n_slots : 128;
        int *slots = malloc(n_slots * sizeof *slots);
        if (!slots) return -1;
        for (size_t k = 0; k < n_slots; k++) slots[k] = -1;
        for (int j = 0; j < st->n; j++) {
            size_t k = id_hash(st->cells[j].id) & (n_slots - 1);
            while (slots[k] >= 0) k = (k + 1) & (n_slots - 1);
            slots[k] = j;
        }
        free(st->slots);
        st->slots = slots;
        st->n_slots = n_slots;
    }
    snprintf(st->cells[st->n].id, sizeof st->cells[st->n].id, "%s", id);
    st->cells[st->n].status = s;
    size_t k = id_hash(id) & (st->n_slots - 1);
    while (st->slots[k] >= 0) k = (k + 1) & (st->n_slots - 1);
    st->slots[k] = st->n++;
    return 0;
}

static herr_t index_cb(hid_t group, const char *name, const H5L_info_t *info, void *arg) {
    (void)info;
    struct store *st = arg;
    if (strlen(name) > STORE_ID_MAX) return 0;
    hid_t g = H5Gopen2(group, name, H5P_DEFAULT);
    if (g < 0) return 0;
    char *s = attr_read_str(g, "status");
    H5Gclose(g);
    int rc = index_set(st, name, status_from_name(s));
    free(s);
    return rc < 0 ? -1 : 0;
}

void store_close(struct store *st) {
    if (!st) return;
    if (st->opened && st->journal_cells > 0) {
        char why[1024];   /* a fold that fails keeps the journal: no cell is lost, the next open folds it */
        store_fold(st, why, sizeof why);
    }
    if (st->journal_fd >= 0) close(st->journal_fd);
    if (st->lock_fd >= 0) {
        unlink(st->lock_path);   /* while still holding the lock; see store_open */
        close(st->lock_fd);
    }
    free(st->shown);
    free(st->path);
    free(st->tmp_path);
    free(st->lock_path);
    free(st->journal_path);
    free(st->image_name);
    free(st->cells);
    free(st->slots);
    free(st);
}

/* A results file we may add cells to: refused when its mode says read-only (root could
 * write it anyway, but a researcher who made it read-only meant it to stay as it is). */
static int check_writable(const char *path, const char *shown, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    if ((sb.st_mode & 0222) == 0 || access(path, W_OK) != 0) {
        snprintf(err, errlen, "results file %s is read-only (mode %04o): not adding cells to it (chmod u+w to allow it)",
                 shown, (unsigned)(sb.st_mode & 07777));
        return -1;
    }
    return 0;
}

/* The journal's bytes (NULL with *len 0 when there is none). -1 when it exists and cannot be read. */
static int journal_read(const char *journal_path, unsigned char **buf, size_t *len, char *err, size_t errlen) {
    *buf = NULL;
    *len = 0;
    if (access(journal_path, F_OK) != 0) return 0;
    *buf = (unsigned char *)input_read_file_max(journal_path, INPUT_UNLIMITED, len, err, errlen);
    return *buf ? 0 : -1;
}

/* The directory a resolved path is in, synced (a new journal's name survives a crash). */
static void sync_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        sync_path(".", true);
        return;
    }
    char *dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    if (dir) sync_path(dir, true);
    free(dir);
}

struct store *store_open(const char *path, char *err, size_t errlen) {
    struct stat sb;
    if (!path || !*path) {
        snprintf(err, errlen, "no output file given");
        return NULL;
    }
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "output %s is a directory, not a file", path);
        return NULL;
    }
    char why[1024];
    struct store *st = calloc(1, sizeof *st);
    if (!st) goto oom;
    st->lock_fd = st->journal_fd = -1;
    st->shown = strdup(path);
    if (!st->shown) goto oom;
    /* The real file, once: through a symbolic link the lock, the journal, the copy and the
     * rename happen beside the target, so the link stays a link and a sweep through the
     * link and one on the target contend for one lock. */
    st->path = path_resolve(path, why, sizeof why);
    if (!st->path) {
        snprintf(err, errlen, "cannot write results to %s", why);
        goto fail;
    }
    st->tmp_path = str_cat(st->path, ".tmp");
    st->lock_path = str_cat(st->path, ".lock");
    st->journal_path = str_cat(st->path, JOURNAL_SUFFIX);
    st->image_name = str_cat(st->path, "/in-memory");
    if (!st->tmp_path || !st->lock_path || !st->journal_path || !st->image_name) goto oom;
    /* One writer per file. The lock file is removed on close; a process that opened it
     * just before the removal would lock a dead inode, so the inode is checked. */
    st->lock_fd = open(st->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (st->lock_fd < 0) {
        snprintf(err, errlen, "cannot write results to %s: %s (creating %s)", path, strerror(errno), st->lock_path);
        goto fail;
    }
    struct stat lk, now;
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0 || fstat(st->lock_fd, &lk) != 0 ||
        stat(st->lock_path, &now) != 0 || lk.st_ino != now.st_ino) {
        snprintf(err, errlen, "%s is being written by another ctxbench process (lock %s)", path, st->lock_path);
        close(st->lock_fd);
        st->lock_fd = -1;
        goto fail;
    }
    unlink(st->tmp_path);   /* a copy left by a writer killed mid-fold: the journal still holds its cells */
    if (access(st->path, F_OK) == 0) {
        struct h5_quiet q;
        quiet_begin(&q);
        hid_t f = open_results(st->path, err, errlen);
        hid_t cells = f < 0 ? -1 : H5Gopen2(f, "cells", H5P_DEFAULT);
        hsize_t idx = 0;
        herr_t it = cells < 0 ? -1 : H5Literate(cells, H5_INDEX_NAME, H5_ITER_INC, &idx, index_cb, st);
        if (f >= 0 && it < 0) snprintf(err, errlen, "%s: could not read the list of cells", path);
        if (cells >= 0) H5Gclose(cells);
        if (f >= 0) H5Fclose(f);
        quiet_end(&q);
        if (it < 0) goto fail;
        if (check_writable(st->path, path, err, errlen) != 0) goto fail;
    }
    /* Cells journaled by a writer that did not fold them (killed): indexed, and a torn
     * last record (killed inside its write) cut off so that new records follow whole ones. */
    unsigned char *jb;
    size_t jlen;
    if (journal_read(st->journal_path, &jb, &jlen, err, errlen) != 0) goto fail;
    if (jb) {
        size_t off = 0, plen;
        const unsigned char *payload;
        for (size_t at = 0; journal_next(jb, jlen, &off, &payload, &plen); at = off) {
            struct store_cell c;
            if (journal_decode(payload, plen, false, &c) != 0) {
                off = at;
                break;
            }
            int r = index_set(st, c.id, c.status);
            cell_release(&c);
            if (r != 0) {
                free(jb);
                goto oom;
            }
            st->journal_cells++;
        }
        free(jb);
        st->journal_len = (off_t)off;
        if (off < jlen) {
            st->journal_fd = open(st->journal_path, O_WRONLY | O_APPEND | O_CLOEXEC);
            if (st->journal_fd < 0 || ftruncate(st->journal_fd, (off_t)off) != 0 || fdatasync(st->journal_fd) != 0) {
                snprintf(err, errlen, "cannot write results to %s: %s (cutting the torn end of %s)", path,
                         strerror(errno), st->journal_path);
                goto fail;
            }
        }
    }
    st->opened = true;
    /* Folded now, so the HDF5 file holds every cell again; when that fails (a full disk)
     * the journal keeps them and the sweep goes on appending to it. */
    if (st->journal_cells > 0) store_fold(st, why, sizeof why);
    else if (jb && st->journal_len == 0) {
        if (st->journal_fd >= 0) close(st->journal_fd);
        st->journal_fd = -1;
        unlink(st->journal_path);
    }
    return st;
oom:
    snprintf(err, errlen, "out of memory opening %s", path ? path : "(null)");
fail:
    store_close(st);
    return NULL;
}

enum cell_status store_cell_status(const struct store *st, const char *id) {
    int i = index_find(st, id);
    return i >= 0 ? st->cells[i].status : CELL_ABSENT;
}

int store_count(const struct store *st, enum cell_status s) {
    int n = 0;
    for (int i = 0; i < st->n; i++) n += st->cells[i].status == s;
    return n;
}

static int write_item(hid_t results, const struct result_item *it, char *err, size_t errlen) {
    if (!it->name[0] || strchr(it->name, '/') || strcmp(it->name, ".") == 0) {
        snprintf(err, errlen, "result item name '%s' cannot be an HDF5 name", it->name);
        return -1;
    }
    int rc = -1;
    if (it->kind == RESULT_SCALAR) {
        rc = attr_write(results, it->name, H5T_NATIVE_DOUBLE, &it->value);
    } else if (it->kind == RESULT_TEXT) {
        rc = attr_write_str(results, it->name, it->text);
    } else if (it->kind == RESULT_ARRAY && it->data && it->rows > 0 && it->cols > 0) {
        hsize_t dims[2] = {(hsize_t)it->rows, (hsize_t)it->cols};
        hid_t space = H5Screate_simple(it->cols == 1 ? 1 : 2, dims, NULL);
        hid_t d = space < 0 ? -1
                            : H5Dcreate2(results, it->name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                                         H5P_DEFAULT);
        rc = d < 0 || H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, it->data) < 0 ? -1 : 0;
        if (d >= 0) H5Dclose(d);
        if (space >= 0) H5Sclose(space);
    }
    if (rc < 0) snprintf(err, errlen, "could not write result item '%s'", it->name);
    return rc;
}

/* Adds cell `id` to the open file, replacing an earlier attempt. */
static int write_cell(hid_t f, const char *id, enum cell_status status, const struct store_attr *attrs, int n_attrs,
                      const struct result *res, char *err, size_t errlen) {
    hid_t cells = H5Gopen2(f, "cells", H5P_DEFAULT);
    if (cells < 0) {
        snprintf(err, errlen, "the results file has no /cells group");
        return -1;
    }
    if (H5Lexists(cells, id, H5P_DEFAULT) > 0 && H5Ldelete(cells, id, H5P_DEFAULT) < 0) {
        snprintf(err, errlen, "could not replace cell %s", id);
        H5Gclose(cells);
        return -1;
    }
    int rc = -1;
    hid_t g = ordered_group(cells, id), results = -1;
    if (g < 0) {
        snprintf(err, errlen, "could not create cell group %s", id);
        goto out;
    }
    if (attr_write_str(g, "status", cell_status_name(status)) < 0) {
        snprintf(err, errlen, "could not write the status of cell %s", id);
        goto out;
    }
    for (int i = 0; i < n_attrs; i++)
        if (attr_write_one(g, &attrs[i]) < 0) {
            snprintf(err, errlen, "could not write attribute '%s' of cell %s (duplicate name?)", attrs[i].name, id);
            goto out;
        }
    if (status == CELL_DONE && res) {
        results = ordered_group(g, "results");
        if (results < 0) {
            snprintf(err, errlen, "could not create %s/results", id);
            goto out;
        }
        for (int i = 0; i < res->n && i < RESULT_MAX_ITEMS; i++)
            if (write_item(results, &res->items[i], err, errlen) < 0) goto out;
    }
    rc = 0;
out:
    if (results >= 0) H5Gclose(results);
    if (g >= 0) H5Gclose(g);
    H5Gclose(cells);
    return rc;
}

static hid_t create_file(const char *path, hid_t fapl) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) return -1;
    int64_t version = STORE_SCHEMA_VERSION;
    hid_t cells = -1;
    if (attr_write_str(f, "format", STORE_FORMAT) < 0 || attr_write(f, "schema_version", H5T_NATIVE_INT64, &version) < 0 ||
        (cells = ordered_group(f, "cells")) < 0) {
        H5Fclose(f);
        return -1;
    }
    H5Gclose(cells);
    return f;
}

/* Writes a finished file image to the temporary file beside `path`, with the mode and
 * owner of the file it replaces, and renames it into place. `what` names the change for
 * messages ("cell X", "the journal's 12 cells"). */
static int write_image_at(const char *path, const char *tmp_path, const char *shown, const void *image, size_t len,
                          const struct stat *old, const char *what, char *err, size_t errlen) {
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s to %s: %s (creating %s)", what, shown, strerror(errno), tmp_path);
        return -1;
    }
    int rc = 0;
    if (old && match_mode_owner(fd, old) != 0) rc = -1;   /* looks like the file it replaces */
    if (rc == 0 && write_all(fd, image, len) != 0) rc = -1;
    if (rc != 0) snprintf(err, errlen, "cannot write %s to %s: %s", what, shown, strerror(errno));
    if (close(fd) != 0 && rc == 0) {
        snprintf(err, errlen, "cannot write %s to %s: %s", what, shown, strerror(errno));
        rc = -1;
    }
    if (rc == 0) {
        char why[1024];
        if (atomic_replace(tmp_path, path, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", what, why);
            rc = -1;
        }
    }
    if (rc != 0) unlink(tmp_path);
    return rc;
}

/* The in-memory file's bytes (H5Fget_file_image, its superblock checksum fixed); closes f.
 * NULL + reason. */
static void *file_image_close(hid_t f, size_t *len, const char *shown, char *err, size_t errlen) {
    void *image = NULL;
    ssize_t n = H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0 ? H5Fget_file_image(f, NULL, 0) : -1;
    if (n > 0 && (image = malloc((size_t)n)) != NULL && H5Fget_file_image(f, image, (size_t)n) == n &&
        fix_superblock_checksum(image, (size_t)n) == 0) {
        *len = (size_t)n;
    } else {
        snprintf(err, errlen, "%s: HDF5 could not produce the file (out of memory?)", shown);
        free(image);
        image = NULL;
    }
    if (close_file(f) != 0 && image) {
        snprintf(err, errlen, "%s: HDF5 could not close the file", shown);
        free(image);
        image = NULL;
    }
    return image;
}

/* Writes the cell's stored attributes except "status" (write_cell adds it). */
static int write_store_cell(hid_t f, const struct store_cell *c, char *err, size_t errlen) {
    struct store_attr *attrs = malloc((size_t)(c->n_attrs ? c->n_attrs : 1) * sizeof *attrs);
    if (!attrs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int n = 0;
    for (int i = 0; i < c->n_attrs; i++)
        if (strcmp(c->attrs[i].name, "status") != 0) attrs[n++] = c->attrs[i];
    int rc = write_cell(f, c->id, c->status, attrs, n, &c->res, err, errlen);
    free(attrs);
    return rc;
}

/* The cells are in the HDF5 file: the journal goes. A kill before the unlink leaves
 * records whose cells are already there; folding them again changes nothing. */
static void journal_drop(struct store *st) {
    if (st->journal_fd >= 0) close(st->journal_fd);
    st->journal_fd = -1;
    unlink(st->journal_path);
    sync_dir_of(st->path);
    st->journal_len = 0;
    st->journal_cells = 0;
}

int store_fold(struct store *st, char *err, size_t errlen) {
    if (st->journal_cells == 0) return 0;
    struct stat old;
    bool exists = stat(st->path, &old) == 0;
    if (exists && check_writable(st->path, st->shown, err, errlen) != 0) return -1;
    unsigned char *jb = NULL;
    size_t jlen = 0, len = 0;
    void *image = NULL;
    if (journal_read(st->journal_path, &jb, &jlen, err, errlen) != 0) return -1;
    if (exists && !(image = input_read_file_max(st->path, INPUT_UNLIMITED, &len, err, errlen))) {
        free(jb);
        return -1;
    }
    struct h5_quiet q;
    quiet_begin(&q);
    int rc = -1, folded = 0;
    hid_t fapl = memory_access(image, len);
    free(image);   /* HDF5 keeps its own copy */
    image = NULL;
    hid_t f = fapl < 0 ? -1 : exists ? H5Fopen(st->image_name, H5F_ACC_RDWR, fapl) : create_file(st->image_name, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (f < 0) {
        snprintf(err, errlen, "%s: HDF5 could not %s the file", st->shown, exists ? "open" : "create");
        goto out;
    }
    /* the journal's records in order: a later record of a cell replaces an earlier one */
    size_t off = 0, plen;
    const unsigned char *payload;
    char why[1024];
    while (off < (size_t)st->journal_len && journal_next(jb, jlen, &off, &payload, &plen)) {
        struct store_cell c;
        if (journal_decode(payload, plen, true, &c) != 0) break;
        int w = write_store_cell(f, &c, why, sizeof why);
        cell_release(&c);
        if (w != 0) {
            snprintf(err, errlen, "%s: %s", st->shown, why);
            close_file(f);
            goto out;
        }
        folded++;
    }
    if (!(image = file_image_close(f, &len, st->shown, err, errlen))) goto out;
    char what[64];
    snprintf(what, sizeof what, "the journal's %d cell%s", folded, folded == 1 ? "" : "s");
    if (write_image_at(st->path, st->tmp_path, st->shown, image, len, exists ? &old : NULL, what, err, errlen) != 0)
        goto out;
    journal_drop(st);
    rc = 0;
out:
    free(image);
    free(jb);
    quiet_end(&q);
    return rc;
}

/* A new results file without cells, written atomically. */
static int create_empty(struct store *st, char *err, size_t errlen) {
    struct h5_quiet q;
    quiet_begin(&q);
    int rc = -1;
    size_t len = 0;
    void *image = NULL;
    hid_t fapl = memory_access(NULL, 0);
    hid_t f = fapl < 0 ? -1 : create_file(st->image_name, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (f < 0) snprintf(err, errlen, "%s: HDF5 could not create the file", st->shown);
    else if ((image = file_image_close(f, &len, st->shown, err, errlen)) != NULL)
        rc = write_image_at(st->path, st->tmp_path, st->shown, image, len, NULL, "a new results file", err, errlen);
    free(image);
    quiet_end(&q);
    return rc;
}

/* What write_cell would refuse, refused before the cell is journaled (a journaled cell
 * must fold). */
static int check_cell(const char *id, const struct store_attr *attrs, int n_attrs, const struct result *res,
                      char *err, size_t errlen) {
    for (int i = 0; i < n_attrs; i++) {
        const char *name = attrs[i].name;
        bool bad = !name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "status") == 0 ||
                   (unsigned)attrs[i].kind > STORE_I64;
        for (int j = 0; j < i && !bad; j++) bad = strcmp(attrs[j].name, name) == 0;
        if (bad) {
            snprintf(err, errlen, "could not write attribute '%s' of cell %s (duplicate name?)", name, id);
            return -1;
        }
    }
    for (int i = 0; res && i < res->n && i < RESULT_MAX_ITEMS; i++) {
        const struct result_item *it = &res->items[i];
        if (!it->name[0] || strchr(it->name, '/') || strcmp(it->name, ".") == 0) {
            snprintf(err, errlen, "result item name '%s' cannot be an HDF5 name", it->name);
            return -1;
        }
        bool dup = false;
        for (int j = 0; j < i && !dup; j++) dup = strcmp(res->items[j].name, it->name) == 0;
        bool bad_array = it->kind == RESULT_ARRAY &&
                         (!it->data || it->rows <= 0 || it->cols <= 0 || it->rows > (1 << 30) || it->cols > (1 << 30) ||
                          (int64_t)it->rows * it->cols > ((int64_t)1 << 31));
        if (dup || bad_array || (unsigned)it->kind > RESULT_TEXT) {
            snprintf(err, errlen, "could not write result item '%s'", it->name);
            return -1;
        }
    }
    return 0;
}

int store_put(struct store *st, const char *id, enum cell_status status, const struct store_attr *attrs,
              int n_attrs, const struct result *res, char *err, size_t errlen) {
    if (!id || !*id || strlen(id) > STORE_ID_MAX || strchr(id, '/') || strcmp(id, ".") == 0) {
        snprintf(err, errlen, "bad cell id '%s'", id ? id : "(null)");
        return -1;
    }
    if (status == CELL_ABSENT || (unsigned)status > CELL_FAILED) {
        snprintf(err, errlen, "cell %s: no status to write", id);
        return -1;
    }
    struct stat old;
    bool exists = stat(st->path, &old) == 0;
    if (exists && check_writable(st->path, st->shown, err, errlen) != 0) return -1;
    char why[1024];
    if (check_cell(id, attrs, n_attrs, status == CELL_DONE ? res : NULL, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", st->shown, why);
        return -1;
    }
    /* The first cell of a new file: the HDF5 file is created first (empty, a few hundred
     * bytes), so a results file exists, and opens, from the first finished cell on. */
    if (!exists) {
        if (create_empty(st, err, errlen) != 0) return -1;
        exists = stat(st->path, &old) == 0;
    }
    unsigned char *rec;
    size_t len;
    if (journal_encode(id, status, attrs, n_attrs, res, &rec, &len) != 0) {
        snprintf(err, errlen, "out of memory writing cell %s", id);
        return -1;
    }
    /* One record appended and synced: the cost of a cell is its own size, whatever the
     * size of the file. A kill inside the write leaves a torn record that readers ignore. */
    bool created = false;
    if (st->journal_fd < 0) {
        created = access(st->journal_path, F_OK) != 0;
        st->journal_fd = open(st->journal_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
        if (st->journal_fd >= 0 && exists && created) match_mode_owner(st->journal_fd, &old);
    }
    int rc = -1;
    if (st->journal_fd < 0) {
        snprintf(err, errlen, "cannot write cell %s to %s: %s (creating %s)", id, st->shown, strerror(errno),
                 st->journal_path);
        goto out;
    }
    if (write_all(st->journal_fd, rec, len) != 0 || fdatasync(st->journal_fd) != 0) {
        snprintf(err, errlen, "cannot write cell %s to %s: %s", id, st->shown, strerror(errno));
        /* the partial record goes: the journal stays whole records */
        if (ftruncate(st->journal_fd, st->journal_len) == 0) fdatasync(st->journal_fd);
        if (st->journal_len == 0) {
            close(st->journal_fd);
            st->journal_fd = -1;
            unlink(st->journal_path);
        }
        goto out;
    }
    if (created) sync_dir_of(st->path);
    st->journal_len += (off_t)len;
    st->journal_cells++;
    if (index_set(st, id, status) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(rec);
    return rc;
}

/* ------------------------------------------------------------------ reader */

struct read_ctx {
    struct store_cell *cell;
    bool with_arrays;
    int cap;
    char *err;
    size_t errlen;
};

static herr_t cell_attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *arg) {
    (void)info;
    struct read_ctx *rc = arg;
    struct store_cell *c = rc->cell;
    if (strlen(name) >= sizeof c->attrs[0].name) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    struct store_attr v = {0};
    int r = attr_read(a, &v);
    H5Aclose(a);
    if (r <= 0) {
        free(v.s);
        if (r < 0) snprintf(rc->err, rc->errlen, "cell %s: could not read attribute '%s'", c->id, name);
        return r;
    }
    snprintf(v.name, sizeof v.name, "%s", name);
    if (strcmp(name, "status") == 0 && v.kind == STORE_STR) c->status = status_from_name(v.s);
    if (c->n_attrs == rc->cap) {
        int cap = rc->cap ? 2 * rc->cap : 32;
        struct store_attr *na = realloc(c->attrs, (size_t)cap * sizeof *na);
        if (!na) {
            free(v.s);
            snprintf(rc->err, rc->errlen, "out of memory");
            return -1;
        }
        c->attrs = na;
        rc->cap = cap;
    }
    c->attrs[c->n_attrs++] = v;
    return 0;
}

static herr_t result_attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *arg) {
    (void)info;
    struct read_ctx *rc = arg;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    struct store_attr v = {0};
    int r = attr_read(a, &v);
    H5Aclose(a);
    int added = 0;
    if (r == 1 && v.kind == STORE_STR) added = result_text(&rc->cell->res, name, v.s);
    else if (r == 1 && v.kind == STORE_F64) added = result_scalar(&rc->cell->res, name, v.f);
    else if (r == 1 && v.kind == STORE_I64) added = result_scalar(&rc->cell->res, name, (double)v.i);
    free(v.s);
    if (r < 0 || added < 0) {
        snprintf(rc->err, rc->errlen, "cell %s: could not read result '%s'", rc->cell->id, name);
        return -1;
    }
    return 0;
}

static herr_t result_array_cb(hid_t group, const char *name, const H5L_info_t *info, void *arg) {
    (void)info;
    struct read_ctx *rc = arg;
    hid_t o = H5Oopen(group, name, H5P_DEFAULT);
    if (o < 0) return 0;
    herr_t ret = 0;
    if (H5Iget_type(o) == H5I_DATASET) {
        hid_t space = H5Dget_space(o);
        int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
        hsize_t dims[2] = {1, 1};
        if (rank == 1 || rank == 2) H5Sget_simple_extent_dims(space, dims, NULL);
        bool sane = (rank == 1 || rank == 2) && dims[0] > 0 && dims[1] > 0 && dims[0] <= (1u << 30) &&
                    dims[1] <= (1u << 30) && dims[0] * dims[1] <= ((hsize_t)1 << 31);
        double *v = sane ? malloc((size_t)(dims[0] * dims[1]) * sizeof *v) : NULL;
        if (!v || H5Dread(o, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0 ||
            result_array(&rc->cell->res, name, v, (int)dims[0], (int)dims[1]) < 0) {
            snprintf(rc->err, rc->errlen, "cell %s: could not read result array '%s'", rc->cell->id, name);
            ret = -1;
        }
        free(v);
        if (space >= 0) H5Sclose(space);
    }
    H5Oclose(o);
    return ret;
}

/* Attributes in creation order where the file tracks it, else by name. */
static herr_t iterate_attrs(hid_t loc, H5A_operator2_t cb, void *arg) {
    hsize_t idx = 0;
    herr_t r = H5Aiterate2(loc, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, cb, arg);
    if (r < 0 && idx == 0) r = H5Aiterate2(loc, H5_INDEX_NAME, H5_ITER_INC, &idx, cb, arg);
    return r;
}

struct list_ctx {
    char (*names)[STORE_ID_MAX + 1];
    int n, cap;
};

static herr_t list_cb(hid_t group, const char *name, const H5L_info_t *info, void *arg) {
    (void)group;
    (void)info;
    struct list_ctx *l = arg;
    if (strlen(name) > STORE_ID_MAX) return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        void *nn = realloc(l->names, (size_t)cap * sizeof *l->names);
        if (!nn) return -1;
        l->names = nn;
        l->cap = cap;
    }
    snprintf(l->names[l->n++], STORE_ID_MAX + 1, "%s", name);
    return 0;
}

/* The cells of the HDF5 file alone, sorted by id. */
static int read_h5(const char *path, bool with_arrays, struct store_cell **cells_out, int *n_out, char *err,
                   size_t errlen) {
    *cells_out = NULL;
    *n_out = 0;
    struct h5_quiet q;
    quiet_begin(&q);
    struct list_ctx l = {0};
    struct store_cell *cells = NULL;
    int n = 0, rc = -1;
    hid_t f = open_results(path, err, errlen), root = -1;
    if (f < 0) goto out;
    root = H5Gopen2(f, "cells", H5P_DEFAULT);
    hsize_t idx = 0;
    if (root < 0 || H5Literate(root, H5_INDEX_NAME, H5_ITER_INC, &idx, list_cb, &l) < 0) {
        snprintf(err, errlen, "%s: could not list /cells", path);
        goto out;
    }
    cells = calloc((size_t)(l.n ? l.n : 1), sizeof *cells);
    if (!cells) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < l.n; i++) {
        struct store_cell *c = &cells[n];
        hid_t g = H5Gopen2(root, l.names[i], H5P_DEFAULT);
        if (g < 0) continue;   /* a link to something else: not a cell */
        snprintf(c->id, sizeof c->id, "%s", l.names[i]);
        n++;
        struct read_ctx rcx = {.cell = c, .with_arrays = with_arrays, .err = err, .errlen = errlen};
        snprintf(err, errlen, "%s: could not read cell %s", path, c->id);
        herr_t r = iterate_attrs(g, cell_attr_cb, &rcx);
        if (r >= 0 && H5Lexists(g, "results", H5P_DEFAULT) > 0) {
            hid_t rg = H5Gopen2(g, "results", H5P_DEFAULT);
            r = rg < 0 ? -1 : iterate_attrs(rg, result_attr_cb, &rcx);
            if (r >= 0 && with_arrays) {
                hsize_t i2 = 0;
                r = H5Literate(rg, H5_INDEX_CRT_ORDER, H5_ITER_INC, &i2, result_array_cb, &rcx);
                if (r < 0 && i2 == 0) r = H5Literate(rg, H5_INDEX_NAME, H5_ITER_INC, &i2, result_array_cb, &rcx);
            }
            if (rg >= 0) H5Gclose(rg);
        }
        H5Gclose(g);
        if (r < 0) goto out;
    }
    rc = 0;
out:
    if (root >= 0) H5Gclose(root);
    if (f >= 0) H5Fclose(f);
    quiet_end(&q);
    free(l.names);
    if (rc != 0) {
        store_cells_free(cells, n);
        return -1;
    }
    *cells_out = cells;
    *n_out = n;
    return 0;
}

void store_cells_free(struct store_cell *cells, int n) {
    if (!cells) return;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < cells[i].n_attrs; j++) free(cells[i].attrs[j].s);
        free(cells[i].attrs);
        result_free(&cells[i].res);
    }
    free(cells);
}

const struct store_attr *store_cell_attr(const struct store_cell *c, const char *name) {
    for (int i = 0; i < c->n_attrs; i++)
        if (strcmp(c->attrs[i].name, name) == 0) return &c->attrs[i];
    return NULL;
}

const char *store_attr_text(const struct store_cell *c, const char *name, char *buf, size_t cap) {
    const struct store_attr *a = store_cell_attr(c, name);
    if (!a) return "";
    if (a->kind == STORE_STR) return a->s ? a->s : "";
    if (a->kind == STORE_F64) snprintf(buf, cap, "%.17g", a->f);
    else snprintf(buf, cap, "%lld", (long long)a->i);
    return buf;
}

struct ordered {
    const struct store_cell *c;
    int seq;   /* the HDF5 file's cells first, then the journal's records in order */
};
static int cmp_ordered(const void *a, const void *b) {
    const struct ordered *x = a, *y = b;
    int c = strcmp(x->c->id, y->c->id);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

int store_read(const char *path, bool with_arrays, struct store_cell **cells_out, int *n_out, char *err,
               size_t errlen) {
    *cells_out = NULL;
    *n_out = 0;
    /* The journal first, then the HDF5 file: a fold between the two reads makes cells
     * appear in both (the same), never in neither. */
    char why[1024];
    char *real = path_resolve(path, why, sizeof why);
    char *jpath = str_cat(real ? real : path, JOURNAL_SUFFIX);
    free(real);
    unsigned char *jb = NULL;
    size_t jlen = 0;
    if (!jpath) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int r = journal_read(jpath, &jb, &jlen, err, errlen);
    free(jpath);
    if (r != 0) return -1;
    int n_rec = 0;
    size_t off = 0, plen;
    const unsigned char *payload;
    while (jb && journal_next(jb, jlen, &off, &payload, &plen)) n_rec++;
    struct store_cell *h5 = NULL, *all = NULL;
    int n_h5 = 0;
    if ((n_rec == 0 || access(path, F_OK) == 0) && read_h5(path, with_arrays, &h5, &n_h5, err, errlen) != 0) {
        free(jb);
        return -1;
    }
    if (n_rec == 0) {
        free(jb);
        *cells_out = h5;
        *n_out = n_h5;
        return 0;
    }
    /* Journaled cells over the file's: the last record of a cell is the cell. */
    int n = n_h5, n_out_cells = 0, rc = -1;
    struct store_cell *jc = calloc((size_t)n_rec, sizeof *jc);
    struct ordered *ord = calloc((size_t)(n_h5 + n_rec), sizeof *ord);
    all = calloc((size_t)(n_h5 + n_rec), sizeof *all);
    int n_jc = 0;
    if (!jc || !ord || !all) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    off = 0;
    while (n_jc < n_rec && journal_next(jb, jlen, &off, &payload, &plen)) {
        if (journal_decode(payload, plen, with_arrays, &jc[n_jc]) != 0) break;   /* damage ends the journal */
        n_jc++;
    }
    for (int i = 0; i < n_h5; i++) ord[i] = (struct ordered){&h5[i], i};
    for (int i = 0; i < n_jc; i++) ord[n + i] = (struct ordered){&jc[i], n + i};
    n += n_jc;
    qsort(ord, (size_t)n, sizeof *ord, cmp_ordered);
    /* moved into `all`; the cells left behind are released below */
    for (int i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(ord[i].c->id, ord[i + 1].c->id) == 0) continue;
        struct store_cell *c = (struct store_cell *)ord[i].c;
        all[n_out_cells++] = *c;
        memset(c, 0, sizeof *c);
    }
    rc = 0;
out:
    for (int i = 0; i < n_h5; i++) cell_release(&h5[i]);
    for (int i = 0; i < n_jc; i++) cell_release(&jc[i]);
    free(h5);
    free(jc);
    free(ord);
    free(jb);
    if (rc != 0) {
        store_cells_free(all, n_out_cells);
        return -1;
    }
    *cells_out = all;
    *n_out = n_out_cells;
    return 0;
}

int store_settle(const char *path) {
    char why[1024];
    char *real = path_resolve(path, why, sizeof why);
    char *jpath = real ? str_cat(real, JOURNAL_SUFFIX) : NULL;
    bool journal = jpath && access(jpath, F_OK) == 0;
    free(real);
    free(jpath);
    if (!journal) return 0;
    struct store *st = store_open(path, why, sizeof why);   /* folds */
    if (!st) return -1;
    int rc = st->journal_cells > 0 ? -1 : 0;
    store_close(st);
    return rc;
}

int store_replace(struct store *st, const struct store_cell *cells, int n, char *err, size_t errlen) {
    struct stat old;
    bool exists = stat(st->path, &old) == 0;
    if (exists && check_writable(st->path, st->shown, err, errlen) != 0) return -1;
    struct h5_quiet q;
    quiet_begin(&q);
    int rc = -1;
    size_t len = 0;
    void *image = NULL;
    char why[1024];
    hid_t fapl = memory_access(NULL, 0);
    hid_t f = fapl < 0 ? -1 : create_file(st->image_name, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (f < 0) {
        snprintf(err, errlen, "%s: HDF5 could not create the file", st->shown);
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (write_store_cell(f, &cells[i], why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", st->shown, why);
            close_file(f);
            goto out;
        }
    if (!(image = file_image_close(f, &len, st->shown, err, errlen))) goto out;
    char what[64];
    snprintf(what, sizeof what, "%d cell%s", n, n == 1 ? "" : "s");
    if (write_image_at(st->path, st->tmp_path, st->shown, image, len, exists ? &old : NULL, what, err, errlen) != 0)
        goto out;
    /* the journal's cells were among those given (the caller read them under the lock) */
    journal_drop(st);
    st->n = 0;
    free(st->slots);
    st->slots = NULL;
    st->n_slots = 0;
    for (int i = 0; i < n; i++)
        if (index_set(st, cells[i].id, cells[i].status) != 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    rc = 0;
out:
    free(image);
    quiet_end(&q);
    return rc;
}

bool store_attr_run_specific(const char *name) {
    static const char *const names[] = {"started", "started_unix", "wall_s", "tokens_per_s", "peak_rss_mib",
                                        "load_avg_start", "load_avg_end", "host", "threads", "device",
                                        "backend_params", "model_path", "data_path", "git_rev", "ctxbench_version"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) return true;
    return false;
}

bool store_result_run_specific(const char *name) {
    return strncmp(name, "timing_", 7) == 0;
}

static bool attr_same(const struct store_attr *a, const struct store_attr *b) {
    if (a->kind != b->kind) return false;
    if (a->kind == STORE_STR) return strcmp(a->s ? a->s : "", b->s ? b->s : "") == 0;
    if (a->kind == STORE_F64) return memcmp(&a->f, &b->f, sizeof a->f) == 0;
    return a->i == b->i;
}

static bool item_same(const struct result_item *a, const struct result_item *b) {
    if (a->kind != b->kind) return false;
    if (a->kind == RESULT_SCALAR) return memcmp(&a->value, &b->value, sizeof a->value) == 0;
    if (a->kind == RESULT_TEXT) return strcmp(a->text ? a->text : "", b->text ? b->text : "") == 0;
    return a->rows == b->rows && a->cols == b->cols &&
           (!a->data || !b->data ? a->data == b->data
                                 : memcmp(a->data, b->data, (size_t)a->rows * (size_t)a->cols * sizeof *a->data) == 0);
}

bool store_cells_same(const struct store_cell *a, const struct store_cell *b, char *why, size_t cap) {
    if (a->status != b->status) {
        snprintf(why, cap, "status %s vs %s", cell_status_name(a->status), cell_status_name(b->status));
        return false;
    }
    for (int pass = 0; pass < 2; pass++) {   /* every attribute of a in b, then of b in a */
        const struct store_cell *x = pass ? b : a, *y = pass ? a : b;
        for (int i = 0; i < x->n_attrs; i++) {
            if (store_attr_run_specific(x->attrs[i].name)) continue;
            const struct store_attr *o = store_cell_attr(y, x->attrs[i].name);
            if (!o || !attr_same(&x->attrs[i], o)) {
                snprintf(why, cap, "attribute '%s' %s", x->attrs[i].name, o ? "differs" : "is in one only");
                return false;
            }
        }
        for (int i = 0; i < x->res.n; i++) {
            if (store_result_run_specific(x->res.items[i].name)) continue;
            const struct result_item *o = result_find(&y->res, x->res.items[i].name);
            if (!o || !item_same(&x->res.items[i], o)) {
                snprintf(why, cap, "result '%s' %s", x->res.items[i].name, o ? "differs" : "is in one only");
                return false;
            }
        }
    }
    return true;
}
