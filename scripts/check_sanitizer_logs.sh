#!/bin/sh
# make check-asan: fails when the sanitizer logs in DIR hold a report. Criterion passes a
# test whose process leaked or whose ctxbench child reported an error, so the logs are
# the verdict. One kind of report is not ours and is ignored: a leak whose whole stack
# lies inside libcriterion (its runner keeps a 48-byte block until exit); any report
# with a frame in our code, and every error that is not a leak, counts.
# Usage: check_sanitizer_logs.sh DIR
set -eu
DIR=$1
bad=0
for f in "$DIR"/*; do
    [ -e "$f" ] || continue
    # A report counts unless every stack frame in it (lines "#N 0x... in/(...)") past
    # the allocator is libcriterion's, and it is a leak report.
    if grep -q 'ERROR: LeakSanitizer' "$f" && ! grep -q 'ERROR: AddressSanitizer\|runtime error' "$f" &&
       ! grep -E '^ +#[0-9]+ ' "$f" | grep -v 'libsanitizer\|libasan\|libcriterion\.so' | grep -q .; then
        echo "check-asan: ignored a leak inside libcriterion itself ($(basename "$f"))"
        continue
    fi
    cat "$f" >&2
    bad=1
done
if [ $bad -ne 0 ]; then
    echo "check-asan: sanitizer reports above (logs in $DIR)" >&2
    exit 1
fi
echo "check-asan: no sanitizer report"
