#!/bin/sh
# make bench: speed and memory figures, printed, never asserted. Everything is measured
# in this one run so figures can be read as ratios (machines here are shared and noisy).
# Synthetic models are written once into build/bench/ and reused.
set -eu
BIN=${1:-build/ctxbench}
ATTN=${2:-build/bench_attn}
SHARED=${CTXBENCH_SHARED:-../shared}
T=${THREADS:-$(nproc)}
D=build/bench
mkdir -p "$D"

synth() {  # preset type -> file
    f="$D/$1-$2.gguf"
    [ -s "$f" ] || "$BIN" synth --preset "$1" --type "$2" -o "$f" >&2
    echo "$f"
}

echo "== ctxbench bench: $(nproc) cores, $T threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "== ceiling: OpenBLAS sgemm"
"$BIN" bench --sgemm -t "$T"

echo "== attention kernel alone (head_dim 64, 32 heads / 4 KV heads, n = 2048 causal)"
"$ATTN" "$T"

# Every backend's own kernels on the same shape, each against its own matrix-product
# rate. OpenCL on PoCL runs on this CPU: its figures show that the kernels run, not speed.
echo "== backends: matrix product and attention kernels, shape (a) F16"
for be in $("$BIN" info --backend all | sed -n 's/^\([a-z0-9_]*\): device 0:.*/\1/p'); do
    "$BIN" bench --kernels --backend "$be" -t "$T" -m "$(synth small F16)" || true
done

for type in F16 Q8_0; do
    echo "== shape (a) dim 512 / 8 layers / 8 heads / 4 KV heads / ffn 1536, $type"
    "$BIN" bench -t "$T" -m "$(synth small "$type")" -c 512,2048,8192
    echo "== shape (b) TinyLlama-1.1B (dim 2048 / 22 layers / 32 heads / 4 KV heads / ffn 5632), $type"
    "$BIN" bench -t "$T" -m "$(synth tinyllama "$type")" -c 512,2048,8192
done
echo "== stories260K"
"$BIN" bench -t "$T" -m "$SHARED/models/stories260K.gguf" -c 512,2048,8192
echo "== stories3M"
"$BIN" bench -t "$T" -m "$SHARED/models/stories3M.gguf" -c 512,2048,8192

# Peak RSS, one process per length: the growth from 8k to 32k should equal the KV cache
# growth (layers x 24576 positions x kv_dim x 2 (K and V) x 4 bytes), nothing quadratic.
echo "== memory: peak RSS at 8192 and 32768 tokens, shape (a) F16"
m=$(synth small F16)
r8=$("$BIN" bench -t "$T" -m "$m" -c 8192 | sed -n 's/.*peak RSS \([0-9]*\) MB.*/\1/p')
r32=$("$BIN" bench -t "$T" -m "$m" -c 32768 | sed -n 's/.*peak RSS \([0-9]*\) MB.*/\1/p')
kv=$(( 8 * 24576 * 256 * 2 * 4 / 1048576 ))
echo "peak RSS 8192: ${r8} MB, 32768: ${r32} MB, growth $((r32 - r8)) MB; KV cache growth ${kv} MB (ratio $(awk "BEGIN{printf \"%.2f\", ($r32-$r8)/$kv}"))"

# KV cache types (README "KV cache types"): perplexity and its rate with each type.
echo "== KV cache types: stories3M perplexity, 100 windows of 512 tokens"
for kv in f32 f16 q8_0; do
    "$BIN" ppl -t "$T" -m "$SHARED/models/stories3M.gguf" -f "$SHARED/datasets/tinystories/stories_sampled.txt" \
        -c 512 --chunks 100 -ctk "$kv" -ctv "$kv" 2>/dev/null
done

# Weights in their file's type (the default) against an F32 copy made at load: the same
# numbers (tests/test_model.c), this is their cost. BENCH_WEIGHT_ROUNDS alternations.
echo "== weights in the file's type vs an F32 copy at load (alternated; load time, peak RSS, prefill)"
for type in Q8_0 F16; do
    echo "-- TinyLlama shape $type"
    sh "$(dirname "$0")/bench_weights.sh" "$BIN" "$(synth tinyllama "$type")" 512,2048 "${BENCH_WEIGHT_ROUNDS:-1}"
done
echo "-- stories3M (F32 in the file: the same path both ways)"
sh "$(dirname "$0")/bench_weights.sh" "$BIN" "$SHARED/models/stories3M.gguf" 512,2048 "${BENCH_WEIGHT_ROUNDS:-1}"

# At depth (BENCH_DEPTH=1; minutes, and ~21 GiB free for the 7B shape): the last chunk of
# a 32768-token window over a cache filled with synthetic keys and values, not computed.
if [ "${BENCH_DEPTH:-0}" = 1 ]; then
    avail_mib=$(awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)
    echo "== at depth: TinyLlama F16, f16 KV cache, 512 tokens at position 32256"
    /usr/bin/time -f "peak RSS %M KB" "$BIN" bench -t "$T" -m "$(synth tinyllama F16)" -c 512 --depth 32256 -ctk f16 -ctv f16
    m7=$(synth llama2-7b Q4_K)
    echo "== Llama-2-7B shape Q4_K, 32768-token window, f16 KV cache: the dry run, then 512 tokens at position 32256"
    "$BIN" sweep -m "$m7" --tasks ppl --methods baseline --lengths 32768 --task-opt ppl:max_windows=1 -ctk f16 \
        -ctv f16 --mem-limit 24576 -t "$T" -o "$D/never.h5" --dry-run | grep -E '^memory|L=32768'
    if [ "$avail_mib" -gt 21504 ]; then
        /usr/bin/time -f "peak RSS %M KB" "$BIN" bench -t "$T" -m "$m7" -c 512 --depth 32256 -ctk f16 -ctv f16
    else
        echo "skipped: ${avail_mib} MiB available, the run needs about 20 GiB"
    fi
else
    echo "== at depth: skipped (BENCH_DEPTH=1 runs the last chunk of a 32k window, TinyLlama F16 and Llama-2-7B Q4_K)"
fi

echo "== tokenizer: encode the 1 MB TinyStories sample (whole process, stories260K vocabulary)"
f="$SHARED/datasets/tinystories/stories_sampled.txt"
/usr/bin/time -f "%e s wall, %M KB peak RSS for $(wc -c < "$f") bytes" \
    "$BIN" tokenize --ids-only -f "$f" "$SHARED/models/stories260K.gguf" > /dev/null

# The results store: 10,000 cells written one by one (append + sync each); the time per cell
# stays flat as the file grows (the copy-per-cell store copied the whole file each time: at
# the end about what the one fold below costs, per cell).
echo "== results store: time per cell written, 10,000 cells"
"$BIN" bench --store "${STORE_CELLS:-10000}" --store-dir "$D"

echo "== CPU time of a cell, idle vs loaded (every core busy with another process)"
sh "$(dirname "$0")/bench_load.sh" "$BIN" 3
