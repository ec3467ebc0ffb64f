#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv and install bgbench with everything it
# needs (the train, cpu, test and interop extras), compiled extensions included. Needs no root.
# Re-running is cheap: the install is skipped while nothing it depends on has changed.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${BGBENCH_VENV:-.venv}
python=${PYTHON:-python3}
began=$(date +%s)
# One line per step, with the seconds since the start: the install is minutes of silence otherwise.
step() { echo "setup_env: [$(( $(date +%s) - began )) s] $*"; }
if [ ! -x "$venv/bin/python" ]; then
  step "creating the virtual environment $venv"
  "$python" -m venv "$venv"
fi
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
step "1/4 upgrading pip"
"${pip[@]}" --upgrade pip
# Build requirements first: the project is built without isolation (isolation would
# install torch a second time), so the extension is built against .venv's own torch.
step "2/4 installing the build requirements (torch 2.14.1 and its libraries: about 3 GB to download the first time)"
"${pip[@]}" setuptools ninja pybind11 numpy torch==2.14.1 torchvision==0.29.1
start=$(date +%s)
# train: torch and export tooling; cpu: onnxruntime; test: pytest, asv, ruff.
step "3/4 compiling bgbench._C and bgbench._core (minutes), installing bgbench (editable) and its extras"
# setuptools ends every editable install with an informational UserWarning ("Editable
# installation ... folders in your working directory with the same name as your package
# may take precedence during imports"), which pip prints as a BuildBackendWarning block.
# The folder of that name here is the package itself, so silence exactly that warning.
PYTHONWARNINGS="ignore:Editable installation:UserWarning" \
  "${pip[@]}" --no-build-isolation -e ".[train,cpu,test,interop]"
step "4/4 checking that the compiled modules import"
python -c "import bgbench._C, bgbench._core"
echo "$want" > "$stamp"
step "bgbench installed in $venv (the build took $(( $(date +%s) - start )) s)"
echo "setup_env: run $venv/bin/bgbench, or \`. $venv/bin/activate\` once per shell and then bgbench"
