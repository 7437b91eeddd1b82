/* The thread pool runs every task exactly once per run, hands out valid thread
 * indices, and survives many back-to-back runs of different sizes. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "threadpool.h"

#define MAX_TASKS 300

static char err[256];

struct count_job {
    atomic_int hits[MAX_TASKS];
    atomic_int bad_thread;
    int pool_size;
};

static void count_task(void *ctx, int task, int thread) {
    struct count_job *j = ctx;
    if (thread < 0 || thread >= j->pool_size || task < 0 || task >= MAX_TASKS) {
        atomic_fetch_add(&j->bad_thread, 1);
        return;
    }
    atomic_fetch_add(&j->hits[task], 1);
}

Test(threadpool, every_task_exactly_once) {
    unsigned long long rng = 0x9e3779b97f4a7c15ULL;
    for (int size = 1; size <= 4; size++) {
        struct threadpool *tp = threadpool_create(size, err, sizeof err);
        cr_assert_not_null(tp, "pool of %d", size);
        cr_assert_eq(threadpool_size(tp), size);
        static struct count_job job;
        for (int run = 0; run < 3000; run++) {
            /* Mostly small runs (the common engine case), sometimes empty or large. */
            int n = (int)(test_rng_next(&rng) % 40);
            if (run % 97 == 0) n = MAX_TASKS;
            if (run % 101 == 0) n = 0;
            for (int t = 0; t < MAX_TASKS; t++) atomic_store(&job.hits[t], 0);
            atomic_store(&job.bad_thread, 0);
            job.pool_size = size;
            threadpool_run(tp, n, count_task, &job);
            cr_assert_eq(atomic_load(&job.bad_thread), 0, "size %d run %d: bad thread/task index", size, run);
            for (int t = 0; t < MAX_TASKS; t++)
                cr_assert_eq(atomic_load(&job.hits[t]), t < n ? 1 : 0,
                             "size %d run %d (%d tasks): task %d ran %d times", size, run, n, t,
                             atomic_load(&job.hits[t]));
        }
        threadpool_free(tp);
    }
}

/* Tasks that write to their own slot of a shared array: results must be complete
 * and visible to the caller as soon as threadpool_run returns. */
struct square_job { long long *out; };
static void square_task(void *ctx, int task, int thread) {
    (void)thread;
    struct square_job *j = ctx;
    long long s = 0;
    for (int i = 0; i <= task; i++) s += (long long)i * i;   /* uneven work */
    j->out[task] = s;
}

Test(threadpool, results_visible_after_run) {
    enum { N = 2000 };
    static long long out[N];
    for (int size = 1; size <= 4; size++) {
        struct threadpool *tp = threadpool_create(size, err, sizeof err);
        cr_assert_not_null(tp);
        for (int run = 0; run < 50; run++) {
            memset(out, 0xff, sizeof out);
            struct square_job j = { out };
            threadpool_run(tp, N, square_task, &j);
            for (long long t = 0; t < N; t++)
                cr_assert_eq(out[t], t * (t + 1) * (2 * t + 1) / 6, "size %d task %lld", size, t);
        }
        threadpool_free(tp);
    }
}

/* A pool that slept between runs (workers parked on the condition variable)
 * still wakes up and completes the next run. */
Test(threadpool, wakes_after_idle) {
    struct threadpool *tp = threadpool_create(3, err, sizeof err);
    cr_assert_not_null(tp);
    static struct count_job job;
    job.pool_size = 3;
    for (int run = 0; run < 3; run++) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };   /* 20 ms: well past the spin phase */
        nanosleep(&ts, NULL);
        for (int t = 0; t < MAX_TASKS; t++) atomic_store(&job.hits[t], 0);
        threadpool_run(tp, 64, count_task, &job);
        for (int t = 0; t < 64; t++) cr_assert_eq(atomic_load(&job.hits[t]), 1);
    }
    threadpool_free(tp);
}

Test(threadpool, rejects_bad_size) {
    cr_assert_null(threadpool_create(0, err, sizeof err));
    cr_assert(strstr(err, "thread count 0 is out of range") != NULL, "%s", err);
    cr_assert_null(threadpool_create(-3, err, sizeof err));
    cr_assert_eq(threadpool_size(NULL), 1);
    threadpool_free(NULL);   /* must be a no-op */
}

/* A worker that is not running (descheduled on a busy machine; here: parked in a
 * signal handler) must not hold up runs it took no task of: the caller and the
 * other workers finish them. With a pool that waits for every worker to check in,
 * this test hangs until its timeout. */
static atomic_int stall_release;
static atomic_int stall_entered;
static void stall_handler(int sig) {
    (void)sig;
    atomic_store(&stall_entered, 1);
    struct timespec ts = { 0, 1000 * 1000 };
    while (!atomic_load(&stall_release)) nanosleep(&ts, NULL);
}

struct thread_ids { pthread_t id[4]; atomic_int seen[4]; };
static void record_thread(void *ctx, int task, int thread) {
    (void)task;
    struct thread_ids *ids = ctx;
    if (!atomic_exchange(&ids->seen[thread], 1)) ids->id[thread] = pthread_self();
    struct timespec ts = { 0, 200 * 1000 };   /* long enough for every thread to take one */
    nanosleep(&ts, NULL);
}

Test(threadpool, runs_do_not_wait_for_an_absent_worker, .timeout = 20) {
    char err[256];
    struct threadpool *tp = threadpool_create(3, err, sizeof err);
    cr_assert_not_null(tp);
    static struct thread_ids ids;
    for (int tries = 0; tries < 100 && !(atomic_load(&ids.seen[1]) && atomic_load(&ids.seen[2])); tries++)
        threadpool_run(tp, 16, record_thread, &ids);
    cr_assert(atomic_load(&ids.seen[1]) && atomic_load(&ids.seen[2]), "workers never took a task");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stall_handler;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    struct timespec park = { 0, 50 * 1000 * 1000 };   /* the pool is idle: workers are parked */
    nanosleep(&park, NULL);
    cr_assert_eq(pthread_kill(ids.id[2], SIGUSR1), 0);
    while (!atomic_load(&stall_entered)) nanosleep(&park, NULL);

    static struct count_job job;
    job.pool_size = 3;
    for (int run = 0; run < 200; run++) {
        for (int t = 0; t < 64; t++) atomic_store(&job.hits[t], 0);
        threadpool_run(tp, 64, count_task, &job);
        for (int t = 0; t < 64; t++) cr_assert_eq(atomic_load(&job.hits[t]), 1, "run %d task %d", run, t);
    }
    atomic_store(&stall_release, 1);
    threadpool_free(tp);
}

/* A worker late for a run that is done must not take a task of it with the next
 * run's function, context or task count (they are written while the done run's
 * ticket is still current). Runs alternate between few and many tasks, so a late
 * worker holding the larger count would find an index to take; each run has its
 * own context, so a task taken that way shows up as one task too many. A race:
 * a broken pool fails this in most runs of the test, a correct one never. */
struct tagged_job { atomic_int hits; int n; };
static void tagged_task(void *ctx, int task, int thread) {
    (void)task; (void)thread;
    struct tagged_job *j = ctx;
    atomic_fetch_add(&j->hits, 1);
}

Test(threadpool, late_worker_takes_nothing_from_a_done_run, .timeout = 60) {
    enum { RUNS = 1000000, RING = 4096 };
    char err[256];
    struct threadpool *tp = threadpool_create(4, err, sizeof err);   /* more threads than cores: more late workers */
    cr_assert_not_null(tp, "%s", err);
    struct tagged_job *jobs = calloc(RING, sizeof *jobs);
    cr_assert_not_null(jobs);
    for (int run = 0; run < RUNS; run++) {
        struct tagged_job *j = &jobs[run % RING];
        int prev = j->n ? atomic_load(&j->hits) : 0;   /* late hits on this slot's last run */
        cr_assert_eq(prev, j->n, "run %d: a task ran for run %d after it was done", run, run - RING);
        j->n = (run & 1) ? 64 : 2;
        atomic_store(&j->hits, 0);
        threadpool_run(tp, j->n, tagged_task, j);
        cr_assert_eq(atomic_load(&j->hits), j->n, "run %d: %d tasks ran for %d", run,
                     atomic_load(&j->hits), j->n);
    }
    threadpool_free(tp);
    free(jobs);
}
