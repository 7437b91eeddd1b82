#!/bin/sh
# Two builds of ctxbench (e.g. this machine's CPU and the baseline x86-64 target) must
# give the same results to the last bit: the engine's own vector code does the same
# arithmetic in the same order on every target. A few cells of perplexity and passkey
# (the attention kernel with and without SelfExtend and a sliding window) are run with
# each binary and their exported values compared as text (shortest exact form).
# Usage: check_same_results.sh CTXBENCH_A CTXBENCH_B
# MODEL=FILE runs another model than stories260K (e.g. a quantized synthetic one, to check
# that weights dequantized per block give the numbers of weights dequantized at load);
# A_OPTS / B_OPTS are extra sweep options for each binary (e.g. -ctk f16).
set -eu
A=$1
B=$2
SHARED=${CTXBENCH_SHARED:-../shared}
MODEL=${MODEL:-$SHARED/models/stories260K.gguf}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
for bin in "$A" "$B"; do
    tag=$(echo "$bin" | tr '/' '_')
    if [ "$bin" = "$A" ]; then opts=${A_OPTS:-}; else opts=${B_OPTS:-}; fi
    # shellcheck disable=SC2086 # the options are words
    "$bin" sweep $opts -m "$MODEL" --methods baseline,selfextend,swa,yarn \
        --tasks ppl,passkey --lengths 1024 --task-opt 'ppl:max_tokens=4096;passkey:depths=1,trials=1' \
        -t 2 -o "$TMP/$tag.h5" --cache-dir "$TMP/cache-$tag" > "$TMP/$tag.log" 2>&1 ||
        { cat "$TMP/$tag.log" >&2; exit 1; }
    "$A" export "$TMP/$tag.h5" -o "$TMP/$tag.csv"
    # the figures only: timings differ by design
    python3 -c 'import csv,sys
for r in csv.DictReader(open(sys.argv[1])):
    if r["metric"] not in ("wall_s", "tokens_per_s", "peak_rss_mb"):
        print(r["method"], r["task"], r["length"], r["metric"], r["value"], r["status"])' "$TMP/$tag.csv" |
        sort > "$TMP/$tag.values"
done
ta=$(echo "$A" | tr '/' '_'); tb=$(echo "$B" | tr '/' '_')
if ! cmp -s "$TMP/$ta.values" "$TMP/$tb.values"; then
    echo "check_same_results: $A and $B give different results:" >&2
    diff "$TMP/$ta.values" "$TMP/$tb.values" >&2 || true
    exit 1
fi
echo "check_same_results: $A and $B agree on all $(wc -l < "$TMP/$ta.values") values, bit for bit"
