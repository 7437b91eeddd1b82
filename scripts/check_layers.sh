#!/bin/sh
# The engine's layers, lowest first: a file in harness/LAYER/ may include headers of its
# own layer and of the layers before it, never of a layer after it. Backends (folders
# under backends/) sit on the backend layer: they see the model and the backend
# interface, not the engine that drives them nor anything above. methods/ sees up to
# the method layer, tasks/ up to the task layer. Prints every violation; exit 1 if any.
set -eu
cd "$(dirname "$0")/.."
LAYERS="base gguf model backend engine method data task store sweep report cli"
rank() {   # rank of a layer name, or empty
    i=0
    for l in $LAYERS; do
        [ "$l" = "$1" ] && { echo $i; return; }
        i=$((i + 1))
    done
}
# layer of the header a name resolves to (harness/*/NAME or backends/*/NAME)
header_layer() {
    for f in harness/*/"$1"; do
        [ -f "$f" ] && { basename "$(dirname "$f")"; return; }
    done
    for f in backends/*/"$1"; do
        [ -f "$f" ] && { echo "backends/$(basename "$(dirname "$f")")"; return; }
    done
    echo ""
}
bad=0
check() {   # file, its layer's rank, its own folder (backends: only its own folder's headers)
    file=$1; own=$2; folder=$3
    for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file"); do
        case "$h" in gen/*) continue ;; esac
        [ -f "$(dirname "$file")/$h" ] && [ "$(dirname "$file")" = "$folder" ] && continue   # its own folder
        hl=$(header_layer "$h")
        case "$hl" in
            "") continue ;;   # methods/ or tasks/ headers (rope_common.h), checked by the compiler
            backends/*)
                echo "check_layers: $file includes $h of $hl: backends are reached only through the registry" >&2
                bad=1; continue ;;
        esac
        hr=$(rank "$hl")
        if [ "$hr" -gt "$own" ]; then
            echo "check_layers: $file (layer $(echo $LAYERS | cut -d' ' -f$((own + 1)))) includes $h of the higher layer $hl" >&2
            bad=1
        fi
    done
}
n=0
for d in harness/*/; do
    layer=$(basename "$d")
    r=$(rank "$layer")
    if [ -z "$r" ]; then
        echo "check_layers: harness/$layer/ is not a known layer (scripts/check_layers.sh lists them)" >&2
        bad=1; continue
    fi
    for f in "$d"*.c "$d"*.h; do [ -f "$f" ] && { check "$f" "$r" "${d%/}"; n=$((n + 1)); }; done
done
for d in backends/*/; do
    for f in "$d"*.c "$d"*.h; do [ -f "$f" ] && { check "$f" "$(rank backend)" "${d%/}"; n=$((n + 1)); }; done
done
for f in methods/*.c methods/*.h; do [ -f "$f" ] && { check "$f" "$(rank method)" methods; n=$((n + 1)); }; done
for f in tasks/*.c tasks/*.h; do [ -f "$f" ] && { check "$f" "$(rank task)" tasks; n=$((n + 1)); }; done
[ $bad -eq 0 ] && echo "check_layers: $n files include only their own layer and the layers below it"
exit $bad
