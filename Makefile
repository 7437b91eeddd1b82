# ctxbench build. `make` builds build/ctxbench; `make test` runs the Criterion tests;
# `make bench` prints speed and memory figures (`make bench-llamacpp`: beside llama.cpp's);
# `make check-asan` runs the tests under AddressSanitizer + UBSan. Every .c in harness/*/,
# backends/*/, methods/ and tasks/ is compiled; the method, task and backend registries are
# generated from the files and folders present (see methods/README.md). harness/ has one
# folder per layer, and scripts/check_layers.sh (run by make test) keeps each layer to the
# layers below it.

CC      ?= cc
SHARED  ?= ../shared
BUILD   ?= build
# Debian's Python, which has python3-torch (scripts/train_model.py and its exporter test);
# a python3 earlier in PATH (a virtualenv, pyenv) may not.
PYTHON  ?= /usr/bin/python3
# The target CPU. The default tunes for this machine; every source also builds, with the
# same results, for any x86-64 (`make test-baseline` builds and tests with BASELINE_ARCH,
# as CI does) and for aarch64 (`make check-cross`). OPT is the optimisation level plus
# the target; sanitizer builds add their flags to it.
ARCH    ?= -march=native
BASELINE_ARCH ?= $(if $(filter x86_64,$(shell uname -m)),-march=x86-64-v2,-march=armv8-a)
OPT     ?= -O2 $(ARCH)
WARN    := -Wall -Wextra -Werror
PKGS    := hdf5 openblas libcjson
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
# The project's flags; CPPFLAGS, CFLAGS and LDLIBS given by the user come on top.
# A fresh machine installs the Debian packages first (scripts/install_deps.sh; again when the
# script changes), before anything below looks for what is installed. Not for `make clean`.
DEPS_GROUPS := $(if $(filter 0,$(OPENCL)),,opencl)
ifeq ($(filter clean deps,$(MAKECMDGOALS)),)
ifneq ($(shell [ -f $(BUILD)/deps.stamp ] && [ ! scripts/install_deps.sh -nt $(BUILD)/deps.stamp ] && echo ok),ok)
DEPS_RC := $(shell sh scripts/install_deps.sh $(DEPS_GROUPS) >&2 && mkdir -p $(BUILD) && touch $(BUILD)/deps.stamp && echo ok)
$(if $(DEPS_RC),,$(error scripts/install_deps.sh failed (see above)))
endif
endif
# The OpenCL backend (backends/opencl) is built where the OpenCL headers and CLBlast are
# installed (install_deps.sh installs them, and PoCL); OPENCL=0 leaves it out.
OPENCL ?= $(if $(wildcard /usr/include/CL/cl.h),$(if $(wildcard /usr/include/clblast_c.h),1,0),0)
LAYER_DIRS  := $(sort $(patsubst %/,%,$(dir $(wildcard harness/*/*.[ch] backends/*/*.[ch]))))
CTX_CPPFLAGS := -D_GNU_SOURCE $(addprefix -I,$(LAYER_DIRS)) -I$(BUILD) \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null || \
                    echo -I/usr/include/hdf5/serial -I/usr/include/$(MULTIARCH)/openblas-pthread)
CTX_CFLAGS   := -std=c11 $(OPT) $(WARN) -g -pthread
CTX_LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || \
                    echo -L/usr/lib/$(MULTIARCH)/hdf5/serial -lhdf5 -lopenblas -lcjson) \
            $(if $(filter 1,$(OPENCL)),-lclblast -lOpenCL) -lcsv -lnettle -lm -pthread
ALL_CPPFLAGS = $(CTX_CPPFLAGS) $(CPPFLAGS)
ALL_CFLAGS   = $(CTX_CFLAGS) $(CFLAGS)
ALL_LDLIBS   = $(CTX_LDLIBS) $(LDLIBS)

HARNESS_SRC := $(filter-out harness/cli/main.c,$(wildcard harness/*/*.c))
BACKEND_DIRS := $(filter-out $(if $(filter 1,$(OPENCL)),,backends/opencl),$(patsubst %/,%,$(sort $(dir $(wildcard backends/*/*.c)))))
BACKEND_SRC := $(foreach d,$(BACKEND_DIRS),$(wildcard $(d)/*.c))
METHOD_SRC  := $(wildcard methods/*.c)
TASK_SRC    := $(wildcard tasks/*.c)
GEN_SRC     := $(BUILD)/gen/registry_list.c
LIB_SRC     := $(HARNESS_SRC) $(BACKEND_SRC) $(METHOD_SRC) $(TASK_SRC)
ALL_HDR     := $(wildcard harness/*/*.h backends/*/*.h methods/*.h tasks/*.h)
LIB_OBJ     := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/gen/registry_list.o
TEST_SRC    := $(wildcard tests/test_*.c)
TEST_BIN    := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))

.PHONY: all test test-baseline check-cross bench bench-llamacpp check-asan clean sweep sweep-dry-run plots deps run fuzz fuzz-ci fuzz-build fuzz-bins train-model
all: $(BUILD)/ctxbench

# Installs missing Debian packages (apt-get as root; otherwise says what to install).
# Every compile waits for it (order-only), so a fresh machine builds with one command.
deps:
	@sh scripts/install_deps.sh $(DEPS_GROUPS)
$(BUILD)/deps.stamp: scripts/install_deps.sh
	@sh scripts/install_deps.sh $(DEPS_GROUPS)
	@mkdir -p $(dir $@) && touch $@

$(BUILD)/obj/%.o: %.c $(ALL_HDR) | $(GEN_SRC) $(BUILD)/deps.stamp
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# The registry list: one entry per methods/*.c and tasks/*.c file and backends/* folder. Regenerated
# whenever the set of files changes (the list of names is its prerequisite).
$(BUILD)/gen/registry_names: FORCE
	@mkdir -p $(dir $@)
	@echo "$(notdir $(basename $(METHOD_SRC))) | $(notdir $(basename $(TASK_SRC))) | $(notdir $(BACKEND_DIRS))" > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp
$(GEN_SRC): $(BUILD)/gen/registry_names scripts/gen_registry.sh
	sh scripts/gen_registry.sh "$(METHOD_SRC)" "$(TASK_SRC)" "$(BACKEND_DIRS)" > $@
FORCE:
$(BUILD)/obj/gen/registry_list.o: $(GEN_SRC) harness/backend/backend.h harness/method/method.h harness/task/task.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# The OpenCL kernels' source as a C string, compiled into the backend.
$(BUILD)/gen/opencl_kernels.h: backends/opencl/kernels.cl
	@mkdir -p $(dir $@)
	sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$$/\\n"/' $< > $@
$(BUILD)/obj/backends/opencl/opencl_backend.o: $(BUILD)/gen/opencl_kernels.h

$(BUILD)/libctxbench.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ctxbench: $(BUILD)/obj/harness/cli/main.o $(BUILD)/libctxbench.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/libctxbench.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -Itests $(ALL_CFLAGS) -o $@ $< $(BUILD)/libctxbench.a $(ALL_LDLIBS) -lcriterion

# The tokenizer (with the GGUF reader it needs) as a shared library, so that
# scripts/train_model.py tokenizes its training data with ctxbench's own tokenizer (ctypes).
TOKLIB_SRC := harness/model/tokenizer.c harness/base/unicode.c harness/gguf/gguf.c harness/base/input.c \
              harness/gguf/quant.c
$(BUILD)/libctxbench_tok.so: $(TOKLIB_SRC) $(ALL_HDR) | $(BUILD)/deps.stamp
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -fPIC -shared -Wl,--no-undefined -o $@ $(TOKLIB_SRC) -lm

# Tests find ../shared through CTXBENCH_SHARED and the built binary through CTXBENCH_BIN;
# tests that build a copy of the tree build it as this build is built (CTXBENCH_CC,
# CTXBENCH_ARCH, CTXBENCH_CFLAGS).
test: $(BUILD)/ctxbench $(TEST_BIN)
	@sh scripts/check_layers.sh
	@fail=0; for t in $(TEST_BIN); do \
	  echo "== $$t"; \
	  CTXBENCH_SHARED=$(abspath $(SHARED)) CTXBENCH_BIN=$(abspath $(BUILD)/ctxbench) \
	  CTXBENCH_CC='$(CC)' CTXBENCH_ARCH='$(ARCH)' CTXBENCH_CFLAGS='$(CFLAGS)' CTXBENCH_PYTHON='$(PYTHON)' \
	    OPENBLAS_NUM_THREADS=1 $$t --jobs=2 || fail=1; \
	done; exit $$fail

# Criterion counts a test that leaks (or whose ctxbench child reports an error) as passed:
# the sanitizers' reports, from the test processes and every ctxbench they start, go to
# files under build-asan/sanitizer/, and scripts/check_sanitizer_logs.sh judges them (a
# leak does not change an exit status: Criterion's own runner keeps a block until exit).
SAN_LOGS := $(abspath build-asan/sanitizer)
check-asan:
	@rm -rf $(SAN_LOGS) && mkdir -p $(SAN_LOGS)
	@ASAN_OPTIONS=log_path=$(SAN_LOGS)/asan LSAN_OPTIONS=exitcode=0:suppressions=$(abspath tests/lsan.supp) \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(SAN_LOGS)/ubsan \
	$(MAKE) BUILD=build-asan OPT="-O1 $(ARCH) -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" test; \
	rc=$$?; sh scripts/check_sanitizer_logs.sh $(SAN_LOGS) && exit $$rc

# The same suite built for the baseline target instead of this machine's CPU; then both
# builds run the same cells and must agree to the last bit (with f32 caches on stories260K,
# and with f16 keys and q8_0 values on stories3M).
test-baseline: $(BUILD)/ctxbench
	$(MAKE) BUILD=build-baseline ARCH='$(BASELINE_ARCH)' test
	CTXBENCH_SHARED=$(abspath $(SHARED)) sh scripts/check_same_results.sh $(BUILD)/ctxbench build-baseline/ctxbench
	CTXBENCH_SHARED=$(abspath $(SHARED)) MODEL=$(abspath $(SHARED))/models/stories3M.gguf A_OPTS='-ctk f16 -ctv q8_0' \
	  B_OPTS='-ctk f16 -ctv q8_0' sh scripts/check_same_results.sh $(BUILD)/ctxbench build-baseline/ctxbench

# Every source compiles for aarch64 (a cross compiler from Debian, gcc-aarch64-linux-gnu;
# objects only: the libraries it links with are this machine's). The generated sources
# come from the native build's rules.
CROSS_CC ?= aarch64-linux-gnu-gcc
check-cross: $(GEN_SRC) $(BUILD)/gen/git_rev.h $(if $(filter 1,$(OPENCL)),$(BUILD)/gen/opencl_kernels.h)
	@command -v $(CROSS_CC) >/dev/null || sh scripts/install_deps.sh cross
	@command -v $(CROSS_CC) >/dev/null || { echo "check-cross: $(CROSS_CC) not found (Debian package gcc-aarch64-linux-gnu)" >&2; exit 1; }
	@mkdir -p $(BUILD)/cross
	@for f in $(LIB_SRC) harness/cli/main.c $(GEN_SRC); do \
	  $(CROSS_CC) -D_GNU_SOURCE $(addprefix -I,$(LAYER_DIRS)) -I$(BUILD) -std=c11 -O2 -march=armv8-a $(WARN) -pthread \
	    -I/usr/include/hdf5/serial -I/usr/include/$(MULTIARCH)/openblas-pthread -idirafter /usr/include \
	    -c $$f -o $(BUILD)/cross/$$(echo $$f | tr / _).o || exit 1; \
	done; echo "check-cross: $(words $(LIB_SRC) harness/cli/main.c $(GEN_SRC)) sources compile for aarch64 with $(CROSS_CC)"

$(BUILD)/bench_attn: scripts/bench_attn.c $(BUILD)/libctxbench.a
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libctxbench.a $(ALL_LDLIBS)

# BENCH_DEPTH=1 adds the last 512-token chunk of a 32768-token window over a synthetic f16
# cache (TinyLlama F16, and Llama-2-7B Q4_K when ~21 GiB are free): minutes; off by default.
bench: $(BUILD)/ctxbench $(BUILD)/bench_attn
	CTXBENCH_SHARED=$(abspath $(SHARED)) sh scripts/bench.sh $(BUILD)/ctxbench $(BUILD)/bench_attn

# make bench-llamacpp: prefill speed, peak RSS and load time of ctxbench beside llama.cpp on
# the same synthetic GGUF files, and stories3M perplexity speed (never part of make test;
# figures printed, never asserted). llama.cpp is built beside the project, in LLAMACPP_DIR
# (default ../llama.cpp-bench), from LLAMACPP_SRC or from the llama.cpp source that the npm
# package node-llama-cpp ships; BENCH_LLAMACPP_CASES picks the cases. scripts/bench_llamacpp.sh
# says the rest.
bench-llamacpp: $(BUILD)/ctxbench
	CTXBENCH_SHARED=$(abspath $(SHARED)) $(if $(THREADS),THREADS=$(THREADS)) \
	  sh scripts/bench_llamacpp.sh $(BUILD)/ctxbench

# The git revision recorded in every result (harness/sweep/sweep.c), rewritten only when it
# changes. Plumbing commands only: they never take .git/index.lock.
$(BUILD)/gen/git_rev.h: FORCE
	@mkdir -p $(dir $@)
	@rev=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	 git diff-index --quiet HEAD -- 2>/dev/null || rev="$$rev-dirty"; \
	 echo "#define CTXBENCH_GIT_REV \"$$rev\"" > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp
$(BUILD)/obj/harness/sweep/sweep.o: $(BUILD)/gen/git_rev.h

# make sweep: methods x tasks x lengths on one model into an HDF5 file. Resumable: run it
# again after an interruption and only the missing cells are computed. TASK_OPTS caps the
# work per cell (ctxbench prints each task's settings): `make run` (the default 162 cells,
# build included) took 6 min 48 s in a fresh clone on the idle 2-core machine.
# The embedded default: stories3M trained further to retrieve (models/README.md).
MODEL     ?= models/ctxbench-retrieval-3M.gguf
# The default methods are paper-style fixed configurations, one per curve (as the papers plot
# PI x4 or YaRN s=16): PI, NTK, YaRN and Llama 3 scaling at factor 4 (target 4x the trained
# length), SelfExtend G=16 W=256 (target about 8.5x), dynamic NTK, ABF and SWA with their fixed
# defaults, so that each curve shows a method inside and past its target. METHODS=all instead
# gives every method its defaults at each length (factor = length / trained length): the best
# each can do at every length, one configuration per point. The figures say which kind a curve is.
METHODS   ?= baseline,pi:factor=4,ntk:factor=4,dynamic_ntk,yarn:factor=4,llama3:factor=4,abf,selfextend:group=16,window=256,swa
TASKS     ?= ppl,passkey,first_sentence
LENGTHS   ?= 1x:32x
DATA      ?=
OUT       ?= results/sweep.h5
TASK_OPTS ?= ppl:max_tokens=8192;passkey:depths=2,trials=1;first_sentence:samples=1
SEED      ?= 1
# BACKEND=cpu|opencl|auto (default auto: a GPU through OpenCL if there is one, else the CPU),
# DEVICE=N its device (ctxbench info --backend all lists them), THREADS=N the CPU's threads.
BACKEND   ?=
DEVICE    ?=
# KV=f32|f16|q8_0: the KV cache's type for keys and values (-ctk/-ctv; default f32).
KV        ?=
# DRY_RUN=1 (or make sweep-dry-run): list every cell with its memory and estimated time
# and the total, running nothing and writing nothing.
DRY_RUN   ?=
sweep: $(BUILD)/ctxbench
	CTXBENCH_SHARED=$(abspath $(SHARED)) $(BUILD)/ctxbench sweep -m $(MODEL) --methods '$(METHODS)' \
	  --tasks '$(TASKS)' --lengths '$(LENGTHS)' -o $(OUT) --seed $(SEED) --cache-dir $(BUILD)/cache \
	  $(if $(DATA),--data '$(DATA)') $(if $(TASK_OPTS),--task-opt '$(TASK_OPTS)') $(if $(THREADS),-t $(THREADS)) \
	  $(if $(BACKEND),--backend $(BACKEND)) $(if $(DEVICE),--device $(DEVICE)) \
	  $(if $(KV),--cache-type-k $(KV) --cache-type-v $(KV)) $(if $(DRY_RUN),--dry-run)
sweep-dry-run:
	$(MAKE) sweep DRY_RUN=1

# make plots: the figures of a sweep's results file (PNG + SVG via gnuplot, with the data
# behind each as a .dat file) in plots/out/<results name>/, or PLOTS_DIR. The same OUT as
# make sweep, so `make sweep plots` runs both. Figures: plots/README.md.
PLOTS_DIR ?=
plots: $(BUILD)/ctxbench
	$(BUILD)/ctxbench plot $(OUT) $(if $(PLOTS_DIR),-o $(PLOTS_DIR))

# make run: the main job end to end on the embedded default: install what is missing,
# build, sweep every method over ppl, passkey and first-sentence retrieval at 1x..32x the
# trained context, draw the figures and print the report table.
run:
	$(MAKE) sweep
	$(MAKE) plots
	$(BUILD)/ctxbench report $(OUT)

# make train-model: trains the default retrieval model again from ../shared/models/stories3M.gguf
# (scripts/train_model.py, PyTorch on the CPU; models/README.md has the recipe, its time and its
# learning curve) and exports it to TRAINED_MODEL: two runs from stories3M (every weight; the
# attention weights alone, held closer to stories3M by a heavier distillation term) and the soup
# of both that keeps retrieval at the lower perplexity cost. Resumable: run it again after an
# interruption and each run goes on from its checkpoint under build/.
TRAINED_MODEL ?= models/ctxbench-retrieval-3M.gguf
TRAIN_OPTS    ?=
TRAIN_SOUP    ?= --blend 0.35 --mix $(BUILD)/train_attn/checkpoint.pt:0.8
train-model: $(BUILD)/libctxbench_tok.so
	$(PYTHON) scripts/train_model.py train --out-dir $(BUILD)/train --resume $(TRAIN_OPTS)
	$(PYTHON) scripts/train_model.py train --out-dir $(BUILD)/train_attn --resume \
	    --train-only attn_q,attn_k,attn_v,attn_output --distill-weight 3 $(TRAIN_OPTS)
	$(PYTHON) scripts/train_model.py export $(BUILD)/train/checkpoint.pt $(TRAINED_MODEL) $(TRAIN_SOUP)

clean:
	rm -rf build build-asan build-baseline build-fuzz

# ---- fuzzing (fuzz/README.md) ----------------------------------------------------------
# libFuzzer harnesses fuzz/fuzz_*.c, built with clang into build-fuzz (the library with
# ASan + UBSan and fuzzer coverage, each harness linked with libFuzzer). Only these targets
# need clang (scripts/install_deps.sh fuzz). `make fuzz FUZZ_TIME=60` runs each harness for
# FUZZ_TIME seconds over a copy of its seed corpus fuzz/corpus/NAME and prints executions;
# `make fuzz-ci` runs each for 30 s and fails on any crash, sanitizer report or leak.
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME  ?= 60
FUZZ_OPT   := -O1 -g $(ARCH) -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
              -fno-sanitize-recover=undefined
FUZZ_SRC   := $(wildcard fuzz/fuzz_*.c)
fuzz-build:
	@sh scripts/install_deps.sh fuzz
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang OPT="$(FUZZ_OPT)" fuzz-bins
fuzz-bins: $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
$(BUILD)/fuzz/%: fuzz/%.c $(wildcard fuzz/*.h) tests/testutil.h $(BUILD)/libctxbench.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -Ifuzz -Itests $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libctxbench.a $(ALL_LDLIBS)
fuzz: fuzz-build
	CTXBENCH_SHARED=$(abspath $(SHARED)) sh fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TIME)
fuzz-ci:
	$(MAKE) fuzz FUZZ_TIME=30
