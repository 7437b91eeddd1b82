# Figure 5: cost vs context length, one line per method: throughput (the forward passes of
# the cell's windows or prompts, tokens over seconds each: the median, bars from the slowest
# to the fastest; where a cell recorded none, its evaluated tokens over its wall time) and
# the process's peak resident memory during the cell.
# Data: cost_<task>.dat, columns length tokens_per_s peak_rss_mib session_mib wall_s
# load_avg_start load_avg_end rate_median rate_min rate_max n_units.
# Variables (besides common.gp's): lengths, lenlabels, xmin, xmax, ctx_train, host, threads,
# note2 (set when a method's throughput rises with the length: disturbed timings),
# note3 (set when the load average exceeded the cells' own threads: a shared machine),
# nlabel (what a point and its bars are, and n).
width = 1400; height = 600
load plotdir.'/common.gp'

unset title
unset label 99
set multiplot layout 1, 2 title full_title font ',12' margins 0.08, 0.70, 0.22, 0.80 spacing 0.07, 0
set logscale x 2
set xrange [xmin:xmax]
eval length_tics
set xlabel 'context length (tokens)'
# where it ran, top right (the notes are bottom left)
if (strlen(host) > 0) {
    set label 101 sprintf('host %s, threads %d', host, threads) at screen 0.99, screen 0.97 right font ',9' tc rgb '#555555'
}
if (exists('note3') && strlen(note3) > 0) {
    set label 103 note3 at screen 0.01, screen 0.075 left font ',9' tc rgb '#aa3300' front
}
eval mark_trained
eval mark_targets
# one legend for both panels, right of them
set key at screen 0.72, screen 0.80 left top vertical Left reverse title 'method'

set ylabel 'forward-pass throughput (tokens/s)'
set yrange [0:*]
set label 104 nlabel at screen 0.01, screen 0.11 left font ',9' tc rgb '#444444' front
set bars small
plot for [i = 1:words(series)] data index (i - 1) using 1:8:9:10 with yerrorlines lw 2 lc rgb word(colors, i) dt int(word(dashes, i)) pt int(word(points, i)) ps 1.2 \
     title legend[i]
unset label 104

unset key
unset label 100
unset label 101
unset label 102
set ylabel 'peak resident memory (MiB)'
plot for [i = 1:words(series)] data index (i - 1) using 1:3 with linespoints lw 2 lc rgb word(colors, i) dt int(word(dashes, i)) pt int(word(points, i)) ps 1.2 \
     title legend[i]
unset multiplot
