/* Output files that are written whole or not at all, and that never land on the
 * results file they were made from.
 *
 * Every command that writes a file (the results store, export's CSV, plot's data files,
 * notes and figures) writes a temporary file in the destination's directory, syncs it
 * and renames it over the destination, so a kill or a full disk leaves the previous
 * file or the new one, never a truncated one. Paths are resolved first: writing through
 * a symbolic link replaces the file the link points to and leaves the link a link. */
#ifndef CTX_ATOMIC_FILE_H
#define CTX_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

/* The file a write to `path` really lands on, as an absolute path without symbolic
 * links: realpath() of an existing file; for a symbolic link whose target does not
 * exist yet, that target (followed, relative to the link's directory); for a file that
 * does not exist yet, the real path of its directory plus its name. malloc'd, or NULL
 * with "PATH: reason" in err. */
char *path_resolve(const char *path, char *err, size_t errlen);

/* True when the two paths name one file: the same device and inode when both exist
 * (hard links included), else the same resolved path. */
bool same_file(const char *a, const char *b);

/* 0 when writing `output` cannot touch the results file `input`; else -1 with a
 * one-line reason. `what` names the output in the message ("output", "output directory"). */
int check_not_input(const char *output, const char *what, const char *input, char *err, size_t errlen);
/* The same for an open descriptor (a command's standard output redirected to the input). */
int check_fd_not_input(int fd, const char *what, const char *input, char *err, size_t errlen);

/* fsync of a file or directory by path, so a rename survives a crash of the machine
 * too (a killed process needs only the rename). */
int sync_path(const char *path, bool dir);

/* Syncs the finished temporary file `tmp`, renames it over `path` (same directory) and
 * syncs the directory. -1 with a one-line reason. */
int atomic_replace(const char *tmp, const char *path, char *err, size_t errlen);

/* Writes the whole buffer to fd (retrying short writes and EINTR). 0, or -1 with errno. */
int write_all(int fd, const void *buf, size_t n);

/* Gives the file open on fd the mode bits of `like` (the file it will replace) and, where
 * we may (root), its owner. 0, or -1 with errno when the mode cannot be set. */
int match_mode_owner(int fd, const struct stat *like);

struct atomic_file {
    char *path;       /* the resolved destination */
    char *tmp_path;   /* the temporary file beside it; NULL when written in place */
    FILE *f;          /* open for writing on tmp_path (or path); may be closed by the caller */
};

/* Opens a temporary file beside `path` for writing. Refuses (-1, one-line reason) when
 * `path` is the results file `input` (NULL: no input), a directory, or an existing file
 * that is read-only. The new file gets the mode of the file it replaces (a new one:
 * 0666 less the umask). A device or pipe (/dev/null, /dev/stdout) is written in place. */
int atomic_file_open(struct atomic_file *af, const char *path, const char *input, char *err, size_t errlen);
/* The path to write to when another program writes the file (af->f closed first). */
const char *atomic_file_write_path(const struct atomic_file *af);
/* Closes the stream if still open, syncs, renames over the destination. On failure the
 * temporary file is removed and the destination is untouched. Frees af either way. */
int atomic_file_commit(struct atomic_file *af, char *err, size_t errlen);
/* Closes and removes the temporary file; the destination is untouched. Frees af. */
void atomic_file_discard(struct atomic_file *af);

#endif
