/* Datasets and settings: every loader format on files written here, BOM/CRLF handling,
 * named datasets, content hashes against sha256sum, the tokenized-corpus cache (a second
 * load reads the file and does not rewrite it), and the one-line errors. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "input.h"
#include "model.h"
#include "settings.h"
#include "testutil.h"
#include "tokenizer.h"

static char tmpdir[256];

static void make_tmp(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ctxbench-test-dataset-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}
static void rm_tmp(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

static const char *write_file(const char *name, const char *bytes, size_t n) {
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
    return p;
}
#define WRITE(name, lit) write_file(name, lit, sizeof lit - 1)

/* sha256sum's digest of a file, as an independent check of the provenance hash. */
static void sha256sum(const char *path, char hex[65]) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_eq(fscanf(p, "%64s", hex), 1);
    pclose(p);
}

/* ---- settings ---- */

Test(settings, parse_and_getters) {
    struct settings s;
    char err[256];
    cr_assert_eq(settings_parse("stride=128,protocol=yarn,scale=0.5", &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.n, 3);
    long v;
    double d;
    int c;
    static const char *const prot[] = {"windows", "yarn", NULL};
    cr_assert_eq(settings_int(&s, "stride", 256, 1, 1000, &v, err, sizeof err), 0);
    cr_assert_eq(v, 128);
    cr_assert_eq(settings_int(&s, "absent", 7, 1, 1000, &v, err, sizeof err), 0);
    cr_assert_eq(v, 7);
    cr_assert_eq(settings_double(&s, "scale", 1, 0, 1, &d, err, sizeof err), 0);
    cr_assert_float_eq(d, 0.5, 0);
    cr_assert_eq(settings_choice(&s, "protocol", prot, 0, &c, err, sizeof err), 0);
    cr_assert_eq(c, 1);
    cr_assert_eq(settings_int(&s, "stride", 256, 200, 1000, &v, err, sizeof err), -1);
    cr_assert(strstr(err, "stride=128") && strstr(err, "200..1000"), "%s", err);
    cr_assert_eq(settings_int(&s, "scale", 1, 0, 10, &v, err, sizeof err), -1);   /* 0.5 is no integer */
    /* no blanks around a number (strtol would skip leading ones) */
    cr_assert_eq(settings_parse("n=\n4,x= 0.5", &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(settings_int(&s, "n", 1, 0, 10, &v, err, sizeof err), -1);
    cr_assert(strstr(err, "n=\\n4") && !strchr(err, '\n'), "%s", err);
    cr_assert_eq(settings_double(&s, "x", 1, 0, 1, &d, err, sizeof err), -1);
    cr_assert_eq(settings_parse("stride=128,protocol=yarn,scale=0.5", &s, err, sizeof err), 0, "%s", err);
    static const char *const other[] = {"a", "b", NULL};
    cr_assert_eq(settings_choice(&s, "protocol", other, 0, &c, err, sizeof err), -1);
    cr_assert(strstr(err, "a, b"), "%s", err);
    cr_assert_eq(settings_parse("", &s, err, sizeof err), 0);
    cr_assert_eq(s.n, 0);
    cr_assert_eq(settings_parse(NULL, &s, err, sizeof err), 0);
}

Test(settings, rejects_malformed_and_unknown) {
    struct settings s;
    char err[256];
    const char *bad[] = {"stride", "=4", "a=", "a=1,,b=2", "a=1,", "A=1", "a=1,a=2", "a b=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        cr_assert_eq(settings_parse(bad[i], &s, err, sizeof err), -1, "accepted '%s'", bad[i]);
        cr_assert(err[0] && !strchr(err, '\n'), "no one-line reason for '%s'", bad[i]);
    }
    static const char *const valid[] = {"stride", "protocol", NULL};
    cr_assert_eq(settings_parse_checked("strid=3", "ppl", valid, &s, err, sizeof err), -1);
    cr_assert(strstr(err, "ppl") && strstr(err, "strid") && strstr(err, "stride, protocol"), "%s", err);
}

/* ---- reading and echoing user input ---- */

Test(input, whole_file_reads_are_bounded, .init = make_tmp, .fini = rm_tmp) {
    cr_assert_eq(setenv("CTXBENCH_MAX_FILE_BYTES", "1000", 1), 0);
    cr_assert_eq(input_file_limit(), 1000);
    char buf[1001], err[512];
    for (int i = 0; i < 1001; i++) buf[i] = (char)('a' + i % 26);
    buf[10] = 0;   /* NUL bytes are text like any other: the length counts them */
    size_t len = 0;
    char *t = input_read_file(write_file("at.txt", buf, 1000), &len, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    cr_assert(len == 1000 && memcmp(t, buf, 1000) == 0 && t[1000] == 0);
    free(t);
    cr_assert_null(input_read_file(write_file("over.txt", buf, 1001), &len, err, sizeof err));
    cr_assert(strstr(err, "over.txt: 1001 bytes, more than the 1000 bytes"), "%s", err);
    /* an endless device is read up to the limit, then refused */
    cr_assert_null(input_read_file("/dev/zero", &len, err, sizeof err));
    cr_assert(strstr(err, "/dev/zero: more than the 1000 bytes"), "%s", err);
    struct dataset ds;
    cr_assert_eq(dataset_load("/dev/zero", &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "/dev/zero: more than the 1000 bytes"), "%s", err);
    /* /proc files say size 0 but have text: read whole */
    t = input_read_file("/proc/self/comm", &len, err, sizeof err);
    cr_assert(t && len > 0 && t[len - 1] == '\n', "%s", err);
    free(t);
    cr_assert_null(input_read_file(tmpdir, &len, err, sizeof err));
    cr_assert(strstr(err, "is a directory"), "%s", err);
    cr_assert_null(input_read_file("/nonexistent/x", &len, err, sizeof err));
    cr_assert(strstr(err, "/nonexistent/x: No such file"), "%s", err);
    /* the limit can only be lowered */
    const char *unused[] = {"0", "-5", "2000000000", "12x", ""};
    for (size_t i = 0; i < sizeof unused / sizeof unused[0]; i++) {
        cr_assert_eq(setenv("CTXBENCH_MAX_FILE_BYTES", unused[i], 1), 0);
        cr_assert_eq(input_file_limit(), INPUT_MAX_FILE_BYTES, "'%s'", unused[i]);
    }
    unsetenv("CTXBENCH_MAX_FILE_BYTES");
    cr_assert_eq(input_file_limit(), (size_t)1 << 30);
}

Test(input, echo_escapes_and_cuts) {
    struct {
        const char *in;
        size_t n;
        const char *want;
    } cases[] = {
#define CASE(lit, want) {lit, sizeof lit - 1, want}
        CASE("plain path/x.txt", "plain path/x.txt"),
        CASE("a\nb\r\tc\\d", "a\\nb\\r\\tc\\\\d"),
        CASE("\x01\x1b[31m\x7f", "\\x01\\x1B[31m\\x7F"),
        CASE("nul\0x", "nul\\x00x"),
        CASE("caf\xC3\xA9 \xE2\x82\xAC", "caf\xC3\xA9 \xE2\x82\xAC"),   /* printable UTF-8 kept */
        CASE("\xFF\xC3", "\\xFF\\xC3"),                                   /* not UTF-8 */
        CASE("\xC0\x8A", "\\xC0\\x8A"),                                   /* an overlong newline */
        CASE("\xC2\x9B" "1m", "\\xC2\\x9B1m"),                            /* C1 CSI */
        CASE("a\xE2\x80\xA8" "b\xE2\x80\xAE", "a\\xE2\\x80\\xA8b\\xE2\\x80\\xAE"),  /* U+2028, bidi override */
#undef CASE
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_str_eq(ECHO_N(cases[i].in, cases[i].n), cases[i].want, "case %zu", i);
    cr_expect_str_eq(ECHO(NULL), "(null)");
    cr_expect_str_eq(ECHO("x\ny"), "x\\ny");
    /* cut at ECHO_MAX characters of output, after a whole character, marked "..." */
    char longs[1000];
    for (int i = 0; i < 999; i += 2) longs[i] = '\xC3', longs[i + 1] = '\xA9';
    const char *e = ECHO_N(longs, 998);
    size_t el = strlen(e);
    cr_expect(el <= ECHO_MAX + 3 && el > ECHO_MAX - 4, "%zu", el);
    cr_expect_str_eq(e + el - 3, "...");
    cr_expect_eq((el - 3) % 2, 0, "a character split in two");
    memset(longs, '\n', sizeof longs);
    e = ECHO_N(longs, sizeof longs);
    el = strlen(e);
    cr_expect(el <= ECHO_MAX + 3 && (el - 3) % 2 == 0 && !strchr(e, '\n'), "%s", e);
    memset(longs, 'a', ECHO_MAX);
    cr_expect_eq(strlen(ECHO_N(longs, ECHO_MAX)), ECHO_MAX, "exactly ECHO_MAX is not cut");
}

/* ---- loaders ---- */

Test(dataset, txt_is_one_document_with_bom_and_crlf_normalised, .init = make_tmp, .fini = rm_tmp) {
    const char *p = WRITE("book.txt", "\xEF\xBB\xBF" "Chapter 1\r\n\r\nIt was a dark night.\r\nThe end.\r\n");
    struct dataset ds;
    char err[512];
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ds.n_docs, 1);
    cr_assert_str_eq(ds.docs[0], "Chapter 1\n\nIt was a dark night.\nThe end.");
    cr_assert_eq(ds.doc_len[0], strlen(ds.docs[0]));
    cr_assert_eq(ds.format, DATASET_TXT);
    char hex[65];
    sha256sum(p, hex);
    cr_assert_str_eq(ds.sha256, hex);
    dataset_free(&ds);
}

Test(dataset, stories_split_at_blank_lines, .init = make_tmp, .fini = rm_tmp) {
    const char *p = WRITE("s.txt", "One.\nStill one.\n\nTwo.\r\n \r\n\n\nThree.\n\n");
    char spec[600];
    snprintf(spec, sizeof spec, "%s#stories", p);
    struct dataset ds;
    char err[512];
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ds.n_docs, 3);
    cr_assert_str_eq(ds.docs[0], "One.\nStill one.");
    cr_assert_str_eq(ds.docs[1], "Two.");
    cr_assert_str_eq(ds.docs[2], "Three.");
    dataset_free(&ds);
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), 0, "%s", err);   /* without #stories: one */
    cr_assert_eq(ds.n_docs, 1);
    dataset_free(&ds);
    snprintf(spec, sizeof spec, "%s#chapters", p);
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "#stories"), "%s", err);
}

Test(dataset, folder_one_document_per_txt_file_sorted, .init = make_tmp, .fini = rm_tmp) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/books", tmpdir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    WRITE("books/b.txt", "Second book.\n\nWith two paragraphs.");
    WRITE("books/a.txt", "\xEF\xBB\xBF" "First book.\r\n");
    WRITE("books/notes.md", "not a document");
    WRITE("books/c.txt", "  \n ");   /* empty after trimming: dropped */
    struct dataset ds;
    char err[512];
    cr_assert_eq(dataset_load(dir, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ds.n_docs, 2);
    cr_assert_str_eq(ds.docs[0], "First book.");
    cr_assert_str_eq(ds.docs[1], "Second book.\n\nWith two paragraphs.");
    /* the folder hash is sha256sum's listing of its .txt files, hashed */
    char cmd[700], hex[65];
    snprintf(cmd, sizeof cmd, "cd '%s' && sha256sum a.txt b.txt c.txt | sha256sum", dir);
    FILE *p = popen(cmd, "r");
    cr_assert_eq(fscanf(p, "%64s", hex), 1);
    pclose(p);
    cr_assert_str_eq(ds.sha256, hex);
    dataset_free(&ds);
}

Test(dataset, jsonl_default_and_named_fields, .init = make_tmp, .fini = rm_tmp) {
    const char *p = WRITE("d.jsonl",
                          "{\"id\": 1, \"text\": \"plain\", \"input\": \"caf\\u00e9 \\\"quoted\\\"\\r\\nline\"}\r\n"
                          "\n"
                          "{\"meta\": {\"a\": [1, 2, {\"b\": null}], \"t\": true}, \"input\": \"\\ud83d\\ude00 x\\ty\","
                          " \"text\": \"second\"}\n");
    struct dataset ds;
    char err[512], spec[600];
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ds.n_docs, 2);
    cr_assert_str_eq(ds.docs[0], "plain");
    cr_assert_str_eq(ds.docs[1], "second");
    dataset_free(&ds);
    snprintf(spec, sizeof spec, "%s#input", p);
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ds.n_docs, 2);
    cr_assert_str_eq(ds.docs[0], "caf\xC3\xA9 \"quoted\"\nline");
    cr_assert_str_eq(ds.docs[1], "\xF0\x9F\x98\x80 x\ty");
    dataset_free(&ds);
    snprintf(spec, sizeof spec, "%s#summary", p);
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "line 1") && strstr(err, "summary"), "%s", err);
}

Test(dataset, jsonl_malformed_lines_are_errors, .init = make_tmp, .fini = rm_tmp) {
    const char *bad[] = {"{\"text\": \"x\"", "[\"text\"]", "{\"text\": \"a\\q\"}", "{\"text\" \"x\"}",
                         "{\"text\": \"\\ud800\"}", "{\"a\": [[[[", "{\"text\": \"x\"} trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[128];
        int n = snprintf(line, sizeof line, "{\"text\": \"fine\"}\n%s\n", bad[i]);
        const char *p = write_file("bad.jsonl", line, (size_t)n);
        struct dataset ds;
        char err[512] = "";
        int rc = dataset_load(p, &ds, err, sizeof err);
        if (i == 6) {
            /* text after the object is not read: the object itself is whole */
            if (rc == 0) dataset_free(&ds);
            continue;
        }
        cr_assert_eq(rc, -1, "accepted %s", bad[i]);
        cr_assert(strstr(err, "line 2"), "%s", err);
    }
}

Test(dataset, csv_column_by_header, .init = make_tmp, .fini = rm_tmp) {
    const char *p = WRITE("d.csv", "\xEF\xBB\xBF" "id,body,text\r\n"
                                   "1,\"A, with comma\",t1\r\n"
                                   "2,\"Two\r\nlines and \"\"quotes\"\"\",t2\r\n");
    struct dataset ds;
    char err[512], spec[600];
    snprintf(spec, sizeof spec, "%s#body", p);
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ds.n_docs, 2);
    cr_assert_str_eq(ds.docs[0], "A, with comma");
    cr_assert_str_eq(ds.docs[1], "Two\nlines and \"quotes\"");
    dataset_free(&ds);
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), 0, "%s", err);   /* default column "text" */
    cr_assert_str_eq(ds.docs[1], "t2");
    dataset_free(&ds);
    snprintf(spec, sizeof spec, "%s#title", p);
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "title") && strstr(err, "id, body, text"), "%s", err);
}

/* Bytes of heap in use: the sanitizer allocator's count under ASan (glibc's arena
 * statistics see none of its blocks), glibc's otherwise. A leak makes it grow. */
#if defined(__SANITIZE_ADDRESS__)
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_in_use(void) { return __sanitizer_get_current_allocated_bytes(); }
#else
static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

Test(dataset, bom_and_blank_documents_are_dropped, .init = make_tmp, .fini = rm_tmp) {
    /* A value holding only a BOM and whitespace is empty once the BOM is stripped: no document. */
    struct dataset ds;
    char err[512], spec[600];
    const char *p = WRITE("d.jsonl", "{\"text\": \"\\ufeff  \\r\\n \"}\n"
                                     "{\"text\": \"kept\"}\n"
                                     "{\"text\": \" \\ufeff\\t\"}\n"
                                     "{\"text\": \"  \\ufeffalso kept \"}\n");
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ds.n_docs, 2, "%d documents", ds.n_docs);
    cr_assert_str_eq(ds.docs[0], "kept");
    cr_assert_str_eq(ds.docs[1], "also kept");   /* a BOM after leading blanks is stripped too */
    dataset_free(&ds);
    p = WRITE("d.csv", "id,text\n1,\"\xEF\xBB\xBF \"\n2,row two\n3,\xEF\xBB\xBF\n");
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ds.n_docs, 1, "%d documents", ds.n_docs);
    cr_assert_str_eq(ds.docs[0], "row two");
    dataset_free(&ds);
    p = WRITE("s.txt", "One.\n\n\xEF\xBB\xBF \n\nTwo.\n\n\xEF\xBB\xBF\n");
    snprintf(spec, sizeof spec, "%s#stories", p);
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ds.n_docs, 2, "%d documents", ds.n_docs);
    for (int d = 0; d < ds.n_docs; d++) cr_assert(ds.doc_len[d] > 0 && ds.doc_len[d] == strlen(ds.docs[d]));
    dataset_free(&ds);
    /* nothing but BOMs and blanks: no text at all */
    p = WRITE("b.jsonl", "{\"text\": \"\\ufeff \"}\n");
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "no text"), "%s", err);
}

Test(dataset, failed_loads_leak_nothing, .init = make_tmp, .fini = rm_tmp) {
    /* Every line finds the text field first and then fails: the found value must be freed.
     * The value is long so a leak is plainly visible in the heap count. */
    char big[300];
    memset(big, 'a', 256);
    big[256] = 0;
    const char *tails[] = {",1}", ",\"b\"}", ",\"b\":}", " \"b\":1}", ",}", ",\"b\":[1,}", "", ",\"b\":1"};
    char line[512], err[512];
    struct dataset ds;
    const char *paths[sizeof tails / sizeof tails[0]];
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        char name[32];
        int n = snprintf(line, sizeof line, "{\"text\":\"%s\"%s\n", big, tails[i]);
        snprintf(name, sizeof name, "bad%zu.jsonl", i);
        paths[i] = write_file(name, line, (size_t)n);
        cr_assert_eq(dataset_load(paths[i], &ds, err, sizeof err), -1, "accepted %s", line);
        cr_assert(strstr(err, "line 1"), "%s", err);
    }
    /* CSV errors after documents were read: no such column, a short row */
    const char *csv_missing = WRITE("m.csv", "id,body\n1,x\n");
    const char *csv_short = WRITE("s.csv", "id,text\n1,first document\n2\n");
    cr_assert_eq(dataset_load(csv_short, &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "row 2"), "%s", err);
    size_t before = heap_in_use();
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++)
            cr_assert_eq(dataset_load(paths[i], &ds, err, sizeof err), -1);
        cr_assert_eq(dataset_load(csv_missing, &ds, err, sizeof err), -1);
        cr_assert_eq(dataset_load(csv_short, &ds, err, sizeof err), -1);
    }
    size_t after = heap_in_use();
    /* one 257-byte value lost per failed line would be 50 x 8 x 257 = 100 kB */
    cr_assert_lt(after > before ? after - before : 0, 4096, "heap grew by %zu bytes over 500 failed loads",
                 after - before);
}

/* Error messages that show what the user gave (a CSV header, a field, a spec, settings)
 * escape it: one line, whatever the input holds. */
Test(dataset, messages_show_input_escaped, .init = make_tmp, .fini = rm_tmp) {
    struct dataset ds;
    char err[1024], spec[600];
    const char *p = WRITE("h.csv", "\"multi\nline\",\"esc\x1b[31m\"\n1,2\n");
    snprintf(spec, sizeof spec, "%s#body", p);
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "(columns: multi\\nline, esc\\x1B[31m)") && !strchr(err, '\n') && !strchr(err, '\x1b'), "%s",
              err);
    p = WRITE("f.jsonl", "{\"text\": \"x\"}\n");
    snprintf(spec, sizeof spec, "%s#fi\teld", p);
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "field 'fi\\teld'") && !strchr(err, '\t'), "%s", err);
    cr_assert_eq(dataset_load("no\nsuch", &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "dataset 'no\\nsuch' not found") && !strchr(err, '\n'), "%s", err);
    struct settings st;
    cr_assert_eq(settings_parse("a=1,b\nc", &st, err, sizeof err), -1);
    cr_assert(strstr(err, "settings 'a=1,b\\nc': 'b\\nc' is not key=value"), "%s", err);
    cr_assert_eq(settings_parse("a=\x7f", &st, err, sizeof err), 0);
    cr_assert_eq(settings_int(&st, "a", 0, 0, 9, &(long){0}, err, sizeof err), -1);
    cr_assert(strstr(err, "a=\\x7F"), "%s", err);
}

/* Found by fuzz/fuzz_dataset: a quoted header holding a newline or other control byte
 * went into the "no column" message as it was, splitting the one-line error. The names
 * are shown escaped. */
Test(dataset, csv_missing_column_error_is_one_line, .init = make_tmp, .fini = rm_tmp) {
    const char *p = WRITE("h.csv", "id,\"multi\r\nline\tname\",x\x01y\n1,a,b\n");
    struct dataset ds;
    char err[512], spec[600];
    snprintf(spec, sizeof spec, "%s#body", p);
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "no column 'body'"), "%s", err);
    cr_assert(strstr(err, "id, multi\\nline\\tname, x\\x01y"), "%s", err);   /* CRLF was LF by then */
    for (const char *c = err; *c; c++) cr_assert((unsigned char)*c >= 0x20, "control byte in: %s", err);
}

Test(dataset, empty_and_missing_are_errors, .init = make_tmp, .fini = rm_tmp) {
    struct dataset ds;
    char err[512];
    const char *p = WRITE("empty.txt", "\xEF\xBB\xBF \r\n\r\n");
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "empty.txt") && strstr(err, "no text"), "%s", err);
    cr_assert_eq(dataset_load("/nonexistent/x.txt", &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent/x.txt") && strstr(err, "tinystories"), "%s", err);
    cr_assert_eq(dataset_load("no-such-dataset", &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "no-such-dataset") && strstr(err, "govreport"), "%s", err);
    cr_assert_eq(dataset_load("", &ds, err, sizeof err), -1);
    p = WRITE("e.jsonl", "\n\n");
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), -1);
    cr_assert(strstr(err, "no text"), "%s", err);
}

Test(dataset, named_datasets) {
    struct {
        const char *name;
        int min_docs, max_docs;
    } want[] = {{"tinystories", 1000, 100000}, {"tinystories-sampled", 1000, 100000}, {"children", 3, 3},
                {"books", 12, 12}, {"govreport", 14, 14}, {"passkey", 4, 4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct dataset ds;
        char err[512];
        cr_assert_eq(dataset_load(want[i].name, &ds, err, sizeof err), 0, "%s", err);
        cr_assert(ds.n_docs >= want[i].min_docs && ds.n_docs <= want[i].max_docs, "%s: %d documents",
                  want[i].name, ds.n_docs);
        for (int d = 0; d < ds.n_docs; d++) {
            cr_assert(ds.doc_len[d] > 0 && !strstr(ds.docs[d], "\r\n") && memcmp(ds.docs[d], "\xEF\xBB\xBF", 3) != 0,
                      "%s doc %d", want[i].name, d);
        }
        dataset_free(&ds);
    }
    /* a file under the shared datasets folder by relative name */
    struct dataset ds;
    char err[512], hex[65], path[512];
    cr_assert_eq(dataset_load("children/alice_in_wonderland.txt", &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ds.n_docs, 1);
    sha256sum(shared_path(path, sizeof path, "datasets/children/alice_in_wonderland.txt"), hex);
    cr_assert_str_eq(ds.sha256, hex);
    dataset_free(&ds);
}

/* ---- tokenized corpora ---- */

static struct model *load_model(const char *rel) {
    char path[512], err[512];
    struct model *m = model_load(shared_path(path, sizeof path, rel), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    return m;
}

Test(corpus, cache_hit_reads_without_rewriting, .init = make_tmp, .fini = rm_tmp) {
    struct model *m = load_model("models/stories260K.gguf");
    const char *p = WRITE("s.txt", "Once upon a time there was a cat.\n\nThe cat liked milk.\n\nThe end.\n");
    char spec[600], cache[400], err[512];
    snprintf(spec, sizeof spec, "%s#stories", p);
    snprintf(cache, sizeof cache, "%s/cache/sub", tmpdir);   /* created on demand */
    struct dataset ds;
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), 0, "%s", err);
    struct corpus a, b;
    cr_assert_eq(corpus_load(&ds, m, cache, &a, err, sizeof err), 0, "%s", err);
    cr_assert(!a.from_cache);
    cr_assert(a.cache_path[0]);
    cr_assert_eq(a.n_docs, 3);
    /* ids equal each document tokenized on its own, without BOS */
    int64_t off = 0;
    for (int d = 0; d < 3; d++) {
        int32_t *ids;
        size_t n;
        cr_assert_eq(tokenizer_encode(m->tok, ds.docs[d], ds.doc_len[d], false, &ids, &n), 0);
        cr_assert_eq(a.doc_start[d], off);
        cr_assert_eq(corpus_doc_len(&a, d), (int64_t)n);
        cr_assert_eq(memcmp(a.ids + off, ids, n * sizeof *ids), 0);
        off += (int64_t)n;
        free(ids);
    }
    cr_assert_eq(a.n_ids, off);
    struct stat st1, st2;
    cr_assert_eq(stat(a.cache_path, &st1), 0);
    sleep(1);   /* so a rewrite would show in the mtime */
    cr_assert_eq(corpus_load(&ds, m, cache, &b, err, sizeof err), 0, "%s", err);
    cr_assert(b.from_cache);
    cr_assert_eq(stat(b.cache_path, &st2), 0);
    cr_assert_eq(st1.st_mtime, st2.st_mtime);
    cr_assert_eq(st1.st_ino, st2.st_ino);
    cr_assert_eq(b.n_ids, a.n_ids);
    cr_assert_eq(memcmp(a.ids, b.ids, (size_t)a.n_ids * sizeof *a.ids), 0);
    cr_assert_eq(memcmp(a.doc_start, b.doc_start, 4 * sizeof *a.doc_start), 0);
    corpus_free(&b);

    /* a truncated cache file is not trusted: tokenized again and replaced */
    cr_assert_eq(truncate(a.cache_path, 40), 0);
    cr_assert_eq(corpus_load(&ds, m, cache, &b, err, sizeof err), 0, "%s", err);
    cr_assert(!b.from_cache);
    cr_assert_eq(memcmp(a.ids, b.ids, (size_t)a.n_ids * sizeof *a.ids), 0);
    corpus_free(&b);
    cr_assert_eq(corpus_load(&ds, m, cache, &b, err, sizeof err), 0, "%s", err);
    cr_assert(b.from_cache);
    corpus_free(&b);

    /* the same text split differently is another cache entry */
    struct dataset whole;
    cr_assert_eq(dataset_load(p, &whole, err, sizeof err), 0, "%s", err);
    cr_assert_eq(corpus_load(&whole, m, cache, &b, err, sizeof err), 0, "%s", err);
    cr_assert(!b.from_cache);
    cr_assert_eq(b.n_docs, 1);
    cr_assert_str_neq(b.cache_path, a.cache_path);
    corpus_free(&b);
    dataset_free(&whole);

    /* no temporary files are left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp", cache);
    FILE *pp = popen(cmd, "r");
    int tmps = -1;
    cr_assert_eq(fscanf(pp, "%d", &tmps), 1);
    pclose(pp);
    cr_assert_eq(tmps, 0);

    /* without a cache folder nothing is written */
    cr_assert_eq(corpus_load(&ds, m, NULL, &b, err, sizeof err), 0, "%s", err);
    cr_assert(!b.from_cache && !b.cache_path[0]);
    corpus_free(&b);
    corpus_free(&a);
    dataset_free(&ds);
    model_free(m);
}

/* Overwrites n bytes of a file at offset `at` (at its end: appends them). */
static void patch_file(const char *path, long at, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, at, SEEK_SET), 0);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* The cache is read whole and checked before anything in it is used: an id outside the
 * vocabulary, offsets that go down, a byte too many or too few, or another key each make
 * the corpus tokenized again (and equal to the fresh one), never read as it is. */
Test(corpus, damaged_cache_files_are_not_trusted, .init = make_tmp, .fini = rm_tmp) {
    struct model *m = load_model("models/stories260K.gguf");
    const char *p = WRITE("s.txt", "Once upon a time there was a cat.\n\nThe cat liked milk.\n\nThe end.\n");
    char spec[600], cache[400], err[512];
    snprintf(spec, sizeof spec, "%s#stories", p);
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    struct dataset ds;
    cr_assert_eq(dataset_load(spec, &ds, err, sizeof err), 0, "%s", err);
    struct corpus fresh, c;
    cr_assert_eq(corpus_load(&ds, m, cache, &fresh, err, sizeof err), 0, "%s", err);
    char path[1100];
    snprintf(path, sizeof path, "%s", fresh.cache_path);
    const long header = 8 + 64 + 16, starts = header, ids = header + 8 * (fresh.n_docs + 1);
    int32_t bad_id = tokenizer_n_vocab(m->tok);
    int64_t bad_start = fresh.n_ids + 1, zero = 0;
    const struct {
        const char *what;
        long at;
        const void *bytes;
        size_t n;
        int extra;   /* +1: a byte appended; -1: the last byte cut */
    } damage[] = {
        {"an id outside the vocabulary", ids + 4, &bad_id, sizeof bad_id, 0},
        {"offsets going down", starts + 8, &bad_start, sizeof bad_start, 0},
        {"a first offset not 0", starts, &bad_start, sizeof bad_start, 0},
        {"a document count of 0", 72, &zero, sizeof zero, 0},
        {"another key", 8, "0", 1, 0},
        {"a byte too many", 0, NULL, 0, +1},
        {"a byte too few", 0, NULL, 0, -1},
    };
    for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
        /* a good cache first (the previous case's load wrote it anew) */
        cr_assert_eq(corpus_load(&ds, m, cache, &c, err, sizeof err), 0, "%s", err);
        cr_assert(c.from_cache, "%s: the cache was not rewritten", damage[i].what);
        corpus_free(&c);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        if (damage[i].n) patch_file(path, damage[i].at, damage[i].bytes, damage[i].n);
        if (damage[i].extra > 0) patch_file(path, (long)st.st_size, "x", 1);
        if (damage[i].extra < 0) cr_assert_eq(truncate(path, st.st_size - 1), 0);
        cr_assert_eq(corpus_load(&ds, m, cache, &c, err, sizeof err), 0, "%s", err);
        cr_assert(!c.from_cache, "%s: trusted", damage[i].what);
        cr_assert_eq(c.n_ids, fresh.n_ids);
        cr_assert_eq(memcmp(c.ids, fresh.ids, (size_t)fresh.n_ids * sizeof *c.ids), 0);
        corpus_free(&c);
    }
    corpus_free(&fresh);
    dataset_free(&ds);
    model_free(m);
}

Test(corpus, empty_documents_are_safe, .init = make_tmp, .fini = rm_tmp) {
    /* dataset_load never keeps an empty document, but a dataset built another way may
     * hold some: they add no ids and leave the offsets consistent (first, middle, last). */
    struct model *m = load_model("models/stories260K.gguf");
    char e0[] = "", e1[] = "", e2[] = "", text[] = "Once upon a time there was a cat.";
    char *docs[] = {e0, text, e1, e2};
    size_t lens[] = {0, strlen(text), 0, 0};
    struct dataset ds = {.spec = "hand-made", .path = "memory", .format = DATASET_STORIES, .n_docs = 4,
                         .docs_cap = 4, .docs = docs, .doc_len = lens};
    snprintf(ds.sha256, sizeof ds.sha256, "%064d", 0);
    int32_t *ids;
    size_t n;
    cr_assert_eq(tokenizer_encode(m->tok, text, strlen(text), false, &ids, &n), 0);
    char cache[400], err[512];
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    for (int pass = 0; pass < 2; pass++) {   /* tokenized, then read back from the cache */
        struct corpus c;
        cr_assert_eq(corpus_load(&ds, m, cache, &c, err, sizeof err), 0, "%s", err);
        cr_assert_eq(c.from_cache, pass == 1);
        cr_assert_eq(c.n_docs, 4);
        cr_assert_eq(c.n_ids, (int64_t)n);
        int64_t want_start[] = {0, 0, (int64_t)n, (int64_t)n, (int64_t)n};
        for (int d = 0; d <= 4; d++) cr_assert_eq(c.doc_start[d], want_start[d], "doc_start[%d]", d);
        cr_assert_eq(memcmp(c.ids, ids, n * sizeof *ids), 0);
        corpus_free(&c);
    }
    /* only empty documents: no ids at all, still a valid corpus */
    ds.docs = (char *[]){e0, e1};
    ds.doc_len = (size_t[]){0, 0};
    ds.n_docs = ds.docs_cap = 2;
    struct corpus c;
    cr_assert_eq(corpus_load(&ds, m, NULL, &c, err, sizeof err), 0, "%s", err);
    cr_assert(c.n_ids == 0 && c.doc_start[0] == 0 && c.doc_start[2] == 0 && c.ids);
    cr_assert_eq(corpus_require(&c, &ds, 1, "ppl", err, sizeof err), -1);
    corpus_free(&c);
    free(ids);
    model_free(m);
}

/* Found by fuzz/fuzz_dataset: a first document with no tokens left the id array NULL and
 * the next copy did pointer arithmetic on it (undefined behaviour; fails under
 * `make check-asan`, where UBSan stops on it). */
Test(corpus, document_without_tokens_first, .init = make_tmp, .fini = rm_tmp) {
    struct model *m = load_model("models/stories260K.gguf");
    char empty[] = "", story[] = "Once upon a time.";
    char *docs[] = {empty, story};
    size_t lens[] = {0, sizeof story - 1};
    struct dataset ds = {.spec = "hand-made", .format = DATASET_TXT, .n_docs = 2, .docs_cap = 2, .docs = docs,
                         .doc_len = lens};
    struct corpus c;
    char err[512];
    cr_assert_eq(corpus_load(&ds, m, NULL, &c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.n_docs, 2);
    cr_assert_eq(corpus_doc_len(&c, 0), 0);
    int32_t *ids;
    size_t n;
    cr_assert_eq(tokenizer_encode(m->tok, story, sizeof story - 1, false, &ids, &n), 0);
    cr_assert_eq(corpus_doc_len(&c, 1), (int64_t)n);
    cr_assert_arr_eq(c.ids, ids, n * sizeof *ids);
    free(ids);
    corpus_free(&c);
    model_free(m);
}

Test(corpus, tokenizer_hash_tells_vocabularies_apart, .init = make_tmp, .fini = rm_tmp) {
    struct model *m1 = load_model("models/stories260K.gguf");
    struct model *m1b = load_model("models/stories260K.gguf");
    struct model *m2 = load_model("models/stories3M.gguf");
    char h1[65], h1b[65], h2[65], err[512];
    cr_assert_eq(dataset_tokenizer_hash(m1, h1, err, sizeof err), 0);
    cr_assert_eq(dataset_tokenizer_hash(m1b, h1b, err, sizeof err), 0);
    cr_assert_eq(dataset_tokenizer_hash(m2, h2, err, sizeof err), 0);
    cr_assert_str_eq(h1, h1b);
    cr_assert_str_neq(h1, h2);
    /* so one cache folder holds both, and neither is served for the other */
    const char *p = WRITE("t.txt", "A small text about a dog and a ball.");
    char cache[400];
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    struct dataset ds;
    struct corpus a, b;
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(corpus_load(&ds, m1, cache, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(corpus_load(&ds, m2, cache, &b, err, sizeof err), 0, "%s", err);
    cr_assert(!a.from_cache && !b.from_cache);
    cr_assert_str_neq(a.cache_path, b.cache_path);
    corpus_free(&a);
    corpus_free(&b);
    dataset_free(&ds);
    model_free(m1);
    model_free(m1b);
    model_free(m2);
}

Test(corpus, too_short_names_dataset_and_counts, .init = make_tmp, .fini = rm_tmp) {
    struct model *m = load_model("models/stories260K.gguf");
    const char *p = WRITE("short.txt", "Tiny.");
    struct dataset ds;
    struct corpus c;
    char err[512];
    cr_assert_eq(dataset_load(p, &ds, err, sizeof err), 0, "%s", err);
    cr_assert_eq(corpus_load(&ds, m, NULL, &c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(corpus_require(&c, &ds, c.n_ids, "x", err, sizeof err), 0);
    cr_assert_eq(corpus_require(&c, &ds, 4096, "ppl at length 4096", err, sizeof err), -1);
    char want[64];
    snprintf(want, sizeof want, "has %lld tokens", (long long)c.n_ids);
    cr_assert(strstr(err, "short.txt") && strstr(err, want) && strstr(err, "needs 4096"), "%s", err);
    corpus_free(&c);
    dataset_free(&ds);
    model_free(m);
}

Test(dataset, repo_files_found) {
    char path[1024], err[512];
    cr_assert_eq(dataset_repo_file("passkey/yarn.txt", path, sizeof path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(dataset_repo_file("passkey/none.txt", path, sizeof path, err, sizeof err), -1);
    cr_assert(strstr(err, "passkey/none.txt"), "%s", err);
}
