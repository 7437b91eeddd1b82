/* Datasets as lists of documents: named sets under ../shared/datasets, text files,
 * folders of text files, JSON lines and CSV. What counts as a document matters for the
 * per-document perplexity protocols, so each source says how it splits (see dataset.h). */
#include <csv.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "input.h"
#include "sha256.h"

#define MAX_DOCS 10000000

struct named_dataset {
    const char *name;
    const char *rel;            /* under $CTXBENCH_SHARED/datasets */
    enum dataset_format format;
    const char *field;
    const char *what;
};

static const struct named_dataset named[] = {
    {"tinystories", "tinystories/TinyStories-valid-first1000.txt", DATASET_STORIES, "",
     "TinyStories validation, first 1000 stories, split at blank lines"},
    {"tinystories-sampled", "tinystories/stories_sampled.txt", DATASET_STORIES, "",
     "1027 stories sampled from stories260K, split at blank lines"},
    {"children", "children", DATASET_DIR, "", "3 children's books, one document each"},
    {"books", "books", DATASET_DIR, "", "12 pre-1919 novels, one document each"},
    {"govreport", "govreport/leval_gov_report_summ.jsonl", DATASET_JSONL, "input",
     "L-Eval GovReport, 14 reports (field input)"},
    {"passkey", "passkey/selfextend_passkey_examples.jsonl", DATASET_JSONL, "input",
     "SelfExtend's 4 passkey prompts (field input)"},
};
#define N_NAMED (int)(sizeof named / sizeof named[0])

const char *dataset_names(char *buf, size_t cap) {
    size_t used = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < N_NAMED && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%-20s %s\n", named[i].name, named[i].what);
        if (w < 0) break;
        used += (size_t)w;
    }
    return buf;
}

static const char *shared_root(void) {
    const char *r = getenv("CTXBENCH_SHARED");
    return r && *r ? r : "../shared";
}

static bool ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static bool exists(const char *path, bool *is_dir) {
    struct stat sb;
    if (stat(path, &sb) != 0) return false;
    if (is_dir) *is_dir = S_ISDIR(sb.st_mode);
    return true;
}

int dataset_resolve(const char *spec, char *path, size_t cap, enum dataset_format *format, char *field,
                    size_t field_cap, char *err, size_t errlen) {
    if (!spec || !*spec) {
        snprintf(err, errlen, "no dataset given");
        return -1;
    }
    for (int i = 0; i < N_NAMED; i++)
        if (strcmp(spec, named[i].name) == 0) {
            int w = snprintf(path, cap, "%s/datasets/%s", shared_root(), named[i].rel);
            if (w < 0 || (size_t)w >= cap) {
                snprintf(err, errlen, "dataset '%s': path too long", ECHO(spec));
                return -1;
            }
            if (!exists(path, NULL)) {
                snprintf(err, errlen, "dataset '%s': %s not found (set CTXBENCH_SHARED to the shared folder)",
                         ECHO(spec), ECHO(path));
                return -1;
            }
            *format = named[i].format;
            snprintf(field, field_cap, "%s", named[i].field);
            return 0;
        }
    /* PATH[#option] */
    const char *hash = strrchr(spec, '#');
    size_t plen = hash ? (size_t)(hash - spec) : strlen(spec);
    const char *opt = hash ? hash + 1 : "";
    if (plen == 0 || plen >= cap || plen >= 1024) {
        snprintf(err, errlen, "dataset '%s': empty or too long a path", ECHO(spec));
        return -1;
    }
    char rel[1024];
    memcpy(rel, spec, plen);
    rel[plen] = 0;
    bool is_dir = false;
    if (exists(rel, &is_dir)) snprintf(path, cap, "%s", rel);
    else {
        int w = snprintf(path, cap, "%s/datasets/%s", shared_root(), rel);
        if (rel[0] == '/' || w < 0 || (size_t)w >= cap || !exists(path, &is_dir)) {
            char names[512] = "";
            for (int i = 0; i < N_NAMED; i++) {
                size_t u = strlen(names);
                snprintf(names + u, sizeof names - u, "%s%s", i ? ", " : "", named[i].name);
            }
            snprintf(err, errlen, "dataset '%s' not found (not a path, nor under %s/datasets; named: %s)", ECHO(spec),
                     ECHO(shared_root()), names);
            return -1;
        }
    }
    if (is_dir) *format = DATASET_DIR;
    else if (ends_with(rel, plen, ".jsonl") || ends_with(rel, plen, ".json")) *format = DATASET_JSONL;
    else if (ends_with(rel, plen, ".csv")) *format = DATASET_CSV;
    else *format = strcmp(opt, "stories") == 0 ? DATASET_STORIES : DATASET_TXT;
    const char *def = *format == DATASET_JSONL || *format == DATASET_CSV ? "text" : "";
    bool opt_ok = *format == DATASET_JSONL || *format == DATASET_CSV ? true
                : *format == DATASET_STORIES ? true : !*opt;
    if (!opt_ok || (hash && !*opt) || strlen(opt) >= field_cap) {
        snprintf(err, errlen,
                 "dataset '%s': bad '#%s' (a .txt takes #stories, a .jsonl #FIELD, a .csv #COLUMN, a folder nothing)",
                 ECHO(spec), ECHO(opt));
        return -1;
    }
    snprintf(field, field_cap, "%s", *format == DATASET_STORIES ? "" : *opt ? opt : def);
    return 0;
}

/* Strips a UTF-8 BOM and turns CRLF into LF, in place; returns the new length. */
static size_t normalise(char *s, size_t n) {
    size_t start = n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0, k = 0;
    for (size_t i = start; i < n; i++) {
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') continue;
        s[k++] = s[i];
    }
    s[k] = 0;
    return k;
}

char *dataset_read_text(const char *path, size_t *len, char *err, size_t errlen) {
    char *buf = input_read_file(path, len, err, errlen);
    if (buf) *len = normalise(buf, *len);
    return buf;
}

/* ---- the document list --------------------------------------------------- */

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Surrounding whitespace off s[0..*n): returns the new start, *n the new length. */
static const char *trim(const char *s, size_t *n) {
    while (*n && is_space(*s)) s++, (*n)--;
    while (*n && is_space(s[*n - 1])) (*n)--;
    return s;
}

/* Appends a copy of s[0..n) with a leading BOM stripped, CRLF -> LF and surrounding
 * whitespace trimmed, unless that leaves nothing. The BOM goes before the emptiness
 * check, so "BOM + spaces" is no document; whitespace is trimmed both before (a BOM
 * after leading blanks is still stripped) and after (blanks after the BOM). */
static int add_doc(struct dataset *ds, const char *s, size_t n, char *err, size_t errlen) {
    s = trim(s, &n);
    if (n == 0) return 0;
    if (ds->n_docs >= MAX_DOCS) {
        snprintf(err, errlen, "dataset '%s': more than %d documents", ECHO(ds->spec), MAX_DOCS);
        return -1;
    }
    char *copy = malloc(n + 1);
    if (!copy) {
        snprintf(err, errlen, "dataset '%s': out of memory", ECHO(ds->spec));
        return -1;
    }
    memcpy(copy, s, n);
    copy[n] = 0;
    /* a JSON or CSV value may hold a BOM or CRLF of its own */
    n = normalise(copy, n);
    const char *t = trim(copy, &n);
    if (n == 0) {
        free(copy);
        return 0;
    }
    memmove(copy, t, n);
    copy[n] = 0;
    if (ds->n_docs == ds->docs_cap) {
        int want = ds->docs_cap ? ds->docs_cap * 2 : 16;
        char **d = realloc(ds->docs, (size_t)want * sizeof *d);
        if (d) ds->docs = d;
        size_t *l = d ? realloc(ds->doc_len, (size_t)want * sizeof *l) : NULL;
        if (l) ds->doc_len = l;
        if (!d || !l) {
            free(copy);
            snprintf(err, errlen, "dataset '%s': out of memory", ECHO(ds->spec));
            return -1;
        }
        ds->docs_cap = want;
    }
    ds->docs[ds->n_docs] = copy;
    ds->doc_len[ds->n_docs] = n;
    ds->n_docs++;
    return 0;
}

/* Documents separated by blank lines (lines holding only spaces or tabs). */
static int split_stories(struct dataset *ds, const char *s, size_t n, char *err, size_t errlen) {
    size_t start = 0, i = 0;
    while (i < n) {
        size_t eol = i;
        while (eol < n && s[eol] != '\n') eol++;
        bool blank = true;
        for (size_t j = i; j < eol && blank; j++) blank = s[j] == ' ' || s[j] == '\t';
        if (blank) {
            if (add_doc(ds, s + start, i - start, err, errlen) != 0) return -1;
            start = eol + 1 < n ? eol + 1 : n;
        }
        i = eol + 1;
    }
    return start < n ? add_doc(ds, s + start, n - start, err, errlen) : 0;
}

/* ---- JSON lines ------------------------------------------------------------ */

struct json {
    const char *p, *end;
    int depth;
};

static void json_ws(struct json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int hex4(const char *p, const char *end) {
    if (end - p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* Parses a string at j->p ('"'). With out != NULL, writes the decoded UTF-8 there
 * (it needs no more bytes than the escaped form) and its length in *n. */
static bool json_string(struct json *j, char *out, size_t *n) {
    if (j->p >= j->end || *j->p != '"') return false;
    j->p++;
    size_t k = 0;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if ((unsigned char)c < 0x20) return false;
        if (c != '\\') {
            if (out) out[k] = c;
            k++;
            continue;
        }
        if (j->p >= j->end) return false;
        char e = *j->p++;
        char simple = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f'
                    : e == '"' || e == '\\' || e == '/' ? e : 0;
        if (simple) {
            if (out) out[k] = simple;
            k++;
            continue;
        }
        if (e != 'u') return false;
        int u = hex4(j->p, j->end);
        if (u < 0) return false;
        j->p += 4;
        unsigned cp = (unsigned)u;
        if (cp >= 0xD800 && cp < 0xDC00) {   /* a surrogate pair makes one code point */
            int lo = j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' ? hex4(j->p + 2, j->end) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) return false;
            j->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) return false;
        char tmp[4];
        size_t w = put_utf8(out ? out + k : tmp, cp);
        k += w;   /* the escape took 6 or 12 bytes, the UTF-8 at most 4 */
    }
    if (j->p >= j->end) return false;
    j->p++;
    if (n) *n = k;
    return true;
}

/* Skips any JSON value; nesting is bounded so a hostile line cannot exhaust the stack. */
static bool json_skip(struct json *j) {
    json_ws(j);
    if (j->p >= j->end) return false;
    char c = *j->p;
    if (c == '"') return json_string(j, NULL, NULL);
    if (c == '{' || c == '[') {
        if (++j->depth > 64) return false;
        char close = c == '{' ? '}' : ']';
        j->p++;
        json_ws(j);
        if (j->p < j->end && *j->p == close) { j->p++; j->depth--; return true; }
        for (;;) {
            if (c == '{') {
                json_ws(j);
                if (!json_string(j, NULL, NULL)) return false;
                json_ws(j);
                if (j->p >= j->end || *j->p++ != ':') return false;
            }
            if (!json_skip(j)) return false;
            json_ws(j);
            if (j->p >= j->end) return false;
            if (*j->p == ',') { j->p++; continue; }
            if (*j->p == close) { j->p++; j->depth--; return true; }
            return false;
        }
    }
    /* number, true, false, null: a run of their characters */
    const char *start = j->p;
    while (j->p < j->end && (strchr("+-.eE", *j->p) || (*j->p >= '0' && *j->p <= '9') || (*j->p >= 'a' && *j->p <= 'z')))
        j->p++;
    return j->p > start;
}

/* Finds string field `field` in the object on one line: 1 found (decoded into a malloc'd
 * *out), 0 not present or not a string, -1 malformed. On 0 and -1 nothing is allocated:
 * a value found before a later malformed key is freed on the way out. */
static int json_field(const char *line, size_t n, const char *field, char **out, size_t *out_len) {
    struct json j = {line, line + n, 0};
    char *found = NULL;
    size_t found_len = 0;
    json_ws(&j);
    if (j.p >= j.end || *j.p != '{') return -1;
    j.p++;
    json_ws(&j);
    if (j.p < j.end && *j.p == '}') return 0;
    size_t flen = strlen(field);
    for (;;) {
        json_ws(&j);
        const char *kstart = j.p;
        if (!json_string(&j, NULL, NULL)) goto malformed;
        /* compare the raw key (keys with escapes are not matched) */
        bool match = !found && (size_t)(j.p - kstart) == flen + 2 && memcmp(kstart + 1, field, flen) == 0;
        json_ws(&j);
        if (j.p >= j.end || *j.p++ != ':') goto malformed;
        json_ws(&j);
        if (match && j.p < j.end && *j.p == '"') {
            struct json probe = j;
            if (!json_string(&probe, NULL, &found_len)) goto malformed;
            if (!(found = malloc(found_len + 1))) goto malformed;
            json_string(&j, found, &found_len);
            found[found_len] = 0;
        } else if (!json_skip(&j)) goto malformed;
        json_ws(&j);
        if (j.p < j.end && *j.p == ',') { j.p++; continue; }
        if (j.p < j.end && *j.p == '}') break;
        goto malformed;
    }
    if (!found) return 0;
    *out = found;
    *out_len = found_len;
    return 1;
malformed:
    free(found);
    return -1;
}

static int load_jsonl(struct dataset *ds, const char *s, size_t n, char *err, size_t errlen) {
    long line_no = 0;
    for (size_t i = 0; i < n;) {
        size_t eol = i;
        while (eol < n && s[eol] != '\n') eol++;
        line_no++;
        bool blank = true;
        for (size_t k = i; k < eol && blank; k++) blank = is_space(s[k]);
        if (!blank) {
            char *text = NULL;
            size_t len = 0;
            int r = json_field(s + i, eol - i, ds->field, &text, &len);
            if (r < 0) {
                snprintf(err, errlen, "dataset '%s': %s line %ld is not a JSON object", ECHO(ds->spec), ECHO(ds->path),
                         line_no);
                return -1;
            }
            if (r == 0) {
                snprintf(err, errlen, "dataset '%s': %s line %ld has no string field '%s'", ECHO(ds->spec),
                         ECHO(ds->path), line_no, ECHO(ds->field));
                return -1;
            }
            int a = add_doc(ds, text, len, err, errlen);
            free(text);
            if (a != 0) return -1;
        }
        i = eol + 1;
    }
    return 0;
}

/* ---- CSV ----------------------------------------------------------------- */

struct csv_state {
    struct dataset *ds;
    long row;         /* 0 = header */
    int col;          /* current column */
    int want;         /* the text column, -1 until the header names it */
    char headers[512];
    char *err;
    size_t errlen;
    bool failed;
};

static void csv_on_field(void *data, size_t len, void *st_) {
    struct csv_state *st = st_;
    if (st->failed) return;
    const char *s = data ? data : "";
    if (st->row == 0) {
        size_t u = strlen(st->headers);
        snprintf(st->headers + u, sizeof st->headers - u, "%s%s", st->col ? ", " : "", ECHO_N(s, len));
        if (strlen(st->ds->field) == len && memcmp(s, st->ds->field, len) == 0 && st->want < 0) st->want = st->col;
    } else if (st->col == st->want) {
        if (add_doc(st->ds, s, len, st->err, st->errlen) != 0) st->failed = true;
    }
    st->col++;
}

static void csv_on_row(int c, void *st_) {
    (void)c;
    struct csv_state *st = st_;
    if (st->failed) return;
    if (st->row == 0 && st->want < 0) {
        snprintf(st->err, st->errlen, "dataset '%s': %s has no column '%s' (columns: %s)", ECHO(st->ds->spec),
                 ECHO(st->ds->path), ECHO(st->ds->field), st->headers);
        st->failed = true;
    } else if (st->row > 0 && st->col <= st->want) {
        snprintf(st->err, st->errlen, "dataset '%s': %s row %ld has %d columns, no column '%s'", ECHO(st->ds->spec),
                 ECHO(st->ds->path), st->row, st->col, ECHO(st->ds->field));
        st->failed = true;
    }
    st->row++;
    st->col = 0;
}

static int load_csv(struct dataset *ds, const char *s, size_t n, char *err, size_t errlen) {
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL) != 0) {
        snprintf(err, errlen, "dataset '%s': out of memory", ECHO(ds->spec));
        return -1;
    }
    struct csv_state st = {.ds = ds, .want = -1, .err = err, .errlen = errlen};
    size_t used = csv_parse(&p, s, n, csv_on_field, csv_on_row, &st);
    int ok = used == n && csv_fini(&p, csv_on_field, csv_on_row, &st) == 0;
    if (!ok && !st.failed)
        snprintf(err, errlen, "dataset '%s': %s is not valid CSV (%s)", ECHO(ds->spec), ECHO(ds->path),
                 csv_strerror(csv_error(&p)));
    csv_free(&p);
    if (!ok || st.failed) return -1;
    if (st.row == 0) {
        snprintf(err, errlen, "dataset '%s': %s has no header row", ECHO(ds->spec), ECHO(ds->path));
        return -1;
    }
    return 0;
}

/* ---- folders ------------------------------------------------------------- */

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int load_dir(struct dataset *ds, char *err, size_t errlen) {
    DIR *d = opendir(ds->path);
    if (!d) {
        snprintf(err, errlen, "dataset '%s': %s: %s", ECHO(ds->spec), ECHO(ds->path), strerror(errno));
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0, rc = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || !ends_with(e->d_name, len, ".txt")) continue;
        if (n == cap) {
            if (cap >= MAX_DOCS) {
                snprintf(err, errlen, "dataset '%s': more than %d files", ECHO(ds->spec), MAX_DOCS);
                goto out;
            }
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) goto oom;
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) goto oom;
        n++;
    }
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_name);
    struct sha256 h;
    sha256_begin(&h);
    for (int i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", ds->path, names[i]);
        size_t len;
        char *raw = input_read_file(path, &len, err, errlen);
        if (!raw) goto out;
        uint8_t dg[32];
        char hex[65];
        struct sha256 fh;
        sha256_begin(&fh);
        sha256_add(&fh, raw, len);
        sha256_end(&fh, dg);
        sha256_hex(dg, hex);
        sha256_add(&h, hex, 64);
        sha256_add(&h, "  ", 2);
        sha256_add(&h, names[i], strlen(names[i]));
        sha256_add(&h, "\n", 1);
        ds->bytes += len;
        len = normalise(raw, len);
        int a = add_doc(ds, raw, len, err, errlen);
        free(raw);
        if (a != 0) goto out;
    }
    uint8_t dg[32];
    sha256_end(&h, dg);
    sha256_hex(dg, ds->sha256);
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "dataset '%s': out of memory", ECHO(ds->spec));
out:
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* ---- loading ------------------------------------------------------------- */

int dataset_load_bytes(struct dataset *ds, char *raw, size_t n, char *err, size_t errlen) {
    uint8_t dg[32];
    struct sha256 h;
    sha256_begin(&h);
    sha256_add(&h, raw, n);
    sha256_end(&h, dg);
    sha256_hex(dg, ds->sha256);
    ds->bytes = n;
    n = normalise(raw, n);
    switch (ds->format) {
    case DATASET_STORIES: return split_stories(ds, raw, n, err, errlen);
    case DATASET_JSONL: return load_jsonl(ds, raw, n, err, errlen);
    case DATASET_CSV: return load_csv(ds, raw, n, err, errlen);
    case DATASET_DIR:
        snprintf(err, errlen, "dataset '%s': a folder is not one file's bytes", ds->spec);
        return -1;
    default: return add_doc(ds, raw, n, err, errlen);
    }
}

int dataset_load(const char *spec, struct dataset *ds, char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    if (spec && strlen(spec) >= sizeof ds->spec) {
        snprintf(err, errlen, "dataset spec longer than %zu characters", sizeof ds->spec - 1);
        return -1;
    }
    if (dataset_resolve(spec, ds->path, sizeof ds->path, &ds->format, ds->field, sizeof ds->field, err, errlen) != 0)
        return -1;
    snprintf(ds->spec, sizeof ds->spec, "%s", spec);
    int rc;
    if (ds->format == DATASET_DIR) rc = load_dir(ds, err, errlen);
    else {
        size_t n;
        char *raw = input_read_file(ds->path, &n, err, errlen);
        if (!raw) {
            dataset_free(ds);
            return -1;
        }
        rc = dataset_load_bytes(ds, raw, n, err, errlen);
        free(raw);
    }
    if (rc == 0 && ds->n_docs == 0) {
        snprintf(err, errlen, "dataset '%s' (%s) holds no text", ECHO(spec), ECHO(ds->path));
        rc = -1;
    }
    if (rc != 0) dataset_free(ds);
    return rc;
}

void dataset_free(struct dataset *ds) {
    for (int i = 0; i < ds->n_docs; i++) free(ds->docs[i]);
    free(ds->docs);
    free(ds->doc_len);
    memset(ds, 0, sizeof *ds);
}

const char *dataset_provenance(const struct dataset *ds, char *buf, size_t cap) {
    snprintf(buf, cap, "%s sha256=%s", ds->path, ds->sha256);
    return buf;
}

int dataset_repo_file(const char *rel, char *path, size_t cap, char *err, size_t errlen) {
    const char *env = getenv("CTXBENCH_DATASETS");
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    const char *roots[4] = {env && *env ? env : NULL, "datasets", n > 0 ? exe : NULL, n > 0 ? exe : NULL};
    const char *up[4] = {"", "", "/../datasets", "/../../datasets"};
    for (int i = 0; i < 4; i++) {
        if (!roots[i]) continue;
        int w = snprintf(path, cap, "%s%s/%s", roots[i], up[i], rel);
        if (w > 0 && (size_t)w < cap && exists(path, NULL)) return 0;
    }
    snprintf(err, errlen, "datasets/%s not found (looked in $CTXBENCH_DATASETS, ./datasets and beside the program)",
             ECHO(rel));
    return -1;
}
