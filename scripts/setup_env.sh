#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv and install bgbench with everything it
# needs (the train, cpu, test and interop extras), compiled extensions included. Needs no root.
# Re-running is cheap: the install is skipped while nothing it depends on has changed.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${BGBENCH_VENV:-.venv}
python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"

# torch finds nvcc through CUDA_HOME; a wrapper on PATH makes it guess wrong
# (the link then fails with `cannot find -lcudart`).
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDA_HOME=/usr/local/cuda
fi
# With no GPU to detect, torch would compile CUDA for every architecture it knows (slow).
if [ -n "${CUDA_HOME:-}" ] && [ -z "${TORCH_CUDA_ARCH_LIST:-}" ] && ! command -v nvidia-smi >/dev/null; then
  export TORCH_CUDA_ARCH_LIST="9.0"
fi

stamp="$venv/.bgbench-install"
want=$( { cat pyproject.toml setup.py requirements/constraints.txt; find csrc -type f | sort | xargs cat;
          env | grep -E '^(FORCE_CUDA|BGBENCH_CUDA|CUDA_HOME|TORCH_CUDA_ARCH_LIST)=' | sort; } | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && python -c "import bgbench._C, bgbench._core" 2>/dev/null; then
  echo "setup_env: $venv is up to date"
  exit 0
fi

pip=(python -m pip install -q --disable-pip-version-check -c requirements/constraints.txt)
"${pip[@]}" --upgrade pip
# Build requirements first: the project is built without isolation (isolation would
# install torch a second time), so the extension is built against .venv's own torch.
"${pip[@]}" setuptools ninja pybind11 numpy torch==2.14.1 torchvision==0.29.1
start=$(date +%s)
# train: torch and export tooling; cpu: onnxruntime; test: pytest, asv, ruff.
"${pip[@]}" --no-build-isolation -e ".[train,cpu,test,interop]"
python -c "import bgbench._C, bgbench._core"
echo "$want" > "$stamp"
echo "setup_env: bgbench installed in $venv (build took $(( $(date +%s) - start )) s)"
