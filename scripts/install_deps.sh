#!/bin/sh
# Installs the Debian packages ctxbench builds and runs with, if any are missing.
# As root it uses apt-get; otherwise it names the missing packages and fails.
# Arguments name extra groups: `opencl` (the OpenCL backend's headers and CLBlast, and PoCL
# so that its kernels run on any CPU; the Makefile asks for it unless OPENCL=0), `cross`
# (the aarch64 cross compiler for make check-cross), `slurm` (Slurm and munge for scripts/slurm_ci.sh).
set -eu
PKGS="build-essential pkg-config libopenblas-dev libhdf5-dev hdf5-tools libcsv-dev libcjson-dev libcriterion-dev nettle-dev gnuplot-nox python3 python3-numpy python3-torch python3-jsonschema python3-pandas python3-h5py time"
for group in "$@"; do
    case "$group" in
        opencl) PKGS="$PKGS ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd libclblast-dev" ;;
        cross) PKGS="$PKGS gcc-aarch64-linux-gnu" ;;
        # make fuzz, make fuzz-ci: clang and its libFuzzer runtime (libclang_rt.fuzzer-x86_64.a);
        # the normal build does not need them.
        fuzz) PKGS="$PKGS clang libclang-rt-14-dev" ;;
        # scripts/slurm_ci.sh: a one-node Slurm (slurmctld, slurmd, sbatch) with munge
        slurm) PKGS="$PKGS slurm-wlm munge" ;;
        *) echo "install_deps.sh: unknown package group '$group' (known: opencl, cross, fuzz, slurm)" >&2; exit 2 ;;
    esac
done
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "ctxbench: missing Debian packages:$missing — run: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "ctxbench: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q $missing >&2
