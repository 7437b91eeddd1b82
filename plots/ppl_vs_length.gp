# Figure 1: perplexity vs context length, one line per method (task ppl).
# Data: ctxbench plot's ppl_vs_length.dat, columns length ppl nll tokens_scored windows.
# Variables (besides common.gp's): lengths, lenlabels, xmin, xmax, ctx_train.
width = 1000; height = 620
load plotdir.'/common.gp'

set logscale x 2
set logscale y
set xrange [xmin:xmax]
eval length_tics
set xlabel 'context length (tokens)'
set ylabel 'perplexity (log scale)'
set key outside right top title 'method'
eval mark_trained
set bmargin 5

plot for [i = 1:words(series)] data index (i - 1) using 1:2 with linespoints lt (word(lts, i) + 0) \
     title word(series, i)
