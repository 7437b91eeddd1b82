# Figure 5: cost vs context length, one line per method: throughput (tokens per
# second of wall time, the cell's evaluated tokens over its wall-clock seconds) and the
# process's peak resident memory during the cell.
# Data: cost_<task>.dat, columns length tokens_per_s peak_rss_mib session_mib wall_s.
# Variables (besides common.gp's): lengths, lenlabels, xmin, xmax, ctx_train, host, threads.
width = 1200; height = 600
load plotdir.'/common.gp'

unset title
set multiplot layout 1, 2 title full_title font ',12' margins 0.08, 0.98, 0.32, 0.80 spacing 0.09, 0
set logscale x 2
set xrange [xmin:xmax]
eval length_tics
set xlabel 'context length (tokens)'
# where it ran, bottom right (the note, if any, is bottom left)
if (strlen(host) > 0) {
    set label 101 sprintf('host %s, threads %d', host, threads) at screen 0.99, screen 0.015 right font ',9' tc rgb '#555555'
}
eval mark_trained
eval mark_targets
# one legend for both panels, under them
set key at screen 0.5, screen 0.09 center center horizontal maxrows 2 title 'method'

set ylabel 'throughput (tokens/s)'
set yrange [0:*]
plot for [i = 1:words(series)] data index (i - 1) using 1:2 with linespoints lw 2 lc rgb word(colors, i) dt int(word(dashes, i)) pt int(word(points, i)) ps 1.2 \
     title legend[i]

unset key
unset label 100
unset label 101
set ylabel 'peak resident memory (MiB)'
plot for [i = 1:words(series)] data index (i - 1) using 1:3 with linespoints lw 2 lc rgb word(colors, i) dt int(word(dashes, i)) pt int(word(points, i)) ps 1.2 \
     title legend[i]
unset multiplot
