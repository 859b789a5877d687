#!/usr/bin/env bash
# Checks the exports of the real learned-matcher architectures against aquamvs (run by hand;
# not in CI, which has neither PyTorch nor the upstream sources). docs/learned-matchers.md
# records its output.
#
# With random weights (the real weights are not needed to check signatures and costs) it
# 1. exports SuperPoint + LightGlue, ALIKED + LightGlue and RoMa v2 with the scripts next to
#    it, each with --check: PyTorch and ONNX Runtime on the same inputs, differences printed;
# 2. writes a small synthetic scene (`aquamvs synth --rig tiny`) and reconstructs it with each
#    learned matcher and pipeline mode through the exported files, with the score thresholds
#    at 0 so that random weights still hand matches on. Matches of random weights are
#    meaningless: this checks that the files load, that their signatures, shapes and types
#    are those aquamvs reads, and that a whole run goes through (an empty cloud is accepted).
#
# Usage: scripts/check_exports.sh PYTHON DINOV3_REPO OUT_DIR [AQUAMVS]
#   PYTHON       a Python with torch, torchvision, kornia, einops, onnx, onnxruntime 1.31,
#                onnxconverter-common, and the LightGlue and RoMaV2 packages installed from their
#                sources (docs/learned-matchers.md, "Exporting the models")
#   DINOV3_REPO  a checkout of facebookresearch/dinov3 (RoMaV2 loads its backbone code from it)
#   OUT_DIR      where the models, the scene and the runs go (created)
#   AQUAMVS      the aquamvs binary (default: target/release/aquamvs, else target/debug/aquamvs)
# Environment: ROMA_SETTING (default turbo: 320×320, the fastest; the check is about
# signatures), THREADS (ONNX Runtime threads in the comparisons, default 2), KEEP_MODELS=1
# (reuse the models already in OUT_DIR/models and go straight to the aquamvs runs).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 3 ]; then
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
py=$1
dinov3=$2
out=$3
aquamvs=${4:-}
if [ -z "$aquamvs" ]; then
    for b in target/release/aquamvs target/debug/aquamvs; do
        if [ -x "$b" ]; then aquamvs=$b; break; fi
    done
fi
[ -x "$aquamvs" ] || { echo "check_exports: no aquamvs binary; build it (cargo build --release) or pass it" >&2; exit 2; }
setting=${ROMA_SETTING:-turbo}
threads=${THREADS:-2}
mkdir -p "$out"
models=$out/models
ort=$("$py" -c 'import onnxruntime, pathlib; print(next(pathlib.Path(onnxruntime.__file__).parent.glob("capi/libonnxruntime.so.1.*")))')

step() { echo; echo "== $*"; }

step "versions"
"$py" -c 'import torch, onnx, onnxruntime; print("torch", torch.__version__, "| onnx", onnx.__version__, "| onnxruntime", onnxruntime.__version__)'
"$aquamvs" --version

keep=${KEEP_MODELS:-0}
for kind in superpoint aliked; do
    [ "$keep" = 1 ] && [ -s "$models/$kind.onnx" ] && [ -s "$models/${kind}_lightglue.onnx" ] && continue
    step "export $kind + LightGlue (random weights) and compare PyTorch with ONNX Runtime"
    "$py" scripts/export_lightglue_onnx.py --random-weights --extractor "$kind" --check \
        --output-dir "$models" 2>&1 | grep -v -i -E 'warning|^ +[^ ]' || true
    for f in "$models/$kind.onnx" "$models/${kind}_lightglue.onnx"; do
        [ -s "$f" ] || { echo "check_exports: $f was not written" >&2; exit 1; }
    done
done

if [ "$keep" != 1 ] || [ ! -s "$models/roma_$setting.onnx" ]; then
    step "export RoMa v2 ($setting, random weights) and compare PyTorch with ONNX Runtime"
    "$py" scripts/export_roma_onnx.py --random-weights --dinov3-repo "$dinov3" --setting "$setting" \
        --check --threads "$threads" --output "$models/roma_$setting.onnx" 2>&1 \
        | grep -v -i -E 'warning|^ +[^ ]|INFO|initialized' || true
fi
[ -s "$models/roma_$setting.onnx" ] || { echo "check_exports: the RoMa model was not written" >&2; exit 1; }

step "synthetic scene"
scene=$out/scene
"$aquamvs" synth --rig tiny --scene undulating --out "$scene" --force -q
run() {
    local name=$1; shift
    step "aquamvs reconstruct: $name"
    "$aquamvs" check "$scene/config.yaml" --set "runtime.onnxruntime_library=$ort" "$@" -q
    local log=$out/runs/$name.log rc=0
    mkdir -p "$out/runs"
    "$aquamvs" reconstruct "$scene/config.yaml" --force \
        --set "output_dir=$out/runs/$name" --set "runtime.onnxruntime_library=$ort" "$@" \
        >"$log" 2>&1 || rc=$?
    grep -E 'INFO (sparse_matching|dense_matching|[0-9]+ matches|fusion|surface_reconstruction)' "$log" \
        | sed 's/^ *[0-9.]*s  INFO /  /' || true
    tail -n 2 "$log"
    # Random weights may leave nothing to reconstruct (an empty cloud fails the frame, exit
    # 3); anything else is a failure of the check.
    if [ "$rc" -ne 0 ] && ! grep -q 'the cloud is empty' "$log"; then
        echo "check_exports: $name failed (exit $rc); see $log" >&2
        exit 1
    fi
}
for kind in superpoint aliked; do
    for mode in sparse full; do
        run "lightglue_${kind}_$mode" --set matcher_type=lightglue --set "pipeline_mode=$mode" \
            --set sparse_matching.filter_threshold=0.0 \
            --set "sparse_matching.extractor_model=$(realpath "$models/$kind.onnx")" \
            --set "sparse_matching.matcher_model=$(realpath "$models/${kind}_lightglue.onnx")"
    done
done
for mode in sparse full; do
    run "roma_$mode" --set matcher_type=roma --set "pipeline_mode=$mode" \
        --set dense_matching.certainty_threshold=0.0 \
        --set "dense_matching.roma_model=$(realpath "$models/roma_$setting.onnx")"
done
step "done"
