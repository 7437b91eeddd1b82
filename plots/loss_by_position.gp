# Figure 4: mean NLL of the predicted token per position bin: where a method breaks.
# by_length = 0: one line per method at one length (loss_by_position.dat);
# by_length = 1: one method, one line per length, short to long in a sequential
# colour scale (loss_by_position_<method>.dat).
# Data columns: position_center bin_start bin_end mean_nll count.
# Variables (besides common.gp's): xmax (window length), ctx_train, by_length, logx (1: log2
# position axis, ctxbench plot --loss-logx).
width = 1000; height = 620
load plotdir.'/common.gp'

if (!exists('logx')) logx = 0
if (logx) {
    # log2 positions: the first bins (inside the trained range) get as much room as the last
    set logscale x 2
    set xrange [*:xmax]
    set format x '%.0f'
} else {
    set xrange [0:xmax]
}
set xlabel 'position in the window (tokens)'.(logx ? ', log scale' : '')
set ylabel 'mean NLL of the next token (nats)'
set key outside right top Left reverse title (by_length ? 'context length' : 'method') width (by_length ? 3 : 1)
eval mark_trained
# a fixed spec's target length, ticked at the bottom in its colour (where its loss may turn)
if (!by_length) { xmin = 0; eval mark_targets }
set bmargin (strlen(note2) > 0 ? 6 : 5)
set xtics out
if (!logx) { set mxtics 2 }

n = words(series)
if (by_length) {
    # short lengths cool (blue), long ones warm (red), so order reads at a glance; and a
    # dash per length for grey print
    set palette defined (0 '#2c7bb6', 0.5 '#7b3294', 1 '#d7191c')
    unset colorbox
    plot for [i = 1:n] data index (i - 1) using 1:4 with lines lw 2 dt int((i - 1) % 5 + 1) \
         lc palette frac (n > 1 ? (i - 1.0) / (n - 1) : 0) title legend[i]
} else {
    plot for [i = 1:n] data index (i - 1) using 1:4 with linespoints pointinterval -4 lw 2 lc rgb word(colors, i) dt int(word(dashes, i)) pt int(word(points, i)) ps 1.2 title legend[i]
}
