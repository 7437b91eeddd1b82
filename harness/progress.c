/* Progress lines and bar for the sweep (progress.h). Time left is estimated from the
 * work units (the caller's estimate of each cell's cost) done per second so far. */
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

void progress_init(struct progress *p, FILE *f, bool tty, int n_cells, double work_total) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = tty;
    p->n_cells = n_cells;
    p->work_left = work_total;
}

/* Seconds left for the whole sweep: the current cell from its own pace, the rest at
 * the average work rate of the cells finished so far (unknown before the first). */
static double eta_all(const struct progress *p, double elapsed) {
    double cell_left = p->frac > 0.02 ? elapsed / p->frac * (1 - p->frac) : NAN;
    double rest = p->work_left - p->weight;
    if (rest <= 0) return cell_left;
    if (p->work_done <= 0 || p->time_done <= 0) return NAN;
    return (isfinite(cell_left) ? cell_left : 0) + rest * p->time_done / p->work_done;
}

static void clear_bar(struct progress *p) {
    if (p->tty && p->drawn) fputs("\r\033[K", p->f);
    p->drawn = false;
}

static void draw(struct progress *p, double t) {
    double el = t - p->t_start;
    char eta[32], rate[32] = "";
    progress_duration(eta_all(p, el), eta, sizeof eta);
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

void progress_begin(struct progress *p, int index, const char *label, double weight) {
    p->index = index;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->weight = weight;
    p->frac = 0;
    p->tokens = 0;
    p->t_start = now_s();
    if (p->tty) draw(p, p->t_start);
    else {
        fprintf(p->f, "[%d/%d] %s ...\n", index, p->n_cells, label);
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
    p->work_done += p->weight;
    p->time_done += el;
    p->work_left -= p->weight;
    p->weight = 0;
}

void progress_note(struct progress *p, const char *text) {
    clear_bar(p);
    fprintf(p->f, "%s\n", text);
    fflush(p->f);
}
