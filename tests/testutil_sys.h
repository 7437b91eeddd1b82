/* Helpers for the tests that touch the file system or run the built program: a
 * temporary directory and its removal, a file's text, and `ctxbench ARGS` started as
 * a child with its stderr in a file. Criterion asserts fail the calling test. */
#ifndef CTX_TESTUTIL_SYS_H
#define CTX_TESTUTIL_SYS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "input.h"

/* A fresh directory /tmp/ctxbench_TAG_XXXXXX, its path in buf. */
static inline void test_temp_dir(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/ctxbench_%s_XXXXXX", tag);
    cr_assert_not_null(mkdtemp(buf));
}

static inline void test_rm_rf(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* The whole text of a file, malloc'd. */
static inline char *test_read_text(const char *path) {
    size_t len;
    char err[256];
    char *t = input_read_file(path, &len, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    return t;
}

/* The ctxbench binary under test: $CTXBENCH_BIN (set by make test), else build/ctxbench. */
static inline const char *ctxbench_bin(void) {
    const char *bin = getenv("CTXBENCH_BIN");
    if (!bin || !*bin) bin = "build/ctxbench";
    cr_assert_eq(access(bin, X_OK), 0, "ctxbench binary %s (set CTXBENCH_BIN)", bin);
    return bin;
}

/* Runs a shell command line, its stdout (and whatever it redirects there) into out.
 * Returns the exit status, or -1 when the shell did not exit normally. */
static inline int test_shell_output(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs `ctxbench ARGS` through the shell (ARGS is shell text), stdout and stderr into
 * out. Returns the exit status, or -1 when the program did not exit normally (a crash). */
static inline int ctxbench_run(const char *args, char *out, size_t cap) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", ctxbench_bin(), args);
    return test_shell_output(cmd, out, cap);
}

/* Starts `ctxbench ARGS` ($CTXBENCH_BIN, set by make test; else build/ctxbench) with
 * args NULL-terminated (at most 30), stderr into err_path and, when quiet, stdout into
 * /dev/null, under a file size limit of max_file_bytes (ulimit -f; RLIM_INFINITY: none).
 * Returns the child's pid; the caller waits for it. */
static inline pid_t ctxbench_spawn_limited(const char *const *args, const char *err_path, bool quiet,
                                           rlim_t max_file_bytes) {
    const char *bin = ctxbench_bin();
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)bin;
    for (; args[n - 1] && n < 31; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = quiet ? open("/dev/null", O_WRONLY) : -1;
        if (fd < 0 || (quiet && nul < 0)) _exit(127);
        dup2(fd, 2);
        if (quiet) dup2(nul, 1);
        struct rlimit rl = {max_file_bytes, max_file_bytes};
        if (max_file_bytes != RLIM_INFINITY && setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(126);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

static inline pid_t ctxbench_spawn(const char *const *args, const char *err_path, bool quiet) {
    return ctxbench_spawn_limited(args, err_path, quiet, RLIM_INFINITY);
}

/* The exit status of a child, or 1000 + the signal that ended it. */
static inline int test_wait_status(pid_t pid) {
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : -1;
}

/* How many entries of dir have a name ending in ".tmp" (temporary files left behind). */
static inline int test_count_tmp(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        n += len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0;
    }
    closedir(d);
    return n;
}

/* The bytes of a file, malloc'd, with their count in *len. */
static inline char *test_read_bytes(const char *path, size_t *len) {
    char err[256];
    char *t = input_read_file(path, len, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    return t;
}

#endif
