#!/bin/sh
# Cross-checks ctxbench against an existing llama.cpp build (not run by `make test`).
#
#   LLAMACPP=/path/to/llama.cpp/build sh scripts/compare_llamacpp.sh [CTXBENCH_BINARY]
#
# LLAMACPP is a llama.cpp CMake build directory holding bin/llama-tokenize,
# bin/llama-simple, bin/llama-perplexity and bin/llama-bench (or a directory holding
# those binaries directly). This script builds nothing; it runs what is there.
# CTXBENCH_BINARY defaults to build/ctxbench; CTXBENCH_SHARED (default ../shared) names
# the data directory. THREADS (default 2) is passed to both programs.
#
# Checks, on stories260K.gguf and stories3M.gguf (each one prints PASS or FAIL):
#   1. tokenization: the ids of two texts (BOS included) are identical;
#   2. greedy generation: 60 tokens from "Once upon a time" give the same text;
#   3. perplexity of the first 512-token window (BOS + 511 text tokens, all 511
#      predictions scored: ctxbench's protocol) agrees within 1e-4 + 1e-5 x PPL
#      (llama-perplexity prints 4 decimals).
#      llama-perplexity has no flag for this protocol, but its strided mode with
#      stride 511 scores exactly these predictions in its first chunk. That mode
#      widens the context by stride/2, so `-c 257 -b 257 --ppl-stride 511` gives a
#      512-token window and one sequence per batch. The KV cache is forced to F32
#      (-ctk f32 -ctv f32): llama.cpp's default F16 cache alone moves per-token
#      log-probabilities by up to about 1e-2 on these models.
#   (llama.cpp's own protocol, BOS per chunk and only the second half of each chunk
#   scored, cannot be reproduced with the ctxbench command line; it needs a program
#   against libctxbench.a.)
#
# With SPEED=1 it also times a 512-token prefill of a TinyLlama-shape Q8_0 model (1.2 GB,
# written once into build/bench/) with `llama-bench -p 512 -n 0` and `ctxbench bench -c 512`,
# alternated, printing tokens/s, the ratio, peak RSS and the load average: that is
# scripts/bench_llamacpp.sh (make bench-llamacpp) on this build with
# BENCH_LLAMACPP_CASES=tinyllama:Q8_0:512; it has the other cases and says what the
# figures mean (ctxbench also scores every position, llama-bench only the last).
# Figures are printed, never asserted; on a shared machine read the load average.
set -eu
: "${LLAMACPP:?set LLAMACPP to a llama.cpp build directory}"
CB=${1:-build/ctxbench}
SHARED=${CTXBENCH_SHARED:-../shared}
T=${THREADS:-2}
if [ -d "$LLAMACPP/bin" ]; then LB="$LLAMACPP/bin"; else LB="$LLAMACPP"; fi
for tool in llama-tokenize llama-simple llama-perplexity; do
    [ -x "$LB/$tool" ] || { echo "compare_llamacpp: $LB/$tool not found or not executable" >&2; exit 2; }
done
[ -x "$CB" ] || { echo "compare_llamacpp: $CB not found (make it first)" >&2; exit 2; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
verdict() {  # name ok(0/1) detail
    if [ "$2" -eq 0 ]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; fails=$((fails + 1)); fi
}

PROMPT="Once upon a time"
TEXTS="$SHARED/datasets/tinystories/stories_sampled.txt $SHARED/datasets/children/alice_in_wonderland.txt"

for name in stories260K stories3M; do
    m="$SHARED/models/$name.gguf"

    # 1. tokenization (llama-tokenize --ids prints a Python-style list)
    for text in $TEXTS; do
        "$LB/llama-tokenize" -m "$m" -f "$text" --ids --log-disable 2>/dev/null |
            tr -d '[],' | tr ' ' '\n' | grep -v '^$' > "$TMP/ll.ids"
        "$CB" tokenize --bos --ids-only -f "$text" "$m" | tr ' ' '\n' | grep -v '^$' > "$TMP/cb.ids"
        ok=0; cmp -s "$TMP/ll.ids" "$TMP/cb.ids" || ok=1
        verdict "$name tokenize $(basename "$text")" $ok \
            "llama.cpp $(wc -l < "$TMP/ll.ids") ids, ctxbench $(wc -l < "$TMP/cb.ids") ids"
    done

    # 2. greedy generation; llama-simple prints the BOS piece before the prompt
    ll_text=$("$LB/llama-simple" -m "$m" -n 60 "$PROMPT" 2>/dev/null | sed '1s/^<s> *//')
    cb_text=$("$CB" generate -m "$m" -p "$PROMPT" -n 60 -t "$T" 2>/dev/null)
    ok=0; [ "$ll_text" = "$cb_text" ] || ok=1
    verdict "$name greedy 60 tokens" $ok "$(printf '%s' "$cb_text" | head -c 70 | tr '\n' ' ')..."
    if [ $ok -ne 0 ]; then printf 'llama.cpp: %s\nctxbench:  %s\n' "$ll_text" "$cb_text"; fi

    # 3. perplexity of the first 512-token window, every prediction scored
    text="$SHARED/datasets/tinystories/stories_sampled.txt"
    ll_ppl=$("$LB/llama-perplexity" -m "$m" -f "$text" -c 257 -b 257 --ppl-stride 511 --chunks 1 -t "$T" \
        -ctk f32 -ctv f32 2>&1 | sed -n 's/^\[1\]\([0-9.]*\).*/\1/p')
    cb_ppl=$("$CB" ppl -m "$m" -f "$text" -c 512 --chunks 1 -t "$T" 2>/dev/null |
        sed -n 's/.* ppl \([0-9.]*\) .*/\1/p')
    ok=1
    if [ -n "$ll_ppl" ] && [ -n "$cb_ppl" ]; then
        ok=$(awk -v a="$ll_ppl" -v b="$cb_ppl" 'BEGIN { d = a - b; if (d < 0) d = -d; print (d <= 1e-4 + 1e-5 * a) ? 0 : 1 }')
    fi
    verdict "$name ppl window 0 (512)" "$ok" "llama.cpp ${ll_ppl:-?}, ctxbench ${cb_ppl:-?}"
done

if [ "${SPEED:-0}" = 1 ]; then
    LLAMACPP="$LLAMACPP" THREADS="$T" CTXBENCH_SHARED="$SHARED" BENCH_LLAMACPP_CASES=tinyllama:Q8_0:512 \
        sh "$(dirname "$0")/bench_llamacpp.sh" "$CB" || echo "compare_llamacpp: the speed comparison did not run to its end"
fi

echo "compare_llamacpp: $fails check(s) failed"
[ "$fails" -eq 0 ]
