#!/bin/sh
# CPU time of one cell on an idle machine and while other processes load every core
# (one busy loop per core). Spinning workers that wait for descheduled peers would
# show here as extra CPU under load; the target is loaded <= idle x 1.3. Runs are
# alternated (idle, loaded, idle, ...) and the medians are printed with their ratio.
# Usage: bench_load.sh CTXBENCH [PAIRS]
set -eu
BIN=${1:-build/ctxbench}
PAIRS=${2:-3}
SHARED=${CTXBENCH_SHARED:-../shared}
T=${THREADS:-$(nproc)}
MODEL=$SHARED/models/stories3M.gguf
TEXT=$SHARED/datasets/tinystories/TinyStories-valid-first1000.txt
PPL="$BIN ppl -m $MODEL -f $TEXT -c 2048 --chunks 2 -t $T"
# decoding: thousands of small parallel runs, where waiting for a descheduled peer costs most
GEN="$BIN generate -m $MODEL -p 'Once upon a time' -n 400 -t $T"
TMP=$(mktemp -d)
trap 'for p in $(cat "$TMP/pids" 2>/dev/null); do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT INT TERM

cpu_of() {   # runs the cell, prints user+sys seconds and wall seconds
    /usr/bin/time -f '%U %S %e' -o "$TMP/t" sh -c "$CELL" >/dev/null 2>&1
    awk '{printf "%.2f %.2f\n", $1 + $2, $3}' "$TMP/t"
}

median() { sort -n | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

measure() {   # label: alternated idle and loaded runs of $CELL, medians and ratio
    : > "$TMP/idle"; : > "$TMP/loaded"
    i=0
    while [ $i -lt "$PAIRS" ]; do
        cpu_of >> "$TMP/idle"
        : > "$TMP/pids"
        for c in $(seq "$(nproc)"); do sh -c 'while :; do :; done' & echo $! >> "$TMP/pids"; done
        cpu_of >> "$TMP/loaded"
        for p in $(cat "$TMP/pids"); do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        i=$((i + 1))
    done
    ci=$(cut -d' ' -f1 "$TMP/idle" | median); wi=$(cut -d' ' -f2 "$TMP/idle" | median)
    cl=$(cut -d' ' -f1 "$TMP/loaded" | median); wl=$(cut -d' ' -f2 "$TMP/loaded" | median)
    echo "$1, $T threads, medians of $PAIRS alternated runs:"
    echo "  idle:   CPU ${ci} s, wall ${wi} s"
    echo "  loaded: CPU ${cl} s, wall ${wl} s ($(nproc) busy loops beside it)"
    echo "  CPU loaded / idle: $(awk "BEGIN{printf \"%.2f\", $cl/$ci}") (target <= 1.30)"
}

CELL=$PPL measure "ppl cell (stories3M, 2048 tokens x 2 windows)"
CELL=$GEN measure "decode (stories3M, generate 400 tokens)"
