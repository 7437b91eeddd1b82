#!/bin/sh
# Weights in their file's type (the default: dequantized a block at a time inside each
# product) against the F32 copy made at load (--backend-params f32_budget=...), on the
# same model in one run, the two alternated ROUNDS times: prefill tokens/s per length,
# load time, and the process's peak RSS (/usr/bin/time -v). The numbers of both are the
# same to the last bit (tests/test_model.c); this is their cost. The process's CPU seconds
# (user + system, load and prefills together) are printed too: on a machine shared with
# other work they vary less than the rates.
# Usage: bench_weights.sh CTXBENCH MODEL LENGTHS [ROUNDS] (THREADS from the environment)
set -eu
BIN=$1
MODEL=$2
LENGTHS=$3
ROUNDS=${4:-1}
T=${THREADS:-$(nproc)}
TMP=$(mktemp)
trap 'rm -f "$TMP"' EXIT INT TERM
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for mode in file-type f32-at-load; do
        if [ "$mode" = f32-at-load ]; then extra="--backend-params f32_budget=1000000000000"; else extra=; fi
        # shellcheck disable=SC2086 # extra is words
        /usr/bin/time -v "$BIN" bench -t "$T" -m "$MODEL" -c "$LENGTHS" $extra > "$TMP.out" 2> "$TMP"
        load=$(sed -n 's/.*load \([0-9.]*\)s.*/\1/p' "$TMP.out")
        rates=$(sed -n 's/^prefill n=\([0-9]*\) *\([0-9.]*\) tokens\/s.*cpu \([0-9.]*\)s.*/\1:\2 (cpu \3s)/p' "$TMP.out" |
                tr '\n' ' ')
        rss=$(sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$TMP")
        cpu=$(awk '/User time|System time/ {s += $NF} END {printf "%.1f", s}' "$TMP")
        printf '%-12s round %d: load %5ss  peak RSS %6d MB  CPU %6ss  prefill tokens/s (n:rate (its CPU)) %s load avg %s\n' \
            "$mode" "$r" "$load" $((rss / 1024)) "$cpu" "$rates" "$(cut -d' ' -f1 /proc/loadavg)"
    done
    r=$((r + 1))
done
rm -f "$TMP.out"
