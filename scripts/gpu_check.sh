#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build bgbench's extensions with CUDA, run the CUDA tests
# and the op benchmark, then evaluate the published ONNX models with onnxruntime-gpu's CUDA
# provider against the CPU provider (images/s; accuracies must agree within 2 images per
# test set). Meant to finish within 7 minutes (the build is about 1-2 of them).
#   bash scripts/gpu_check.sh            (PYTHON=python3.12 to choose the interpreter)
# Missing Python packages are installed from wheels carried in .whl/ when there are some
# (the GPU machine has no network).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
PY=${PYTHON:-python3}

if [ -z "${CUDA_HOME:-}" ]; then
  if command -v nvcc >/dev/null 2>&1; then
    CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  elif [ -x /usr/local/cuda/bin/nvcc ]; then
    CUDA_HOME=/usr/local/cuda
  else
    echo "gpu_check: no nvcc on PATH or in /usr/local/cuda: cannot build the CUDA kernels" >&2
    exit 1
  fi
fi
# torch guesses CUDA_HOME wrongly behind nvcc wrappers (the link then misses -lcudart).
export CUDA_HOME PATH="$CUDA_HOME/bin:$PATH"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}

# What the build, the op tests and the op benchmark import (ninja only speeds the build).
missing=()
for pkg in torch numpy pytest hypothesis pybind11 setuptools; do
  "$PY" -c "import $pkg" 2>/dev/null || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ ! -d .whl ]; then
    echo "gpu_check: missing ${missing[*]} and no .whl/ folder of wheels to install them from" >&2
    exit 1
  fi
  echo "== installing ${missing[*]} from .whl/"
  "$PY" -m pip install -q --no-index --find-links .whl "${missing[@]}"
fi
"$PY" -c "import ninja" 2>/dev/null || "$PY" -m pip install -q --no-index --find-links .whl ninja \
  2>/dev/null || echo "(no ninja: the build runs serially)"

echo "== versions"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
nvcc --version | tail -1
"$PY" - <<'PY'
import sys, torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}),"
      f" device {torch.cuda.get_device_name() if torch.cuda.is_available() else 'NONE'}")
if not torch.cuda.is_available():
    raise SystemExit("gpu_check: torch sees no CUDA device")
PY

echo "== build (FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, $MAX_JOBS jobs)"
FORCE_CUDA=1 "$PY" setup.py -q build_ext --inplace 2>&1 | grep -Ev "^(\[[0-9]+/[0-9]+\]|copying)" || true
"$PY" -c "import bgbench.ops as o; assert o.HAVE_EXTENSION, 'bgbench._C did not build'"
echo "built in $((SECONDS - start)) s"

status=0
echo "== CUDA tests"
timeout 150 "$PY" -m pytest -q -m cuda -p no:cacheprovider tests/test_ops.py || status=$?
echo "== op benchmark (CUDA)"
# --no-compile: the CUDA targets are against eager and copy_, and inductor's compiles would
# take a minute of the five.
timeout 150 "$PY" -m bgbench.bench op --device cuda --rounds 7 --no-compile || status=$?

echo "== onnxruntime-gpu: results/models/*.onnx with the CUDA provider against the CPU provider"
# onnxruntime-gpu and onnxruntime share one package directory, so the GPU runtime goes into
# its own venv; it sees this interpreter's packages (numpy, torch's CUDA libraries) beneath
# its own, and bgbench comes from the source tree just built.
ortenv=build/ort-gpu-venv
[ -x "$ortenv/bin/python" ] || "$PY" -m venv --system-site-packages "$ortenv"
if ! "$ortenv/bin/python" -c "import onnxruntime as o; assert 'CUDAExecutionProvider' in o.get_available_providers()" 2>/dev/null; then
  "$ortenv/bin/python" -m pip install -q --no-index --find-links .whl onnxruntime-gpu 2>/dev/null \
    || timeout 120 "$ortenv/bin/python" -m pip install -q onnxruntime-gpu 2>/dev/null \
    || echo "(onnxruntime-gpu is neither in .whl/ nor downloadable here)"
fi
if "$ortenv/bin/python" -c "import onnxruntime as o; assert 'CUDAExecutionProvider' in o.get_available_providers()" 2>/dev/null; then
  ortdir=$(mktemp -d)
  # Preloads onnxruntime-gpu's CUDA/cuDNN libraries, then runs the CLI.
  ort_eval=("$ortenv/bin/python" -c "import sys; from bgbench.harness.providers import preload_gpu_libraries; preload_gpu_libraries(); from bgbench.cli import main; sys.exit(main(sys.argv[1:]))")
  for provider in cpu cuda; do
    timeout 240 env PYTHONPATH="$PWD" "${ort_eval[@]}" eval results/models/*.onnx --providers "$provider" \
      --out "$ortdir/$provider" > "$ortdir/$provider.log" 2>&1 \
      || { tail -5 "$ortdir/$provider.log"; status=1; }
  done
  "$ortenv/bin/python" - "$ortdir/cpu/results.json" "$ortdir/cuda/results.json" <<'PY' || status=1
import json, sys
cpu, cuda = ({m["model"]: m for m in json.load(open(p))["models"]} for p in sys.argv[1:])
ok = True
print(f"{'model':40s} {'CPU img/s':>10s} {'CUDA img/s':>11s}  largest difference in correct images")
for name, c in cpu.items():
    g = cuda[name]
    assert g["provider"] == "CUDAExecutionProvider", g["providers"]
    diff = max(abs(round((c["accuracy"][t] - g["accuracy"][t]) * c["n_images"])) for t in c["accuracy"])
    ok &= diff <= 2
    print(f"{name.split('/')[-1]:40s} {c['images_per_second']:10.0f} {g['images_per_second']:11.0f}  {diff}")
if not ok:
    sys.exit("gpu_check: CUDA and CPU accuracies differ by more than 2 images on a test set")
PY
  rm -rf "$ortdir"
else
  echo "SKIPPED: no onnxruntime-gpu with a CUDA provider could be installed (put its wheel in .whl/)"
fi

# ---- training steps on the GPU ------------------------------------------------------------
# The CUDA tests of the training-step benchmark and the epoch meters, then each stage's step
# (images/s, TFLOP/s, share of the fp32 peak) at the quick and full presets' network sizes.
echo "== training-step CUDA tests"
timeout 150 "$PY" -m pytest -q -m cuda -p no:cacheprovider tests/test_bench_train.py \
  tests/test_train_meters.py || status=$?
for preset in quick full; do
  echo "== training-step benchmark (CUDA, preset $preset)"
  timeout 120 "$PY" -m bgbench.bench train --device cuda --preset "$preset" || status=$?
done
# ---- end of training steps on the GPU -----------------------------------------------------

echo "== done in $((SECONDS - start)) s, status $status"
exit $status
