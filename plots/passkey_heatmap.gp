# Figure 2: passkey retrieval accuracy by context length (x) and key depth (y), one
# panel per method, colour 0..1 (the same scale in every panel), value printed in each
# cell. Cells not run, skipped or failed stay blank (listed in the note).
# Data: passkey_heatmap.dat, columns length_index depth_index value length depth_percent.
# Variables (besides common.gp's): lengths, lenlabels, depths (percent words),
# trained_x (x of the trained-context line, -1 for none), ctx_train, metric, trials,
# cbmax (top of the colour scale: 1, or the largest key NLL), nlabel and note2 (keys per cell).
n = words(series)
cols = n <= 3 ? n : (n == 4 ? 2 : 3)
rows = (n + cols - 1) / cols
nl = words(lengths)
nd = words(depths)
panel_w = 110 + 70 * nl
panel_h = 140 + 42 * nd
width = cols * panel_w + 80
height = rows * panel_h + 200
if (width < 720) width = 720
load plotdir.'/common.gp'

label = metric eq 'accuracy' ? 'exact-match accuracy' : (metric eq 'digit_accuracy' ? 'digit accuracy' : \
        (metric eq 'key_nll' ? 'NLL of the key digits (nats, lower is better)' : 'token accuracy'))
nll = metric eq 'key_nll'
keys = (trials > 0 && nd > 0) ? trials / nd : 0
per_cell = keys > 0 ? sprintf(' (%g key%s per cell)', keys, keys == 1 ? '' : 's') : ''

unset title
unset label 99
# margins in pixels, so the axis labels fit whatever the panel count
top = 1.0 - 110.0 / height
bottom = 95.0 / height
left = 95.0 / width
right = 1.0 - 150.0 / width
set multiplot layout rows, cols title full_title font ',12' margins left, right, bottom, top spacing 60.0 / width, 115.0 / height

set xrange [-0.5 : nl - 0.5]
set yrange [nd - 0.5 : -0.5]          # key depth 0 % (start of the prompt) at the top
set xtics (word(lenlabels, 1) 0)
do for [k = 2:nl] { set xtics add (word(lenlabels, k) k - 1) }
set ytics (word(depths, 1).'%%' 0)
do for [k = 2:nd] { set ytics add (word(depths, k).'%%' k - 1) }
set tics scale 0
set grid noxtics noytics
set border 15 lc rgb '#333333'
set xlabel 'context length (tokens)'
set ylabel 'key depth (% of prompt)'
set cbrange [0:cbmax]
if (nll) { set cbtics autofreq } else { set cbtics 0.25 }
# viridis: dark = 0, yellow = 1; perceptually even and colour-blind safe. For the key's
# NLL it runs the other way, so yellow is always the better end.
if (nll) {
    set palette defined (0 '#fde725', 0.25 '#5ec962', 0.5 '#21918c', 0.75 '#3b528b', 1 '#440154')
} else {
    set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', 0.75 '#5ec962', 1 '#fde725')
}
unset colorbox
unset key
if (trained_x >= 0) {
    set label 101 sprintf('red dashed line: trained context (%d tokens)', ctx_train) at screen 0.99, screen 0.015 \
        right font ',9' tc rgb '#555555'
    set arrow 90 from trained_x, graph 0 to trained_x, graph 1 nohead lw 4 lc rgb '#ffffff' front
    set arrow 91 from trained_x, graph 0 to trained_x, graph 1 nohead lw 2 dt 2 lc rgb '#d62728' front
}

do for [i = 1:n] {
    if (i == n) {
        # one colour bar for all panels, at the right edge
        set colorbox user origin screen (right + 25.0 / width), screen bottom size screen 0.02, screen (top - bottom)
        set cblabel label.per_cell offset 1, 0
    }
    set title legend[i] font ',12'
    if ((i - 1) % cols == 0) { set ylabel 'key depth (% of prompt)' } else { unset ylabel }
    plot data index (i - 1) using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1.0 border lc rgb '#ffffff' fc palette, \
         data index (i - 1) using 1:2:(sprintf('%.2f', $3)):((nll ? $3 > 0.45 * cbmax : $3 < 0.55) ? 0xffffff : 0x000000) \
         with labels tc rgb variable font ',10'
    unset label 100
    unset label 101
    unset label 102
}
unset multiplot
