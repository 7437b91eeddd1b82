# Shared by every figure script: the terminal (PNG or SVG), fonts, the title block,
# the note under the plot.
#
# ctxbench plot gives: plotdir, term ('png' or 'svg'), out (output file), data (.dat),
# series (words: block titles), colors, dashes, points (words: each block's style),
# legend (array: each block's legend text), title, subtitle,
# subtitle2, subtitle3 (empty when not needed), note. A script sets width and height (pixels) and then loads this file.
if (!exists("width")) width = 1000
if (!exists("height")) height = 620

if (term eq 'svg') {
    set terminal svg size width, height dynamic noenhanced font 'DejaVu Sans,12' background rgb 'white'
} else {
    if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
        set terminal pngcairo size width, height noenhanced font 'DejaVu Sans,11' background rgb 'white'
    } else {
        set terminal png size width, height noenhanced font 'DejaVu Sans,11' background rgb 'white'
    }
}
set output out
set encoding utf8

# Each series' colour, dash and point shape come from ctxbench plot (colors, dashes,
# points: one word per series; legend: an array of the legend texts). They follow the
# method's name, so a method looks the same in every figure of every results file
# (harness/report/plot.c, plot_method_style).

full_title = title."\n".subtitle.(strlen(subtitle2) > 0 ? "\n".subtitle2 : '').(strlen(subtitle3) > 0 ? "\n".subtitle3 : '')
# centred on the whole figure, not over the plot area (a key beside the plot would push a
# long title off the left edge); scripts that draw several panels use their multiplot title
# instead and unset label 99
set label 99 full_title at screen 0.5, screen 1 - 14.0 / height center front font ',12'
# room for the title lines and, under them, the trained-context label
set tmargin 5.6 + (strlen(subtitle2) > 0) + (strlen(subtitle3) > 0)
set grid xtics ytics lc rgb '#d0d0d0' lw 1 dt 1
set border 3 lc rgb '#333333'
set tics nomirror out
set key noautotitle box lc rgb '#bbbbbb' opaque samplen 3 spacing 1.2 width 1
set datafile missing 'nan'

# The note: what the figure leaves out (skipped or failed cells), in small grey type.
if (strlen(note) > 0) {
    set label 100 note at screen 0.01, screen 0.015 left font ',9' tc rgb '#555555' front
}
# The second line: methods whose values coincide (equal by construction), drawn side by side.
if (!exists('note2')) note2 = ''
if (strlen(note2) > 0) {
    set label 102 note2 at screen 0.01, screen (strlen(note) > 0 ? 0.045 : 0.015) left font ',9' tc rgb '#555555' front
}

# Length axis ticks at the lengths of the sweep (call with lengths/lenlabels set).
length_tics = "set xtics (word(lenlabels, 1) word(lengths, 1) + 0); do for [k = 2:words(lengths)] { set xtics add (word(lenlabels, k) word(lengths, k) + 0) }"

# The trained context: a dashed vertical line labelled just above the plot (where no
# data can hide it), and the region past it shaded.
mark_trained = "if (ctx_train > 0) { \
    set object 90 rect from first ctx_train, graph 0 to graph 1, graph 1 behind fc rgb '#f4f4f4' fs solid 1.0 noborder; \
    set arrow 90 from first ctx_train, graph 0 to first ctx_train, graph 1 nohead dt 2 lw 1.5 lc rgb '#444444' front; \
    set label 90 sprintf('trained context: %d', ctx_train) at first ctx_train, graph 1 left offset -0.5, 0.8 tc rgb '#444444' front }"

# Where a fixed spec (pi:factor=4) is aimed: factor x trained length, a short tick in
# the method's colour on the length axis (targets: one word per series, -1 for none).
mark_targets = "if (exists('targets')) { do for [i = 1:words(targets)] { t = word(targets, i) + 0; \
    if (t > 0 && t >= xmin && t <= xmax) { \
    set arrow (200 + i) from first t, graph 0 to first t, graph 0.07 nohead lw 4 dt 1 lc rgb word(colors, i) front } } }"
