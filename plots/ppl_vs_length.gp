# Figure 1: perplexity vs context length, one line per method (task ppl).
# Data: ctxbench plot's ppl_vs_length.dat, columns length ppl nll tokens_scored windows x_drawn ppl_lo ppl_hi
# (x_drawn: the length, nudged apart where methods have identical perplexities: note2 says which;
# ppl_lo/hi: 95% bootstrap interval over the cell's windows, drawn as error bars).
# Variables (besides common.gp's): lengths, lenlabels, xmin, xmax, ctx_train.
width = 1000; height = 620
load plotdir.'/common.gp'

set logscale x 2
set logscale y
set xrange [xmin:xmax]
eval length_tics
set xlabel 'context length (tokens)'
set ylabel 'perplexity (log scale)'
# 1-2-5 ticks in every decade: more labels than the decades alone on a short range
set ytics format '%g'
set ytics (1)
do for [e = -2:9] { set ytics add (10.0**e, 2 * 10.0**e, 5 * 10.0**e) }
set mytics 1
# the data's own range (not whole decades), a little air above and below
stats data using 2 nooutput
# within one decade the 1-2-5 ticks are too few (or none): evenly spaced ticks then
# (gnuplot's automatic ticks on a log axis give none inside one decade)
ylo = STATS_min / 1.15; yhi = STATS_max * 1.15
if (yhi / ylo < 10) {
    step = 10.0 ** floor(log10((yhi - ylo) / 4))
    if ((yhi - ylo) / step > 10) { step = 2 * step }
    if ((yhi - ylo) / step > 10) { step = 2.5 * step }
    set ytics (ceil(ylo / step) * step)
    do for [k = ceil(ylo / step) + 1 : floor(yhi / step)] { set ytics add (k * step) }
}
set yrange [ylo:yhi]
set key outside right top Left reverse title 'method'
eval mark_trained
eval mark_targets
set bmargin (strlen(note2) > 0 ? 6 : 5)

# 95% bootstrap intervals over each cell's windows (columns 7, 8; none with one window,
# and has_ci = 0 when no cell has one)
if (exists('has_ci') && has_ci) {
plot for [i = 1:words(series)] data index (i - 1) using 6:2:7:8 with yerrorbars lc rgb word(colors, i) pt 0 lw 1 notitle, \
     for [i = 1:words(series)] data index (i - 1) using 6:2 with linespoints lw 2 lc rgb word(colors, i) dt int(word(dashes, i)) pt int(word(points, i)) ps 1.2 \
     title legend[i]
} else {
plot for [i = 1:words(series)] data index (i - 1) using 6:2 with linespoints lw 2 lc rgb word(colors, i) dt int(word(dashes, i)) pt int(word(points, i)) ps 1.2 \
     title legend[i]
}
