/* Shared by the libFuzzer harnesses (fuzz/README.md): loading the model, and the
 * checks every harness makes on the library's answers. A failed check calls abort(),
 * which libFuzzer reports as a crash with the input that caused it. */
#ifndef CTX_FUZZ_UTIL_H
#define CTX_FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/common_interface_defs.h>

#include "testutil.h"   /* shared_path: ../shared as the tests find it */

/* Start-up failures (a missing vocabulary file) are not findings: say so and stop. */
static inline void fuzz_setup_failed(const char *what, const char *why) {
    fprintf(stderr, "fuzz: cannot set up: %s: %s\n", what, why);
    exit(2);
}

#include "model.h"

/* The model a harness tokenizes with (stories260K from ../shared), loaded once at start-up. */
static inline struct model *fuzz_load_stories260k(void) {
    char path[1024], err[512];
    struct model *m = model_load(shared_path(path, sizeof path, "models/stories260K.gguf"), err, sizeof err);
    if (!m) fuzz_setup_failed(path, err);
    return m;
}

/* A failed property: report it and abort, so libFuzzer saves the input. The message
 * goes where sanitizer reports go, which stays open when fuzz/run.sh has libFuzzer
 * close the harness's own stderr (-close_fd_mask=2, to keep the library's messages out
 * of the logs). */
#define FUZZ_CHECK(cond, ...)                                                        \
    do {                                                                             \
        if (!(cond)) {                                                               \
            char fuzz_msg_[1024];                                                    \
            int fuzz_n_ = snprintf(fuzz_msg_, sizeof fuzz_msg_, "fuzz: check failed: %s: ", #cond); \
            if (fuzz_n_ > 0 && (size_t)fuzz_n_ < sizeof fuzz_msg_)                   \
                snprintf(fuzz_msg_ + fuzz_n_, sizeof fuzz_msg_ - (size_t)fuzz_n_, __VA_ARGS__); \
            __sanitizer_report_error_summary(fuzz_msg_);                             \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* The project's rule for errors: a reason was written, and it is one line. */
static inline void fuzz_check_error(const char *err) {
    FUZZ_CHECK(err[0] != '\0', "an error without a reason");
    FUZZ_CHECK(strchr(err, '\n') == NULL, "error message is not one line: %s", err);
}

/* A NUL-terminated heap copy of the input, exactly as long as it needs to be, so an
 * overread past the text's end is a heap overflow ASan sees. */
static inline char *fuzz_cstr(const unsigned char *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

#endif
