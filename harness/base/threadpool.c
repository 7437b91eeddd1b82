/* A persistent pthread pool for "for task in 0..n_tasks" loops.
 *
 * The engine calls threadpool_run thousands of times a second (once per matmul,
 * per layer, per chunk), so workers are created once and parked between runs.
 *
 * A run is published as a ticket, (generation << 32) | next task index; a thread
 * takes a task by advancing the ticket with a compare-and-swap that names the
 * generation it joined, and the run is over when its tasks are *done*, counted
 * per task. The caller takes tasks too, so a run never waits for a worker that
 * has not taken one: on a loaded machine a descheduled worker no longer stalls
 * every run (and the caller no longer burns CPU waiting for it); it joins the
 * run that is current when it runs again.
 *
 * A late worker must never take a task with another run's function, context or
 * task count. When a run is done the caller first closes its ticket (the task
 * index becomes TICKET_CLOSED, past any task count) and only then writes the
 * next run's fields, with release stores that workers read with acquire loads:
 * a worker that read any field of the next run then sees the closed ticket (or
 * the next generation) and takes nothing, and one whose swap succeeds read the
 * fields of the run its swap names.
 *
 * Waiting (a worker for the next run, the caller for the last tasks) polls for a
 * short time, yielding the CPU after a while, then sleeps on a semaphore of its
 * own, posted by whoever finds its "asleep" flag set. No lock is shared: a thread
 * that is not running (even one parked inside its wait) never holds up another,
 * which a condition variable cannot promise (glibc's broadcast waits for every
 * waiter of the old group to leave the wait). The poll budget is wall time, not a count, so a poller that was
 * descheduled (the machine is busy) goes to sleep instead of polling on. */
#include "threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sched.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Poll budgets (ns): runs usually follow each other within microseconds, so a
 * short poll catches the next run without a sleep and wake-up (a few us each).
 * Past YIELD_AFTER_NS a poller yields the CPU (more threads than cores), and
 * past SPIN_NS it sleeps. Measured on a 2-vCPU KVM guest: ~1 us per run at 2
 * threads idle; x86 PAUSE in the poll loop made runs slower and erratic there
 * (pause-loop exits), so the loop does not use it. */
#define YIELD_AFTER_NS 20000
#define SPIN_NS 100000
#define POLLS_PER_CLOCK 64
#define MAX_THREADS 1024
#define TICKET_CLOSED UINT32_MAX  /* task index of a run that is done: past every task count */

struct threadpool {
    int n_threads;            /* including the caller */
    pthread_t *workers;       /* n_threads - 1 of them */
    int n_started;            /* workers actually running (to join) */
    struct sleeper *sleep;    /* n_threads - 1 workers' wake-ups, then the caller's */
    int n_sleep_init;         /* semaphores initialised (to destroy) */

    /* The current run: written by the caller before it publishes the run's
     * generation in `ticket`, and not again until the run is done. */
    _Atomic(threadpool_fn) fn;
    _Atomic(void *) ctx;
    atomic_int n_tasks;

    uint32_t generation;      /* the caller's count of runs (only the caller touches it) */
    _Atomic uint64_t ticket;  /* generation << 32 | index of the next task to hand out */
    atomic_int done_tasks;    /* tasks of the current run that have returned */
    atomic_int stop;
};

/* A thread's way to sleep: set `asleep`, check once more, wait on `wake`. Whoever
 * has something for it takes the flag back (exchange) and, if it was set, posts. */
struct sleeper {
    sem_t wake;
    atomic_int asleep;
};

static void sleeper_wait(struct sleeper *z) {
    while (sem_wait(&z->wake) != 0) { /* EINTR: a signal handler ran; wait on */ }
}

/* Called after the store that the sleeper's check reads (seq_cst both sides: either it
 * sees that store, or we see its flag and post). */
static void sleeper_wake(struct sleeper *z) {
    if (atomic_exchange(&z->asleep, 0)) sem_post(&z->wake);
}

/* The sleeper gives up sleeping after its check found work: if the flag was already
 * taken, a post is on its way and is consumed here so it cannot wake a later wait. */
static void sleeper_cancel(struct sleeper *z) {
    if (!atomic_exchange(&z->asleep, 0)) sleeper_wait(z);
}

struct worker_arg {
    struct threadpool *tp;
    int thread;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A bounded poll: call poll_step with i = 0, 1, ... while waiting; it returns 0
 * when the budget is spent and the waiter should sleep instead. */
struct poll_budget { uint64_t start; };

static int poll_step(struct poll_budget *b, int i) {
    if (i % POLLS_PER_CLOCK != POLLS_PER_CLOCK - 1) return 1;
    uint64_t t = now_ns();
    if (i == POLLS_PER_CLOCK - 1) b->start = t;
    uint64_t waited = t - b->start;
    if (waited >= SPIN_NS) return 0;
    if (waited >= YIELD_AFTER_NS) sched_yield();
    return 1;
}

static uint32_t ticket_generation(uint64_t ticket) { return (uint32_t)(ticket >> 32); }

/* Takes tasks of run `gen` until none are left or the run is no longer current. */
static void run_tasks(struct threadpool *tp, uint32_t gen, int thread) {
    threadpool_fn fn = atomic_load_explicit(&tp->fn, memory_order_acquire);
    void *ctx = atomic_load_explicit(&tp->ctx, memory_order_acquire);
    int n = atomic_load_explicit(&tp->n_tasks, memory_order_acquire);
    uint64_t ticket = atomic_load_explicit(&tp->ticket, memory_order_acquire);
    for (;;) {
        if (ticket_generation(ticket) != gen || (uint32_t)ticket >= (uint32_t)n) return;
        if (!atomic_compare_exchange_weak_explicit(&tp->ticket, &ticket, ticket + 1,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        /* The swap succeeded, so run `gen` was current and not closed when it
         * did: fn, ctx and n above are that run's (see the top of the file). */
        fn(ctx, (int)(uint32_t)ticket, thread);
        int done = atomic_fetch_add_explicit(&tp->done_tasks, 1, memory_order_acq_rel) + 1;
        if (done == n) {
            if (thread != 0) sleeper_wake(&tp->sleep[tp->n_threads - 1]);   /* the caller may sleep */
            return;
        }
        ticket = atomic_load_explicit(&tp->ticket, memory_order_acquire);
    }
}

static void *worker_main(void *p) {
    struct worker_arg *arg = p;
    struct threadpool *tp = arg->tp;
    int thread = arg->thread;
    free(arg);

    uint32_t seen = 0;   /* last generation this worker joined */
    for (;;) {
        /* Wait for a new generation: poll first, then sleep. */
        uint32_t gen = ticket_generation(atomic_load(&tp->ticket));
        struct poll_budget budget = { 0 };
        for (int i = 0; gen == seen && !atomic_load_explicit(&tp->stop, memory_order_relaxed); i++) {
            if (!poll_step(&budget, i)) break;
            gen = ticket_generation(atomic_load_explicit(&tp->ticket, memory_order_acquire));
        }
        if (gen == seen && !atomic_load(&tp->stop)) {
            struct sleeper *z = &tp->sleep[thread - 1];
            atomic_store(&z->asleep, 1);
            if ((gen = ticket_generation(atomic_load(&tp->ticket))) == seen && !atomic_load(&tp->stop))
                sleeper_wait(z);
            else
                sleeper_cancel(z);
            continue;   /* look again */
        }
        if (atomic_load(&tp->stop)) break;
        seen = gen;
        run_tasks(tp, gen, thread);
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
    atomic_init(&tp->fn, NULL);
    atomic_init(&tp->ctx, NULL);
    atomic_init(&tp->n_tasks, 0);
    atomic_init(&tp->ticket, 0);
    atomic_init(&tp->done_tasks, 0);
    atomic_init(&tp->stop, 0);
    if (n_threads == 1) return tp;   /* everything runs inline */

    tp->sleep = calloc((size_t)n_threads, sizeof *tp->sleep);
    if (!tp->sleep) {
        snprintf(err, errlen, "out of memory for a pool of %d threads", n_threads);
        threadpool_free(tp);
        return NULL;
    }
    for (; tp->n_sleep_init < n_threads; tp->n_sleep_init++) {
        atomic_init(&tp->sleep[tp->n_sleep_init].asleep, 0);
        if (sem_init(&tp->sleep[tp->n_sleep_init].wake, 0, 0) != 0) {
            snprintf(err, errlen, "cannot create the pool's semaphores: %s", strerror(errno));
            threadpool_free(tp);
            return NULL;
        }
    }
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
    atomic_store(&tp->stop, 1);
    for (int i = 0; i < tp->n_started; i++) sleeper_wake(&tp->sleep[i]);
    for (int i = 0; i < tp->n_started; i++) pthread_join(tp->workers[i], NULL);
    free(tp->workers);
    for (int i = 0; i < tp->n_sleep_init; i++) sem_destroy(&tp->sleep[i].wake);
    free(tp->sleep);
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

    /* The previous run's ticket is closed, so no thread can take a task with what
     * is rewritten here; release: a worker that reads one of these sees it closed. */
    atomic_store_explicit(&tp->fn, fn, memory_order_release);
    atomic_store_explicit(&tp->ctx, ctx, memory_order_release);
    atomic_store_explicit(&tp->n_tasks, n_tasks, memory_order_release);
    atomic_store_explicit(&tp->done_tasks, 0, memory_order_relaxed);
    uint32_t gen = ++tp->generation;
    if (gen == 0) gen = ++tp->generation;        /* 0 is what a new worker has seen */
    atomic_store(&tp->ticket, (uint64_t)gen << 32);   /* seq_cst: publishes the run */
    for (int i = 0; i < tp->n_threads - 1; i++) sleeper_wake(&tp->sleep[i]);

    run_tasks(tp, gen, 0);

    /* Tasks other threads took must return before we do (the caller's data is
     * theirs until then): poll, then sleep until the thread of the last task posts. */
    struct poll_budget budget = { 0 };
    for (int i = 0; atomic_load_explicit(&tp->done_tasks, memory_order_acquire) != n_tasks; i++) {
        if (poll_step(&budget, i)) continue;
        struct sleeper *z = &tp->sleep[tp->n_threads - 1];
        atomic_store(&z->asleep, 1);
        if (atomic_load(&tp->done_tasks) != n_tasks) sleeper_wait(z);
        else sleeper_cancel(z);
    }
    /* Done: close the ticket before anything of the next run is written. */
    atomic_store(&tp->ticket, ((uint64_t)gen << 32) | TICKET_CLOSED);
}
