#!/bin/bash
# CI with a real Slurm (called by .ci/run): installs Debian's slurm-wlm and munge
# (scripts/install_deps.sh slurm), starts munged, slurmctld and slurmd on this machine with a
# generated one-node configuration (everything under a temporary directory, torn down on exit),
# then
#  1. submits a small `ctxbench slurm` sweep (stories260K, 3 methods, ppl and passkey, 3 shards),
#     waits for the array and the merge job, and checks that the merged file holds the same cells
#     as the same sweep run in one process (`ctxbench merge --compare`);
#  2. submits it again into a new file, cancels one array task midway (scancel), lets the merge
#     report the missing cells, resubmits, and checks that only that shard ran again, that it
#     computed only the cells it had not finished, and that the result is again the same.
# Skips with one line when the daemons cannot start here. Usage: scripts/slurm_ci.sh [BIN]
set -eu
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/ctxbench}")
export CTXBENCH_SHARED=$(realpath "${CTXBENCH_SHARED:-../shared}")
MODEL=$CTXBENCH_SHARED/models/stories260K.gguf
start=$(date +%s)
sh scripts/install_deps.sh slurm

T=$(mktemp -d /tmp/ctxbench-slurm-XXXXXX)
chmod 0755 "$T"
export SLURM_CONF=$T/slurm.conf
cleanup() {
    for p in slurmd slurmctld munged; do
        [ -s "$T/$p.pid" ] && kill "$(cat "$T/$p.pid")" 2>/dev/null || true
    done
    sleep 1
    for p in slurmd slurmctld munged; do
        [ -s "$T/$p.pid" ] && kill -9 "$(cat "$T/$p.pid")" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap cleanup EXIT
skip() { echo "slurm_ci: skipped: $*" >&2; exit 0; }
fail() {
    echo "slurm_ci: FAILED: $*" >&2
    for f in "$T"/*.log "$T"/w*/logs/*; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done >&2
    exit 1
}

# munge: its own key, socket and files (munged refuses root without --force)
mkdir -p "$T/munge"
chmod 0700 "$T/munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 0400 "$T/munge/munge.key"
/usr/sbin/munged --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.sock" \
    --pid-file="$T/munged.pid" --log-file="$T/munged.log" --seed-file="$T/munge/seed" \
    || skip "munged does not start here ($(tail -1 "$T/munged.log" 2>/dev/null))"

host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
port=$((20000 + $$ % 20000))
mkdir -p "$T/state" "$T/spool"
cat > "$SLURM_CONF" <<EOF
ClusterName=ctxbench-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.sock
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerParameters=defer_batch=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
/usr/sbin/slurmctld -c || skip "slurmctld does not start here ($(tail -1 "$T/slurmctld.log" 2>/dev/null))"
/usr/sbin/slurmd || skip "slurmd does not start here ($(tail -1 "$T/slurmd.log" 2>/dev/null))"
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qx idle && break
    sleep 1
done
sinfo -h -o %T 2>/dev/null | grep -qx idle || skip "the node does not come up ($(tail -1 "$T/slurmd.log" 2>/dev/null))"
echo "slurm_ci: one-node Slurm up on $host ($cpus CPUs, $mem MB) in $(($(date +%s) - start)) s"

GRID=(-m "$MODEL" --methods baseline,pi:factor=2,yarn:factor=4 --tasks ppl,passkey --lengths 256:2k
      --task-opt 'ppl:max_windows=4;passkey:depths=2,trials=1' -t 1)
# Waits until no job of this cluster is pending or running (at most $1 s).
wait_idle() {
    for _ in $(seq "$1"); do
        [ -z "$(squeue -h -o %i 2>/dev/null)" ] && return 0
        sleep 1
    done
    fail "jobs still queued after $1 s: $(squeue 2>&1 | tail -5)"
}
done_cells() {   # done cells in a results file (0 when absent)
    [ -e "$1" ] || { echo 0; return; }
    "$BIN" export "$1" -o - 2>/dev/null | grep ',"done",' | cut -d, -f1 | sort -u | wc -l
}

"$BIN" sweep "${GRID[@]}" -o "$T/one.h5" 2>"$T/one.log" || fail "the one-process sweep"

# 1. the sweep as a job array of 3 shards and a merge
"$BIN" slurm "${GRID[@]}" -o "$T/out1.h5" --shards 3 --work-dir "$T/w1" --partition ci > "$T/jobs1" 2>"$T/slurm1.log" \
    || fail "ctxbench slurm: $(cat "$T/slurm1.log")"
wait_idle 240
"$BIN" merge --compare "$T/one.h5" "$T/out1.h5" || fail "the merged file is not the one-process sweep"
echo "slurm_ci: 1. job array of 3 shards + merge = the one-process sweep, cell for cell ($(($(date +%s) - start)) s)"

# 2. one array task cancelled midway, then resubmitted
"$BIN" slurm "${GRID[@]}" -o "$T/out2.h5" --shards 3 --work-dir "$T/w2" > "$T/jobs2" 2>"$T/slurm2.log" \
    || fail "ctxbench slurm: $(cat "$T/slurm2.log")"
array=$(head -1 "$T/jobs2")
for _ in $(seq 600); do
    [ "$(done_cells "$T/w2/shard-2.h5")" -ge 1 ] && break
    sleep 0.1
done
scancel "${array}_2"
wait_idle 240
before=$(done_cells "$T/w2/shard-2.h5")
cells2=$(grep -c . "$T/w2/cells.txt")
grep -q "expected cells missing" "$T/w2/logs/merge.err" || fail "the merge did not report missing cells: $(cat "$T/w2/logs/merge.err")"
"$BIN" slurm "${GRID[@]}" -o "$T/out2.h5" --shards 3 --work-dir "$T/w2" > "$T/jobs3" 2>"$T/slurm3.log" \
    || fail "ctxbench slurm (again): $(cat "$T/slurm3.log")"
grep -q "1 shard to run (2)" "$T/slurm3.log" || fail "the resubmission did not run shard 2 alone: $(cat "$T/slurm3.log")"
wait_idle 240
summary=$(grep "^sweep: [0-9]* cells:" "$T/w2/logs/shard-2.err" | tail -1)
n2=$(echo "$summary" | sed -n 's/^sweep: \([0-9]*\) cells:.*/\1/p')
[ -n "$n2" ] && [ "$before" -ge 1 ] && [ "$before" -lt "$n2" ] \
    || fail "shard 2 was not cancelled midway ($before cells done, summary '$summary')"
echo "$summary" | grep -q "$before done before, $((n2 - before)) done" \
    || fail "shard 2 redid finished cells: '$summary' with $before done before the resubmission"
"$BIN" merge --compare "$T/one.h5" "$T/out2.h5" || fail "the resumed file is not the one-process sweep"
echo "slurm_ci: 2. shard 2 cancelled after $before of its $n2 cells; resubmitted, it computed the other $((n2 - before)) only; merged = the one-process sweep ($cells2 cells)"
echo "slurm_ci: passed in $(($(date +%s) - start)) s"
