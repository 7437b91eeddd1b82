# Figure 3: first-sentence retrieval ROUGE-L F1 vs context length, one line per method;
# error bars: one standard error over the cell's samples.
# Data: first_sentence_rouge.dat, columns length rouge_l stderr samples exact_match exact_lo exact_hi.
# nlabel: n per point; note2: set when n is too small for the bars to say much.
# Variables (besides common.gp's): lengths, lenlabels, xmin, xmax, ctx_train.
width = 1000; height = 620
load plotdir.'/common.gp'

set logscale x 2
set xrange [xmin:xmax]
set yrange [0:1]
eval length_tics
set ytics 0.1
set xlabel 'context length (tokens)'
set ylabel 'ROUGE-L F1 of the recalled first sentence (mean ± 1 s.e.)'
# the sample size, top right above the plot
set label 103 nlabel at graph 1, graph 1 right offset 0, 0.8 tc rgb '#444444' front
set key outside right top Left reverse title 'method'
eval mark_trained
eval mark_targets
set bmargin (strlen(note2) > 0 ? 6 : 5)

# methods side by side at each length (a small shift on the log axis) so error bars
# do not hide each other; the ticks mark the true lengths
n = words(series)
shift(i) = 2 ** (0.035 * (i - (n + 1) / 2.0))
# the error bars thin and solid, under the dashed lines
plot for [i = 1:n] data index (i - 1) using ($1 * shift(i)):2:3 with yerrorbars lw 1 dt 1 lc rgb word(colors, i) pt 0 notitle, \
     for [i = 1:n] data index (i - 1) using ($1 * shift(i)):2 with linespoints lw 2 lc rgb word(colors, i) dt int(word(dashes, i)) pt int(word(points, i)) ps 1.2 \
     title legend[i]
