/* A fixed pool of pthreads that runs "for task in 0..n_tasks" loops. The caller's
 * thread takes part, so a pool of 1 runs everything inline. */
#ifndef CTX_THREADPOOL_H
#define CTX_THREADPOOL_H

#include <stddef.h>

typedef void (*threadpool_fn)(void *ctx, int task, int thread);

struct threadpool;

/* A pool of n_threads (the caller counts as one). NULL + a one-line reason in err when
 * the count is out of range, memory runs out, or a worker thread cannot be created
 * ("cannot create worker thread 3 of 8: Resource temporarily unavailable"). */
struct threadpool *threadpool_create(int n_threads, char *err, size_t errlen);
void threadpool_free(struct threadpool *tp);
int threadpool_size(const struct threadpool *tp);
/* Runs fn(ctx, task, thread) for every task in [0, n_tasks), tasks handed out
 * dynamically; returns when all are done. `thread` is in [0, size). */
void threadpool_run(struct threadpool *tp, int n_tasks, threadpool_fn fn, void *ctx);

#endif
