/* A persistent pthread pool for "for task in 0..n_tasks" loops.
 *
 * The engine calls threadpool_run thousands of times a second (once per matmul,
 * per layer, per chunk), so workers are created once and parked between runs.
 * A run is announced by bumping a generation counter; workers spin on it for a
 * short while (runs usually follow each other within microseconds) and then
 * sleep on a condition variable so an idle pool costs no CPU. Tasks are handed
 * out through an atomic counter, so uneven tasks balance themselves. The calling
 * thread works too, as thread 0. */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* How a waiting thread waits: FAST_POLLS tight polls (bridges the microsecond
 * gap between consecutive runs), then polls that yield the CPU every YIELD_EVERY
 * (so that when there are more threads than cores the thread we wait for gets to
 * run), and after SPIN_POLLS in all it sleeps on a condition variable (an idle
 * pool burns about a millisecond, then nothing). Measured on a 2-vCPU KVM guest:
 * ~1 us per run at 2 threads; the x86 PAUSE instruction in the poll loop made
 * runs slower and erratic there (pause-loop exits), so the loop does not use it. */
#define FAST_POLLS 1000
#define YIELD_EVERY 4
#define SPIN_POLLS 5000
#define MAX_THREADS 1024

struct threadpool {
    int n_threads;            /* including the caller */
    pthread_t *workers;       /* n_threads - 1 of them */
    int n_started;            /* workers actually running (to join) */
    int has_sync;             /* lock and condition variables initialised */

    pthread_mutex_t lock;
    pthread_cond_t wake;      /* a new run (or shutdown) was announced */
    pthread_cond_t done;      /* the last worker finished the current run */

    /* The current run. Written by the caller before the generation bump and
     * read by workers after they see it; untouched until every worker is done. */
    threadpool_fn fn;
    void *ctx;
    int n_tasks;

    atomic_uint generation;    /* bumped once per run */
    atomic_int next_task;     /* next task index to hand out */
    atomic_int busy_workers;  /* workers that have not finished the current run */
    atomic_int stop;
};

struct worker_arg {
    struct threadpool *tp;
    int thread;
};

/* One step of the i-th poll of a wait loop. */
static inline void poll_pause(int i) {
    if (i >= FAST_POLLS && i % YIELD_EVERY == YIELD_EVERY - 1) sched_yield();
}

/* Takes tasks until none are left. */
static void run_tasks(struct threadpool *tp, int thread) {
    threadpool_fn fn = tp->fn;
    void *ctx = tp->ctx;
    int n = tp->n_tasks;
    for (;;) {
        int t = atomic_fetch_add_explicit(&tp->next_task, 1, memory_order_relaxed);
        if (t >= n) break;
        fn(ctx, t, thread);
    }
}

static void *worker_main(void *p) {
    struct worker_arg *arg = p;
    struct threadpool *tp = arg->tp;
    int thread = arg->thread;
    free(arg);

    unsigned seen = 0;   /* last generation this worker ran */
    for (;;) {
        /* Wait for a new generation: spin first, then sleep. */
        unsigned gen = atomic_load_explicit(&tp->generation, memory_order_acquire);
        for (int i = 0; i < SPIN_POLLS && gen == seen && !atomic_load(&tp->stop); i++) {
            poll_pause(i);
            gen = atomic_load_explicit(&tp->generation, memory_order_acquire);
        }
        if (gen == seen) {
            pthread_mutex_lock(&tp->lock);
            while ((gen = atomic_load(&tp->generation)) == seen && !atomic_load(&tp->stop))
                pthread_cond_wait(&tp->wake, &tp->lock);
            pthread_mutex_unlock(&tp->lock);
        }
        if (atomic_load(&tp->stop)) break;
        seen = gen;

        run_tasks(tp, thread);

        if (atomic_fetch_sub_explicit(&tp->busy_workers, 1, memory_order_acq_rel) == 1) {
            /* Last one out: the caller may be asleep waiting for us. Taking the
             * lock orders this signal after its check of busy_workers. */
            pthread_mutex_lock(&tp->lock);
            pthread_cond_signal(&tp->done);
            pthread_mutex_unlock(&tp->lock);
        }
    }
    return NULL;
}

struct threadpool *threadpool_create(int n_threads, char *err, size_t errlen) {
    if (n_threads < 1 || n_threads > MAX_THREADS) {
        snprintf(err, errlen, "thread count %d is out of range [1, %d]", n_threads, MAX_THREADS);
        return NULL;
    }
    struct threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) {
        snprintf(err, errlen, "out of memory for a pool of %d threads", n_threads);
        return NULL;
    }
    tp->n_threads = n_threads;
    atomic_init(&tp->generation, 0);
    atomic_init(&tp->next_task, 0);
    atomic_init(&tp->busy_workers, 0);
    atomic_init(&tp->stop, 0);
    if (n_threads == 1) return tp;   /* everything runs inline */

    pthread_mutex_init(&tp->lock, NULL);
    pthread_cond_init(&tp->wake, NULL);
    pthread_cond_init(&tp->done, NULL);
    tp->has_sync = 1;
    tp->workers = calloc((size_t)(n_threads - 1), sizeof *tp->workers);
    if (!tp->workers) {
        snprintf(err, errlen, "out of memory for a pool of %d threads", n_threads);
        threadpool_free(tp);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *arg = malloc(sizeof *arg);
        if (!arg) {
            snprintf(err, errlen, "out of memory starting worker thread %d of %d", i, n_threads);
            threadpool_free(tp);
            return NULL;
        }
        *arg = (struct worker_arg){ tp, i };
        int rc = pthread_create(&tp->workers[i - 1], NULL, worker_main, arg);
        if (rc != 0) {
            /* EAGAIN here is a limit on threads (RLIMIT_NPROC, threads-max, cgroup pids),
             * not memory: say which, so the user lowers -t or raises the limit. */
            free(arg);
            snprintf(err, errlen, "cannot create worker thread %d of %d: %s", i, n_threads, strerror(rc));
            threadpool_free(tp);
            return NULL;
        }
        tp->n_started = i;
    }
    return tp;
}

void threadpool_free(struct threadpool *tp) {
    if (!tp) return;
    if (tp->has_sync) {
        pthread_mutex_lock(&tp->lock);
        atomic_store(&tp->stop, 1);
        pthread_cond_broadcast(&tp->wake);
        pthread_mutex_unlock(&tp->lock);
        for (int i = 0; i < tp->n_started; i++) pthread_join(tp->workers[i], NULL);
        free(tp->workers);
        pthread_cond_destroy(&tp->done);
        pthread_cond_destroy(&tp->wake);
        pthread_mutex_destroy(&tp->lock);
    }
    free(tp);
}

int threadpool_size(const struct threadpool *tp) {
    return tp ? tp->n_threads : 1;
}

void threadpool_run(struct threadpool *tp, int n_tasks, threadpool_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    /* No pool, one thread, or a single task: no one to wake. */
    if (!tp || tp->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }

    pthread_mutex_lock(&tp->lock);
    tp->fn = fn;
    tp->ctx = ctx;
    tp->n_tasks = n_tasks;
    atomic_store_explicit(&tp->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&tp->busy_workers, tp->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tp->generation, 1, memory_order_release);
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->lock);

    run_tasks(tp, 0);

    /* Every worker must finish (and stop reading fn/ctx) before we return. */
    for (int i = 0; i < SPIN_POLLS; i++) {
        if (atomic_load_explicit(&tp->busy_workers, memory_order_acquire) == 0) return;
        poll_pause(i);
    }
    pthread_mutex_lock(&tp->lock);
    while (atomic_load_explicit(&tp->busy_workers, memory_order_acquire) != 0)
        pthread_cond_wait(&tp->done, &tp->lock);
    pthread_mutex_unlock(&tp->lock);
}
