#!/bin/sh
# The checks of a retrieval model (models/README.md), all run through ctxbench's own tasks:
#   inside its trained length (1x): passkey in each prompt variant, 10 depths x INSIDE_TRIALS
#   trials (default 20: one miss in 5 trials would read as 80% at that depth);
#   first-sentence recall, 20 samples; perplexity of it and of BASE on TinyStories valid;
#   beyond it (1x..32x): passkey and first-sentence recall for every method.
# usage: scripts/eval_model.sh MODEL OUTDIR [BASE]     (BASE: ../shared/models/stories3M.gguf)
# Writes OUTDIR/inside.h5, OUTDIR/beyond.h5 and OUTDIR/report.md (the tables).
set -eu
[ $# -ge 2 ] || { echo "usage: scripts/eval_model.sh MODEL OUTDIR [BASE]" >&2; exit 2; }
MODEL=$1
OUT=$2
SHARED=${CTXBENCH_SHARED:-../shared}
BASE=${3:-$SHARED/models/stories3M.gguf}
BIN=${CTXBENCH_BIN:-build/ctxbench}
INSIDE_TRIALS=${INSIDE_TRIALS:-20}
BEYOND_OPTS=${BEYOND_OPTS:-passkey:depths=5,trials=1;first_sentence:samples=2}
mkdir -p "$OUT"
export CTXBENCH_SHARED="$SHARED"
for v in yarn longlora selfextend; do
    "$BIN" sweep -m "$MODEL" -o "$OUT/inside.h5" --methods baseline --tasks passkey --lengths 1x \
        --task-opt "passkey:variant=$v,depths=10,trials=$INSIDE_TRIALS"
done
"$BIN" sweep -m "$MODEL" -o "$OUT/inside.h5" --methods baseline --tasks first_sentence --lengths 1x \
    --task-opt first_sentence:samples=20
"$BIN" sweep -m "$MODEL" -o "$OUT/inside.h5" --methods baseline --tasks ppl --lengths 1x
"$BIN" sweep -m "$BASE" -o "$OUT/inside.h5" --methods baseline --tasks ppl,passkey,first_sentence --lengths 1x \
    --task-opt "passkey:depths=10,trials=$INSIDE_TRIALS;first_sentence:samples=20"
"$BIN" sweep -m "$MODEL" -o "$OUT/beyond.h5" --methods all --tasks passkey,first_sentence --lengths 1x:32x \
    --task-opt "$BEYOND_OPTS"
{
    echo "# $(basename "$MODEL")"
    echo
    echo "## Inside the trained length"
    "$BIN" report "$OUT/inside.h5"
    "$BIN" report "$OUT/inside.h5" --metric digit_accuracy
    echo
    echo "## Beyond it"
    "$BIN" report "$OUT/beyond.h5"
} > "$OUT/report.md"
echo "wrote $OUT/report.md" >&2
