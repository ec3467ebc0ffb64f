#!/usr/bin/env bash
# What a person who never clones the repository gets from pip, checked end to end:
#   1. `python -m build` (the sdist, then a wheel built from the sdist) with build isolation,
#      from a copy of the source tree holding only what git tracks (as a clean clone would);
#   2. a fresh venv with `pip install '<wheel>[cpu]'`: torch must not be importable,
#      `bgbench data prepare` and `bgbench eval` on a published model must work, and
#      `bgbench train` must fail with one line naming the `train` extra;
#   3. the `gpu` extra resolves to onnxruntime-gpu without onnxruntime beside it;
#   4. `pip install '<wheel>[train]'` into the same venv: `import bgbench._C` works before
#      torch is imported, and `bgbench.ops.composite` runs the compiled kernel, no fallback.
# Usage: bash scripts/package_check.sh   (PYTHON=python3.x to choose the interpreter)
# The wheel is built without CUDA (BGBENCH_CUDA=0): the CUDA compile is checked by the main
# build, and compiling it again here would add minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
start=$SECONDS
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/bgbench-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "== $* ($((SECONDS - start)) s)"; }
fail() { echo "package_check: FAILED: $*" >&2; exit 1; }

step "copy of the tracked source tree"
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -xf - -C "$work/src"

step "python -m build (sdist, then a wheel from it; isolated)"
"$python" -m venv "$work/tools"
"$work/tools/bin/pip" install -q -c requirements/constraints.txt build
BGBENCH_CUDA=0 "$work/tools/bin/python" -m build --outdir "$work/dist" "$work/src" > "$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log"; fail "python -m build"; }
sdist=$(ls "$work"/dist/bgbench-*.tar.gz)
wheel=$(ls "$work"/dist/bgbench-*.whl)
echo "built $(basename "$sdist") and $(basename "$wheel")"
tar -tzf "$sdist" > "$work/sdist.txt"
for header in csrc/ops.h csrc/kernels/composite.h csrc/cuda/composite.cu LICENSE; do
  grep -qx "bgbench-[^/]*/$header" "$work/sdist.txt" || fail "the sdist lacks $header"
done
"$work/tools/bin/python" - "$wheel" <<'PY' || fail "wheel contents"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for want in ("bgbench/_C.", "bgbench/_core.", "bgbench/py.typed", "licenses/LICENSE"):
    assert any(want in n for n in names), f"the wheel lacks {want}"
PY

step "fresh venv: pip install '<wheel>[cpu]' (no torch)"
"$python" -m venv "$work/venv"
vpip=("$work/venv/bin/python" -m pip install -q -c "$repo/requirements/constraints.txt")
"${vpip[@]}" "$wheel[cpu]"
if "$work/venv/bin/python" -c "import torch" 2>/dev/null; then
  fail "torch is importable after installing the wheel without the train extra"
fi
cd "$work"  # so nothing is imported from the source tree
"$work/venv/bin/bgbench" data prepare --dataset mnist
"$work/venv/bin/bgbench" eval "$repo/results/models/mnist-proposal-seed0.onnx" --limit 1000 --out "$work/eval"
"$work/venv/bin/python" - "$work/eval/results.json" <<'PY' || fail "bgbench eval results"
import json, sys
[model] = json.load(open(sys.argv[1]))["models"]
assert model["n_images"] == 1000, model["n_images"]
# The published proposal model: about 99% clean and 98% over the six backgrounds.
assert model["accuracy"]["clean"] > 0.95 and model["background_average"] > 0.9, model["accuracy"]
print(f"eval: clean {model['accuracy']['clean']:.3f}, six-background average "
      f"{model['background_average']:.3f} on 1000 images")
PY
if "$work/venv/bin/bgbench" train --dataset mnist --method traditional --out "$work/run" 2> "$work/train.err"; then
  fail "bgbench train ran without torch"
fi
[ "$(wc -l < "$work/train.err")" -eq 1 ] && grep -q "bgbench\[train\]" "$work/train.err" \
  || { cat "$work/train.err"; fail "bgbench train without torch is not one line naming the train extra"; }
echo "train without torch: $(cat "$work/train.err")"

step "the gpu extra resolves to onnxruntime-gpu alone"
"$work/venv/bin/python" -m pip install -q --dry-run --ignore-installed --report "$work/gpu.json" \
  "$wheel[gpu]" > /dev/null
"$work/venv/bin/python" - "$work/gpu.json" <<'PY' || fail "the gpu extra"
import json, sys
names = {item["metadata"]["name"].lower() for item in json.load(open(sys.argv[1]))["install"]}
assert "onnxruntime-gpu" in names and "onnxruntime" not in names, sorted(names)
print("gpu extra installs onnxruntime-gpu and not onnxruntime")
PY

step "pip install '<wheel>[train]' into the same venv"
"${vpip[@]}" "$wheel[train]"
"$work/venv/bin/python" -c "import bgbench._C" || fail "import bgbench._C (before torch)"
"$work/venv/bin/python" - <<'PY' || fail "the compiled op"
import glob, os, subprocess, warnings
import bgbench
# No run path may point into the (deleted) isolated build environment.
[so] = glob.glob(os.path.join(os.path.dirname(bgbench.__file__), "_C.*.so"))
dynamic = subprocess.run(["readelf", "-d", so], capture_output=True, text=True, check=True).stdout
paths = [line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines() if "RUNPATH" in line or "RPATH" in line]
assert paths and all(p.startswith("$ORIGIN") for path in paths for p in path.split(":")), paths
with warnings.catch_warnings():
    warnings.simplefilter("error")  # a fallback or a load failure warns: make it fatal
    import torch
    from bgbench import ops
    assert ops.HAVE_EXTENSION, ops.LOAD_ERROR
    x, m, b = torch.rand(4, 1, 32, 32), torch.rand(4, 1, 32, 32), torch.rand(1, 1, 32, 32)
    out = ops.composite(x, m, b)
for got, want in zip(out, ops.composite_reference(x, m, b)):
    torch.testing.assert_close(got, want)
print(f"compiled op: bgbench._C from {so} runs (run path {paths[0]})")
PY
echo "package_check: OK in $((SECONDS - start)) s"
