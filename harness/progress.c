/* Progress lines and bar for the sweep (progress.h). Time left: for each task, seconds
 * per cell fitted as a + b * length to its finished cells (least squares, a, b >= 0). */
#include "progress.h"

#include <math.h>
#include <string.h>
#include <time.h>

#define BAR_WIDTH 20
#define LOG_EVERY_S 30.0
#define DRAW_EVERY_S 0.2

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *progress_duration(double s, char *buf, size_t cap) {
    if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
    else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else if (s >= 10) snprintf(buf, cap, "%.0fs", s);
    else snprintf(buf, cap, "%.1fs", s);
    return buf;
}

void progress_init(struct progress *p, FILE *f, bool tty, int n_cells, const struct progress_cell *todo, int n_todo) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = tty;
    p->n_cells = n_cells;
    p->todo = todo;
    p->n_todo = n_todo;
}

/* Seconds a cell of `length` is expected to take, from the fit of its group. With one
 * length seen so far, time is taken as proportional to length (a cautious guess: it
 * overestimates capped work and underestimates attention's quadratic growth). */
static double predict(const struct progress_fit *g, double length) {
    if (g->n == 0) return NAN;
    double ml = g->s_l / g->n, mt = g->s_t / g->n;
    double var = g->s_ll / g->n - ml * ml;
    if (var <= 1e-9 * ml * ml) return ml > 0 ? mt * length / ml : mt;
    double b = (g->s_lt / g->n - ml * mt) / var, a = mt - b * ml;
    if (b < 0) return mt;                        /* no growth seen: a constant */
    if (a < 0) return g->s_lt / g->s_ll * length;  /* through the origin */
    return a + b * length;
}

double progress_time_left(const struct progress *p) {
    double left = 0;
    for (int i = p->next; i < p->n_todo; i++) {
        const struct progress_cell *c = &p->todo[i];
        double t = NAN;
        if (c->group >= 0 && c->group < PROGRESS_MAX_GROUPS) t = predict(&p->fit[c->group], c->length);
        if (!isfinite(t)) {   /* a group not seen yet: the other groups' average rate */
            double sl = 0, st = 0;
            for (int g = 0; g < PROGRESS_MAX_GROUPS; g++) sl += p->fit[g].s_l, st += p->fit[g].s_t;
            if (sl <= 0) return NAN;
            t = st / sl * c->length;
        }
        left += t;
    }
    return left;
}

static void clear_bar(struct progress *p) {
    if (p->tty && p->drawn) fputs("\r\033[K", p->f);
    p->drawn = false;
}

static void draw(struct progress *p, double t) {
    double el = t - p->t_start;
    double cell_left = p->frac > 0.02 ? el / p->frac * (1 - p->frac) : NAN;
    if (!isfinite(cell_left) && p->cur.group >= 0 && p->cur.group < PROGRESS_MAX_GROUPS)
        cell_left = fmax(0, predict(&p->fit[p->cur.group], p->cur.length) - el);
    char eta[32], rate[32] = "";
    progress_duration(cell_left + progress_time_left(p), eta, sizeof eta);
    if (p->tokens > 0 && el > 0) snprintf(rate, sizeof rate, " %.0f tok/s", p->tokens / el);
    if (p->tty) {
        char bar[BAR_WIDTH + 1];
        int fill = (int)(p->frac * BAR_WIDTH + 0.5);
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = 0;
        fprintf(p->f, "\r\033[K[%d/%d] %-40.40s |%s| %3.0f%%%s ETA %s", p->index, p->n_cells, p->label, bar,
                100 * p->frac, rate, eta);
        p->drawn = true;
    } else {
        fprintf(p->f, "[%d/%d] %s: %.0f%%%s, ETA %s\n", p->index, p->n_cells, p->label, 100 * p->frac, rate, eta);
    }
    fflush(p->f);
    p->t_last_draw = t;
}

void progress_begin(struct progress *p, int index, const char *label) {
    p->index = index;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->cur = p->next < p->n_todo ? p->todo[p->next] : (struct progress_cell){-1, 0};
    if (p->next < p->n_todo) p->next++;
    p->frac = 0;
    p->tokens = 0;
    p->t_start = now_s();
    if (p->tty) draw(p, p->t_start);
    else {
        char eta[32] = "";
        double left = progress_time_left(p);
        if (isfinite(left)) {
            char d[24];
            snprintf(eta, sizeof eta, " (after it: ~%s)", progress_duration(left, d, sizeof d));
        }
        fprintf(p->f, "[%d/%d] %s ...%s\n", index, p->n_cells, label, eta);
        fflush(p->f);
        p->t_last_draw = p->t_start;
    }
}

void progress_update(struct progress *p, double frac, long tokens) {
    if (!(frac >= 0)) frac = 0;   /* also catches NaN */
    p->frac = frac > 1 ? 1 : frac;
    if (tokens > p->tokens) p->tokens = tokens;
    double t = now_s();
    if (t - p->t_last_draw >= (p->tty ? DRAW_EVERY_S : LOG_EVERY_S)) draw(p, t);
}

void progress_end(struct progress *p, const char *outcome) {
    double el = now_s() - p->t_start;
    clear_bar(p);
    char d[32];
    fprintf(p->f, "[%d/%d] %s: %s (%s", p->index, p->n_cells, p->label, outcome, progress_duration(el, d, sizeof d));
    if (p->tokens > 0 && el > 0) fprintf(p->f, ", %.0f tok/s", p->tokens / el);
    fputs(")\n", p->f);
    fflush(p->f);
    if (p->cur.group >= 0 && p->cur.group < PROGRESS_MAX_GROUPS) {
        struct progress_fit *g = &p->fit[p->cur.group];
        g->n++;
        g->s_l += p->cur.length;
        g->s_t += el;
        g->s_ll += p->cur.length * p->cur.length;
        g->s_lt += p->cur.length * el;
    }
}

void progress_note(struct progress *p, const char *text) {
    clear_bar(p);
    fprintf(p->f, "%s\n", text);
    fflush(p->f);
}
