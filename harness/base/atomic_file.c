/* Whole-or-nothing output files and the "is this the input?" check (atomic_file.h). */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The directory part of a path ("." when there is none) and its last component. */
static char *dir_part(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    while (slash > path && slash[-1] == '/') slash--;
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static const char *base_part(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static char *join(const char *dir, const char *name) {
    size_t nd = strlen(dir), nn = strlen(name);
    bool slash = nd == 0 || dir[nd - 1] != '/';
    char *s = malloc(nd + slash + nn + 1);
    if (!s) return NULL;
    memcpy(s, dir, nd);
    if (slash) s[nd] = '/';
    memcpy(s + nd + slash, name, nn + 1);
    return s;
}

char *path_resolve(const char *path, char *err, size_t errlen) {
    if (!path || !*path) {
        snprintf(err, errlen, "empty file name");
        return NULL;
    }
    char *cur = strdup(path);
    /* each round: the file itself, a dangling link to follow, or a name to create */
    for (int hops = 0; cur && hops <= 40; hops++) {
        char *real = realpath(cur, NULL);
        if (real) {
            free(cur);
            return real;
        }
        int e = errno;
        struct stat ls;
        if (e == ENOENT && lstat(cur, &ls) == 0 && S_ISLNK(ls.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(cur, target, sizeof target - 1);
            if (n <= 0) {
                snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "empty symbolic link");
                free(cur);
                return NULL;
            }
            target[n] = 0;
            char *dir = target[0] == '/' ? NULL : dir_part(cur);
            char *next = target[0] == '/' ? strdup(target) : dir ? join(dir, target) : NULL;
            free(dir);
            free(cur);
            cur = next;
            continue;
        }
        if (e != ENOENT) {
            snprintf(err, errlen, "%s: %s", path, strerror(e));
            free(cur);
            return NULL;
        }
        const char *base = base_part(cur);
        if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(ENOENT));
            free(cur);
            return NULL;
        }
        char *dir = dir_part(cur), *rdir = dir ? realpath(dir, NULL) : NULL;
        e = errno;
        char *out = rdir ? join(rdir, base) : NULL;
        if (dir && !rdir) snprintf(err, errlen, "%s: %s", path, strerror(e));
        else if (!out) snprintf(err, errlen, "out of memory");
        free(dir);
        free(rdir);
        free(cur);
        return out;
    }
    if (cur) snprintf(err, errlen, "%s: %s", path, strerror(ELOOP));
    else snprintf(err, errlen, "out of memory");
    free(cur);
    return NULL;
}

bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char e[8];
    char *ra = path_resolve(a, e, sizeof e), *rb = path_resolve(b, e, sizeof e);
    bool same = ra && rb && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

int check_not_input(const char *output, const char *what, const char *input, char *err, size_t errlen) {
    if (!input || !same_file(output, input)) return 0;
    snprintf(err, errlen, "%s %s is the results file %s itself; writing it would destroy the results (choose another path)",
             what, output, input);
    return -1;
}

int check_fd_not_input(int fd, const char *what, const char *input, char *err, size_t errlen) {
    struct stat sf, si;
    if (!input || fstat(fd, &sf) != 0 || stat(input, &si) != 0 || !S_ISREG(sf.st_mode) || sf.st_dev != si.st_dev ||
        sf.st_ino != si.st_ino)
        return 0;
    snprintf(err, errlen, "%s is the results file %s itself; redirect it to another file", what, input);
    return -1;
}

int sync_path(const char *path, bool dir) {
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int atomic_replace(const char *tmp, const char *path, char *err, size_t errlen) {
    if (sync_path(tmp, false) != 0) {
        snprintf(err, errlen, "could not write %s: %s", path, strerror(errno));
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "could not replace %s: %s", path, strerror(errno));
        return -1;
    }
    char *dir = dir_part(path);
    if (dir) sync_path(dir, true);   /* best effort: some file systems cannot sync a directory */
    free(dir);
    return 0;
}

int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) {
            errno = EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* A name for the temporary file beside `path` that does not exist yet, created with
 * O_EXCL so two writers never share one. The random part comes from the kernel. */
static int open_temp(const char *path, char **tmp_out) {
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = strlen(path);
    char *tmp = malloc(n + 12);
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    for (int tries = 0; tries < 100; tries++) {
        unsigned char r[6];
        if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            unsigned long v = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16) ^ (unsigned long)tries * 7919u;
            for (int i = 0; i < 6; i++, v /= 36) r[i] = (unsigned char)(v % 36);
        }
        char suffix[8];
        for (int i = 0; i < 6; i++) suffix[i] = digits[r[i] % 36];
        suffix[6] = 0;
        snprintf(tmp, n + 12, "%s.%s.tmp", path, suffix);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *tmp_out = tmp;
            return fd;
        }
        if (errno != EEXIST) break;
    }
    int e = errno;
    free(tmp);
    errno = e;
    return -1;
}

int match_mode_owner(int fd, const struct stat *like) {
    if ((like->st_uid != geteuid() || like->st_gid != getegid()) && fchown(fd, like->st_uid, like->st_gid) != 0) {
        /* only root can give a file away: the file stays ours */
    }
    return fchmod(fd, like->st_mode & 07777);
}

int atomic_file_open(struct atomic_file *af, const char *path, const char *input, char *err, size_t errlen) {
    memset(af, 0, sizeof *af);
    if (check_not_input(path, "output", input, err, errlen) != 0) return -1;
    char why[1024];
    af->path = path_resolve(path, why, sizeof why);
    if (!af->path) {
        snprintf(err, errlen, "cannot write %s", why);
        return -1;
    }
    struct stat sb;
    bool exists = stat(af->path, &sb) == 0;
    if (exists && S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "cannot write %s: it is a directory", path);
        goto fail;
    }
    if (exists && !S_ISREG(sb.st_mode)) {   /* a device or pipe: nothing to replace */
        af->f = fopen(af->path, "w");
        if (!af->f) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            goto fail;
        }
        return 0;
    }
    /* root may write anything: the mode bits say whether the file is meant to change */
    if (exists && ((sb.st_mode & 0222) == 0 || access(af->path, W_OK) != 0)) {
        snprintf(err, errlen, "cannot write %s: the file is read-only (mode %04o); remove it or make it writable", path,
                 (unsigned)(sb.st_mode & 07777));
        goto fail;
    }
    int fd = open_temp(af->path, &af->tmp_path);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto fail;
    }
    if (exists && match_mode_owner(fd, &sb) != 0) {   /* the replacement looks like the file it replaces */
        snprintf(err, errlen, "cannot write %s: setting its mode: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }
    af->f = fdopen(fd, "w");
    if (!af->f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }
    return 0;
fail:
    atomic_file_discard(af);
    return -1;
}

const char *atomic_file_write_path(const struct atomic_file *af) { return af->tmp_path ? af->tmp_path : af->path; }

int atomic_file_commit(struct atomic_file *af, char *err, size_t errlen) {
    int rc = 0;
    if (af->f) {
        errno = 0;
        bool bad = fflush(af->f) != 0 || ferror(af->f);
        int e = errno;
        if (fclose(af->f) != 0 && !bad) {
            bad = true;
            e = errno;
        }
        af->f = NULL;
        if (bad) {
            snprintf(err, errlen, "error writing %s: %s", af->path, e ? strerror(e) : "write error");
            rc = -1;
        }
    }
    if (rc == 0 && af->tmp_path) {
        if (atomic_replace(af->tmp_path, af->path, err, errlen) != 0) rc = -1;
        else {
            free(af->tmp_path);   /* renamed: nothing left to remove */
            af->tmp_path = NULL;
        }
    }
    atomic_file_discard(af);
    return rc;
}

void atomic_file_discard(struct atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->tmp_path);
    free(af->path);
    memset(af, 0, sizeof *af);
}
