#!/bin/sh
# make bench-llamacpp: ctxbench's prefill speed, memory and load time beside llama.cpp's on
# the same GGUF files, in one run (not part of `make test`; it never fails on a figure).
#
#   sh scripts/bench_llamacpp.sh [CTXBENCH_BINARY]        (make bench-llamacpp runs this)
#
# llama.cpp is built BESIDE the project, never inside it: in LLAMACPP_DIR (default
# ../llama.cpp-bench next to the repository root), as LLAMACPP_DIR/build-LLAMACPP_CPU.
# Its source is LLAMACPP_SRC (a llama.cpp source tree you provide; built out of tree, left
# untouched) or else LLAMACPP_DIR/src, fetched once without GitHub: the npm package
# node-llama-cpp (NODE_LLAMA_CPP, default node-llama-cpp@3.22.1) ships llama.cpp's source as
# a git bundle, llama/gitRelease.bundle; `npm pack` downloads the package and the bundle is
# cloned. A build already there is reused (the tools are rebuilt only if missing; delete
# the build folder to start again). LLAMACPP=DIR instead uses an existing llama.cpp build
# (DIR/bin/llama-bench ...) and builds nothing.
#   LLAMACPP_CPU=native (default: this CPU, as ctxbench's default ARCH=-march=native) or
#   avx2 (GGML_NATIVE=OFF with AVX, AVX2, FMA, F16C, BMI2 on and AVX-512 off: an AVX2
#   machine, to compare with ctxbench built with ARCH=-march=haswell). CPU backend only
#   (CUDA, Vulkan, Metal... off; llama.cpp's own kernels, no BLAS). The tools built:
#   llama-bench, llama-perplexity, llama-tokenize, llama-simple (the last two are what
#   scripts/compare_llamacpp.sh also needs).
#
# Figures (THREADS, default 2, threads for both programs):
#   prefill tokens/s for each case of BENCH_LLAMACPP_CASES, a space-separated list of
#   PRESET:TYPE:LENGTHS (presets and types of `ctxbench synth`, LENGTHS comma-separated).
#   Default: tinyllama:F16:512,2048,8192 tinyllama:Q8_0:512,2048,8192 llama2-7b:Q4_K:512.
#   The models are written once by `ctxbench synth` into build/bench/ (shared with make
#   bench) and reused; llama2-7b Q4_K is about 3.8 GB on disk, and the script checks free
#   disk and memory before writing or running it (skipped with a note if short).
#   llama.cpp: `llama-bench -m FILE -p N -n 0 -t THREADS -r REPS` (avg_ts, its mean over
#   REPS repetitions after one warm-up). ctxbench: `ctxbench bench --backend cpu -m FILE -c N
#   -t THREADS --repeat REPS+1 --logits LOGITS` (best of its prefills; its CPU backend, as
#   llama.cpp's build here is CPU only, even where auto would choose a GPU). Both with the same KV cache type,
#   BENCH_LLAMACPP_KV (default f16, llama.cpp's default; -ctk/-ctv on both sides). The same
#   work by default: BENCH_LLAMACPP_LOGITS=last computes the last position's logits only, as
#   llama-bench does; =all makes ctxbench also score every position (a log-probability per
#   position, as perplexity needs: 2 x dim x vocab more flops per position, about 7% on
#   TinyLlama, 3% on Llama-2-7B). Each length runs alternated, llama.cpp then ctxbench,
#   ROUNDS times (default 2), with the load average printed beside every run: the machine
#   may be shared, read the figures with it.
#   Memory and load, once per model file: peak RSS of the whole process (/usr/bin/time -v)
#   for a 512-token prefill in each program, and the model's load time as each program
#   reports it (llama.cpp: llama-simple's "load time", one token; ctxbench: bench's "load").
#   Both map the file (RSS counts the pages touched). Load times differ in what they do:
#   ctxbench's CPU backend keeps every matrix in the file's type and converts blocks of
#   rows inside each product (nothing converted at load); llama.cpp may repack weights for
#   its kernels (GGML_CPU_REPACK: an anonymous copy, in its RSS and its load time).
#   stories3M perplexity speed (case `ppl` in BENCH_LLAMACPP_CASES, included by default):
#   PPL_CHUNKS (default 40) chunks of 512 tokens of TinyStories-valid-first1000 with
#   llama-perplexity's protocol on both sides (ctxbench ppl --protocol llamacpp), tokens
#   processed per second of each whole process's wall time, and both perplexities.
# BENCH_LLAMACPP_REPS (default 1) repetitions per run. A quick run:
#   BENCH_LLAMACPP_CASES='tinyllama:Q8_0:512' make bench-llamacpp
set -eu
CB=${1:-build/ctxbench}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${CTXBENCH_SHARED:-$ROOT/../shared}
T=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
REPS=${BENCH_LLAMACPP_REPS:-1}
KV=${BENCH_LLAMACPP_KV:-f16}
LOGITS=${BENCH_LLAMACPP_LOGITS:-last}
case $KV in f32|f16|q8_0) ;; *) echo "bench_llamacpp: BENCH_LLAMACPP_KV must be f32, f16 or q8_0, got '$KV'" >&2; exit 2 ;; esac
case $LOGITS in all|last) ;; *) echo "bench_llamacpp: BENCH_LLAMACPP_LOGITS must be all or last, got '$LOGITS'" >&2; exit 2 ;; esac
CASES=${BENCH_LLAMACPP_CASES:-tinyllama:F16:512,2048,8192 tinyllama:Q8_0:512,2048,8192 llama2-7b:Q4_K:512 ppl}
CPU=${LLAMACPP_CPU:-native}
NLC=${NODE_LLAMA_CPP:-node-llama-cpp@3.22.1}
D=build/bench
say() { echo "bench_llamacpp: $*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
[ -x "$CB" ] || { say "$CB not found (make it first)"; exit 2; }

# ---- llama.cpp: an existing build, or fetch + build beside the project -------------------
if [ -n "${LLAMACPP:-}" ]; then
    if [ -d "$LLAMACPP/bin" ]; then LB="$LLAMACPP/bin"; else LB="$LLAMACPP"; fi
else
    LDIR=${LLAMACPP_DIR:-$ROOT/../llama.cpp-bench}
    mkdir -p "$LDIR"
    LDIR=$(cd "$LDIR" && pwd)
    case "$LDIR/" in "$ROOT"/*) say "LLAMACPP_DIR $LDIR is inside the project; give one beside it"; exit 2 ;; esac
    SRC=${LLAMACPP_SRC:-$LDIR/src}
    if [ -z "${LLAMACPP_SRC:-}" ] && [ ! -f "$SRC/CMakeLists.txt" ]; then
        command -v npm >/dev/null || { say "npm not found: install it, or give LLAMACPP_SRC=path/to/llama.cpp"; exit 2; }
        say "fetching llama.cpp's source from the npm package $NLC (llama/gitRelease.bundle)"
        rm -rf "$LDIR/npm" && mkdir -p "$LDIR/npm"
        (cd "$LDIR/npm" && npm pack --silent "$NLC" > pack.name)
        tgz="$LDIR/npm/$(tail -n 1 "$LDIR/npm/pack.name")"
        tar -xzf "$tgz" -C "$LDIR/npm" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
        rm -rf "$SRC.tmp" && git clone -q "$LDIR/npm/package/llama/gitRelease.bundle" "$SRC.tmp" 2>/dev/null
        cp "$LDIR/npm/package/llama/llama.cpp.info.json" "$SRC.tmp/node-llama-cpp.info.json"
        echo "$NLC" > "$SRC.tmp/node-llama-cpp.version"
        mv "$SRC.tmp" "$SRC" && rm -f "$tgz"
    fi
    [ -f "$SRC/CMakeLists.txt" ] || { say "$SRC is not a llama.cpp source tree (no CMakeLists.txt)"; exit 2; }
    case $CPU in
        native) cpu_flags="-DGGML_NATIVE=ON" ;;
        avx2) cpu_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
                         -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF" ;;
        *) say "LLAMACPP_CPU must be native or avx2, got '$CPU'"; exit 2 ;;
    esac
    BDIR="$LDIR/build-$CPU"
    LB="$BDIR/bin"
    TOOLS="llama-bench llama-perplexity llama-tokenize llama-simple"
    if [ -f "$BDIR/ctxbench-source" ] && [ "$(cat "$BDIR/ctxbench-source")" != "$(cd "$SRC" && pwd)" ]; then
        say "$BDIR was built from $(cat "$BDIR/ctxbench-source"), not $SRC: remove it or give another LLAMACPP_DIR"
        exit 2
    fi
    missing=0
    for tool in $TOOLS; do [ -x "$LB/$tool" ] || missing=1; done
    if [ $missing = 1 ]; then
        command -v cmake >/dev/null || { say "cmake not found (Debian package cmake)"; exit 2; }
        say "building llama.cpp ($CPU) from $SRC into $BDIR"
        t0=$(date +%s)
        # shellcheck disable=SC2086
        cmake -S "$SRC" -B "$BDIR" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF $cpu_flags \
            -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_HIP=OFF -DGGML_SYCL=OFF -DGGML_OPENCL=OFF \
            -DGGML_BLAS=OFF -DGGML_RPC=OFF -DGGML_BACKEND_DL=OFF \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON \
            -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF > "$BDIR.configure.log" 2>&1 ||
            { tail -n 20 "$BDIR.configure.log" >&2; say "cmake configure failed (log: $BDIR.configure.log)"; exit 1; }
        # shellcheck disable=SC2086
        cmake --build "$BDIR" -j "$(nproc)" --target $TOOLS > "$BDIR.build.log" 2>&1 ||
            { tail -n 20 "$BDIR.build.log" >&2; say "build failed (log: $BDIR.build.log)"; exit 1; }
        (cd "$SRC" && pwd) > "$BDIR/ctxbench-source"
        say "llama.cpp built in $(( $(date +%s) - t0 )) s"
    fi
fi
# llama-bench is needed; llama-simple (load time) and llama-perplexity (ppl) give "?" if absent
[ -x "$LB/llama-bench" ] || { say "$LB/llama-bench not found or not executable"; exit 2; }
[ -x /usr/bin/time ] || { say "/usr/bin/time not found (Debian package time)"; exit 2; }
mkdir -p "$D"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---- helpers --------------------------------------------------------------------------
# jf NAME < llama-bench JSONL: the named field of its first line ("name": value, strings quoted)
jf() { sed -n "1s/.*\"$1\": *\"\{0,1\}\([^\",]*\).*/\1/p"; }
rss_mb() {  # /usr/bin/time -v log -> peak RSS in MB
    sed -n 's/.*Maximum resident set size (kbytes): *\([0-9]*\).*/\1/p' "$1" | awk '{ printf "%.0f", $1 / 1024 }'
}
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "?" }'; }
wall_ts() {  # /usr/bin/time -v log, tokens -> tokens per second of the whole process's wall time
    sed -n 's/.*Elapsed (wall clock) time[^:]*: *\(.*\)/\1/p' "$1" |
        awk -F: -v n="$2" '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; if (s > 0) printf "%.1f", n / s }'
}
avail_mb() { awk '/^MemAvailable:/ { printf "%d", $2 / 1024 }' /proc/meminfo; }
free_disk_mb() { df -Pm "$1" | awk 'NR == 2 { print $4 }'; }
row() { printf '%-22s %6s  %10s %10s %6s  %8s %8s  %s\n' "$@"; }

info_line() {
    src_desc="LLAMACPP=$LB"
    if [ -z "${LLAMACPP:-}" ]; then
        src_desc="$SRC ($(cat "$SRC/node-llama-cpp.version" 2>/dev/null || echo "LLAMACPP_SRC"), commit $(
            git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')), build $BDIR"
    fi
    echo "== ctxbench vs llama.cpp: $(nproc) cores, $T threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "== llama.cpp: $src_desc"
    echo "== ctxbench: $CB ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
}

# synth PRESET TYPE -> file in build/bench (written once, reused); empty if not enough room
synth() {
    f="$D/$1-$2.gguf"
    if [ ! -s "$f" ]; then
        if ! "$CB" synth --preset "$1" --type "$2" -o "$f.tmp" >&2; then rm -f "$f.tmp"; return 1; fi
        mv "$f.tmp" "$f"
    fi
    echo "$f"
}
# the file size synth would write, in MB, from a small estimate by bytes per weight
synth_estimate_mb() {
    case $1 in llama2-7b|mistral-7b) p=6740 ;; tinyllama) p=1100 ;; qwen2-0.5b) p=500 ;; *) p=100 ;; esac
    case $2 in F32) b=4 ;; F16|BF16) b=2 ;; Q8_0) b=1.07 ;; Q6_K) b=0.83 ;; Q5_K) b=0.69 ;; Q4_0) b=0.57 ;; Q4_K) b=0.57 ;; *) b=2 ;; esac
    awk -v p="$p" -v b="$b" 'BEGIN { printf "%d", p * b }'
}

# prefill MODEL N ROUND: one llama-bench run and one ctxbench bench run, alternated
prefill() {
    m=$1 n=$2
    la=$(load)
    /usr/bin/time -v "$LB/llama-bench" -m "$m" -p "$n" -n 0 -t "$T" -r "$REPS" -ctk "$KV" -ctv "$KV" -o jsonl \
        > "$TMP/ll.json" 2> "$TMP/ll.time" || true
    ll_ts=$(jf avg_ts < "$TMP/ll.json" | awk '{ printf "%.1f", $1 }')
    ll_rss=$(rss_mb "$TMP/ll.time")
    ll_cfg="flash_attn=$(jf flash_attn < "$TMP/ll.json") type_k=$(jf type_k < "$TMP/ll.json") n_ubatch=$(jf n_ubatch < "$TMP/ll.json")"
    lb=$(load)
    /usr/bin/time -v "$CB" bench --backend cpu -m "$m" -c "$n" -t "$T" --repeat $((REPS + 1)) --logits "$LOGITS" -ctk "$KV" -ctv "$KV" \
        > "$TMP/cb.out" 2> "$TMP/cb.time" || true
    cb_ts=$(sed -n 's/^prefill n=[0-9]* *\([0-9.]*\) tokens.*/\1/p' "$TMP/cb.out")
    cb_rss=$(rss_mb "$TMP/cb.time")
    cb_load=$(sed -n 's/.*, load \([0-9.]*\)s,.*/\1/p' "$TMP/cb.out")
    [ -n "$ll_ts" ] || { echo "   llama-bench gave no figure:"; tail -n 3 "$TMP/ll.time" | sed 's/^/   /'; }
    [ -n "$cb_ts" ] || { echo "   ctxbench bench gave no figure:"; tail -n 3 "$TMP/cb.time" | sed 's/^/   /'; }
    row "$3" "$n" "${ll_ts:-?}" "${cb_ts:-?}" "$(ratio "$cb_ts" "$ll_ts")" "${ll_rss:-?}" "${cb_rss:-?}" \
        "load avg $la | $lb   llama.cpp $ll_cfg"
}

# llama.cpp's load time of MODEL as llama-simple reports it (ms), generating one token
ll_load_ms() {
    [ -x "$LB/llama-simple" ] || { echo "?"; return; }
    "$LB/llama-simple" -m "$1" -n 1 "Once upon a time" 2>&1 |
        sed -n 's/.*llama_perf_context_print: *load time = *\([0-9.]*\) ms.*/\1/p' | head -n 1
}

info_line
echo "prefill tokens/s; llama-bench -p N -n 0 (avg of $REPS after a warm-up) vs ctxbench bench -c N (best of $((REPS + 1)));"
if [ "$LOGITS" = last ]; then
    echo "both compute the last position's logits only (ctxbench bench --logits last); KV cache $KV in both."
else
    echo "ctxbench also scores every position (--logits all: output projection on all N), llama-bench only the last; KV cache $KV in both."
fi
echo "ratio = ctxbench / llama.cpp; RSS = peak of the whole process (MB); runs alternated (llama.cpp first), rounds: $ROUNDS"
for c in $CASES; do
    [ "$c" = ppl ] && continue
    preset=${c%%:*} rest=${c#*:}
    type=${rest%%:*} lens=${rest#*:}
    if [ "$preset" = "$c" ] || [ "$type" = "$rest" ] || [ -z "$lens" ]; then
        say "bad case '$c' in BENCH_LLAMACPP_CASES (PRESET:TYPE:N[,N...] or ppl)"; exit 2
    fi
    est=$(synth_estimate_mb "$preset" "$type")
    echo
    echo "== $preset $type (file about $est MB), lengths $lens"
    if [ ! -s "$D/$preset-$type.gguf" ] && [ "$(free_disk_mb "$D")" -lt $((est + 1024)) ]; then
        echo "   skipped: $(free_disk_mb "$D") MB free on disk for a file of about $est MB"; continue
    fi
    if [ "$(avail_mb)" -lt $((est * 3 / 2 + 1024)) ]; then
        echo "   skipped: $(avail_mb) MB of memory available, about $((est * 3 / 2 + 1024)) MB needed"; continue
    fi
    m=$(synth "$preset" "$type") || { echo "   skipped: ctxbench synth failed"; continue; }
    row "round" "N" "llama.cpp" "ctxbench" "ratio" "RSS ll" "RSS cb" "load average before each run"
    for n in $(echo "$lens" | tr ',' ' '); do
        r=1
        while [ $r -le "$ROUNDS" ]; do prefill "$m" "$n" "$r"; r=$((r + 1)); done
    done
    echo "load time: llama.cpp (llama-simple) $(ll_load_ms "$m" | awk '{ printf "%.0f", $1 }') ms;" \
        "ctxbench (bench's load) $(awk -v s="${cb_load:-0}" 'BEGIN { printf "%.0f", s * 1000 }') ms"
done

# ---- stories3M perplexity speed: llama-perplexity's own protocol on both sides ------------
case " $CASES " in *" ppl "*)
    m="$SHARED/models/stories3M.gguf"
    text="$SHARED/datasets/tinystories/TinyStories-valid-first1000.txt"
    chunks=${PPL_CHUNKS:-40}
    echo
    echo "== stories3M perplexity, $chunks chunks of 512 (llama-perplexity's protocol: BOS per chunk, second half scored;"
    echo "   ctxbench ppl --protocol llamacpp), tokens processed per second of each process's wall time (load and"
    echo "   tokenization included: llama-perplexity prints no total); llama.cpp KV cache F16 (its default)"
    row "round" "N" "llama.cpp" "ctxbench" "ratio" "RSS ll" "RSS cb" "ppl llama.cpp | ctxbench, load average"
    r=1
    while [ $r -le "$ROUNDS" ]; do
        la=$(load)
        /usr/bin/time -v "$LB/llama-perplexity" -m "$m" -f "$text" -c 512 --chunks "$chunks" -t "$T" \
            > "$TMP/llp.out" 2>&1 || true
        ll_ts=$(wall_ts "$TMP/llp.out" $((chunks * 512)))
        ll_ppl=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$TMP/llp.out")
        ll_rss=$(rss_mb "$TMP/llp.out")
        lb=$(load)
        /usr/bin/time -v "$CB" ppl --backend cpu -m "$m" -f "$text" -c 512 --chunks "$chunks" --protocol llamacpp -t "$T" \
            > "$TMP/cbp.out" 2> "$TMP/cbp.err" || true
        cb_ts=$(wall_ts "$TMP/cbp.err" $((chunks * 512)))
        cb_ppl=$(sed -n 's/.* ppl \([0-9.]*\) .*/\1/p' "$TMP/cbp.out")
        cb_rss=$(rss_mb "$TMP/cbp.err")
        row "$r" 512 "${ll_ts:-?}" "${cb_ts:-?}" "$(ratio "$cb_ts" "$ll_ts")" "${ll_rss:-?}" "${cb_rss:-?}" \
            "ppl ${ll_ppl:-?} | ${cb_ppl:-?}   load avg $la | $lb"
        r=$((r + 1))
    done ;;
esac
echo
echo "bench_llamacpp: done (figures only, nothing asserted)"
