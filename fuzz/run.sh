#!/bin/sh
# Runs every built harness for SECONDS over a working copy of its seed corpus
# (BUILD/corpus/NAME, grown by the run; fuzz/corpus/NAME is only read), then prints the
# executions per harness. Exit status 1 if any harness crashed, tripped a sanitizer,
# leaked, timed out or ran out of memory: its log is BUILD/logs/NAME.log and the input
# that did it BUILD/crashes/NAME-*. Usage: fuzz/run.sh BUILD SECONDS
set -u
build=${1:-build-fuzz}
seconds=${2:-60}
mkdir -p "$build/corpus" "$build/logs" "$build/crashes"
fail=0
total=0
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    work="$build/corpus/$name"
    mkdir -p "$work"
    [ -d "fuzz/corpus/$name" ] && cp -n fuzz/corpus/"$name"/* "$work"/ 2>/dev/null
    log="$build/logs/$name.log"
    # -close_fd_mask=2: the library's own messages (rejected inputs) stay out of the log;
    # sanitizer reports and failed checks (fuzz_util.h) still appear in it.
    LSAN_OPTIONS="suppressions=$(pwd)/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
    "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -close_fd_mask=2 \
        -artifact_prefix="$build/crashes/$name-" "$work" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    units=$(ls "$work" | wc -l)
    if [ $rc -eq 0 ]; then
        printf '%-20s %10s executions in %ss, corpus %s inputs: ok\n' "$name" "${execs:-?}" "$seconds" "$units"
    else
        printf '%-20s %10s executions: FAILED (exit %s), see %s\n' "$name" "${execs:-?}" "$rc" "$log"
        grep -m1 -E '^(==[0-9]+==ERROR|SUMMARY|fuzz: check failed|.*runtime error)' "$log" | sed 's/^/    /'
        ls "$build"/crashes/"$name"-* 2>/dev/null | sed 's/^/    input: /'
        fail=1
    fi
    total=$((total + ${execs:-0}))
done
echo "fuzz: $total executions in total"
exit $fail
