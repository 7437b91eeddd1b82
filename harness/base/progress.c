/* Progress lines and bar for the sweep (progress.h). Time left: for each task, seconds
 * per cell fitted to its finished cells by least squares (see progress_fit_predict). */
#include "progress.h"

#include "host.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BAR_WIDTH 20


const char *progress_duration(double s, char *buf, size_t cap) {
    if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
    else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else if (s >= 10) snprintf(buf, cap, "%.0fs", s);
    else snprintf(buf, cap, "%.1fs", s);
    return buf;
}

double progress_interval(bool tty) {
    const char *env = getenv("CTXBENCH_PROGRESS_INTERVAL");
    if (env && *env) {
        char *end;
        double v = strtod(env, &end);
        if (!*end && v >= 0 && v <= 3600) return v;
    }
    return tty ? PROGRESS_DRAW_EVERY_S : PROGRESS_LOG_EVERY_S;
}

void progress_init(struct progress *p, FILE *f, bool tty, int n_cells, const struct progress_cell *todo, int n_todo) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = tty;
    p->interval = progress_interval(tty);
    p->n_cells = n_cells;
    p->todo = todo;
    p->n_todo = n_todo;
}

void progress_fit_add(struct progress_fit *g, double length, double seconds) {
    double x = length / 1024, xk = 1;
    for (int k = 0; k < 5; k++, xk *= x) {
        g->sx[k] += xk;
        if (k < 3) g->sxt[k] += seconds * xk;
    }
    g->n++;
    bool seen = false;
    for (int i = 0; i < g->n_lengths; i++) seen |= g->lengths[i] == length;
    if (!seen && g->n_lengths < 3) g->lengths[g->n_lengths++] = length;
}

static double det3(const double m[3][3]) {
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

double progress_fit_predict(const struct progress_fit *g, double length) {
    if (g->n == 0) return NAN;
    double x = length / 1024, n = g->n, mx = g->sx[1] / n, mt = g->sxt[0] / n;
    if (g->n_lengths >= 3) {   /* least squares for a + b x + c x^2 (Cramer's rule) */
        double m[3][3], r[3] = {g->sxt[0], g->sxt[1], g->sxt[2]}, coef[3];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) m[i][j] = g->sx[i + j];
        double d = det3(m);
        bool ok = fabs(d) > 1e-12 * fabs(m[0][0] * m[1][1] * m[2][2]);
        for (int k = 0; ok && k < 3; k++) {
            double mk[3][3];
            memcpy(mk, m, sizeof mk);
            for (int i = 0; i < 3; i++) mk[i][k] = r[i];
            coef[k] = det3(mk) / d;
            ok = coef[k] >= -1e-9 * fabs(mt);
        }
        if (ok) return coef[0] + coef[1] * x + coef[2] * x * x;
    }
    if (g->n_lengths == 1) return mx > 0 ? mt * x / mx : mt;
    double var = g->sx[2] / n - mx * mx;
    double b = (g->sxt[1] / n - mx * mt) / var, a = mt - b * mx;
    if (b < 0) return mt;                         /* no growth seen: a constant */
    if (a < 0) return g->sxt[1] / g->sx[2] * x;   /* a line through the origin */
    return a + b * x;
}

double progress_time_left(const struct progress *p) {
    double left = 0;
    for (int i = p->next; i < p->n_todo; i++) {
        const struct progress_cell *c = &p->todo[i];
        double t = NAN;
        if (c->group >= 0 && c->group < PROGRESS_MAX_GROUPS) t = progress_fit_predict(&p->fit[c->group], c->length);
        if (!isfinite(t)) {   /* a group not seen yet: the other groups' average seconds per token */
            double sl = 0, st = 0;
            for (int g = 0; g < PROGRESS_MAX_GROUPS; g++) sl += p->fit[g].sx[1] * 1024, st += p->fit[g].sxt[0];
            if (sl <= 0) return NAN;
            t = st / sl * c->length;
        }
        left += t;
    }
    return left;
}

/* "[i/N] " in a grid, "" for a single job. */
static const char *position(const struct progress *p, int index, char *buf, size_t cap) {
    if (p->n_cells > 0) snprintf(buf, cap, "[%d/%d] ", index, p->n_cells);
    else buf[0] = 0;
    return buf;
}

static void clear_bar(struct progress *p) {
    if (p->tty && p->drawn) fputs("\r\033[K", p->f);
    p->drawn = false;
}

static void draw(struct progress *p, double t) {
    double el = t - p->t_start;
    double cell_left = p->frac > 0.02 ? el / p->frac * (1 - p->frac) : NAN;
    if (!isfinite(cell_left) && p->cur.group >= 0 && p->cur.group < PROGRESS_MAX_GROUPS)
        cell_left = fmax(0, progress_fit_predict(&p->fit[p->cur.group], p->cur.length) - el);
    char eta[32], rate[32] = "", at[32];
    position(p, p->index, at, sizeof at);
    progress_duration(cell_left + progress_time_left(p), eta, sizeof eta);
    if (p->tokens > 0 && el > 0) snprintf(rate, sizeof rate, " %.0f tok/s", p->tokens / el);
    if (p->tty) {
        char bar[BAR_WIDTH + 1];
        int fill = (int)(p->frac * BAR_WIDTH + 0.5);
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = 0;
        fprintf(p->f, "\r\033[K%s%-40.40s |%s| %3.0f%%%s ETA %s", at, p->label, bar,
                100 * p->frac, rate, eta);
        p->drawn = true;
    } else {
        fprintf(p->f, "%s%s: %.0f%%, %ld tokens%s%s, ETA %s\n", at, p->label, 100 * p->frac, p->tokens,
                rate[0] ? "," : "", rate, eta);
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
    p->t_start = host_monotonic_s();
    if (p->tty) draw(p, p->t_start);
    else {
        char eta[32] = "", at[32];
        double left = progress_time_left(p);
        if (p->next < p->n_todo && isfinite(left)) {
            char d[24];
            snprintf(eta, sizeof eta, " (after it: ~%s)", progress_duration(left, d, sizeof d));
        }
        fprintf(p->f, "%s%s ...%s\n", position(p, index, at, sizeof at), label, eta);
        fflush(p->f);
        p->t_last_draw = p->t_start;
    }
}

void progress_update(struct progress *p, double frac, long tokens) {
    if (!(frac >= 0)) frac = 0;   /* also catches NaN */
    p->frac = frac > 1 ? 1 : frac;
    if (tokens > p->tokens) p->tokens = tokens;
    double t = host_monotonic_s();
    if (t - p->t_last_draw >= p->interval) draw(p, t);
}

void progress_on_tokens(void *arg, int n_tokens) {
    struct progress_tokens *pt = arg;
    pt->done += n_tokens;
    progress_update(pt->p, (double)pt->done / (double)pt->total, pt->done);
}

void progress_end(struct progress *p, const char *outcome) {
    double el = host_monotonic_s() - p->t_start;
    clear_bar(p);
    char d[32], at[32];
    fprintf(p->f, "%s%s: %s (%s", position(p, p->index, at, sizeof at), p->label, outcome,
            progress_duration(el, d, sizeof d));
    if (p->tokens > 0 && el > 0) fprintf(p->f, ", %.0f tok/s", p->tokens / el);
    fputs(")\n", p->f);
    fflush(p->f);
    if (p->cur.group >= 0 && p->cur.group < PROGRESS_MAX_GROUPS) progress_fit_add(&p->fit[p->cur.group], p->cur.length, el);
}

void progress_note(struct progress *p, const char *text) {
    clear_bar(p);
    fprintf(p->f, "%s\n", text);
    fflush(p->f);
}
