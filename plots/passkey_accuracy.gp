# Figure 2b: passkey exact-match accuracy vs context length, every key depth together,
# one line per method; error bars: the 95% Wilson score interval over the cell's trials.
# Data: passkey_accuracy.dat, columns length accuracy wilson_lo wilson_hi trials key_nll.
# Variables (besides common.gp's): lengths, lenlabels, xmin, xmax, ctx_train, targets,
# nlabel (n per point), note2 (set when n is too small for the intervals to say much).
width = 1000; height = 620
load plotdir.'/common.gp'

set logscale x 2
set xrange [xmin:xmax]
set yrange [-0.02:1.02]
eval length_tics
set ytics 0.1
set xlabel 'context length (tokens)'
set ylabel 'exact-match accuracy (95% Wilson interval)'
# the sample size, top right above the plot
set label 103 nlabel at graph 1, graph 1 right offset 0, 0.8 tc rgb '#444444' front
set key outside right top Left reverse title 'method'
eval mark_trained
eval mark_targets
set bmargin (strlen(note2) > 0 ? 6 : 5)

# methods side by side at each length so the intervals do not hide each other
n = words(series)
shift(i) = 2 ** (0.035 * (i - (n + 1) / 2.0))
# the intervals thin and solid, under the dashed lines, so that many short series stay readable
plot for [i = 1:n] data index (i - 1) using ($1 * shift(i)):2:3:4 with yerrorbars lw 1 dt 1 lc rgb word(colors, i) pt 0 notitle, \
     for [i = 1:n] data index (i - 1) using ($1 * shift(i)):2 with linespoints lw 2 lc rgb word(colors, i) \
     dt int(word(dashes, i)) pt int(word(points, i)) ps 1.2 title legend[i]
