#!/usr/bin/env bash
# The test command: set up .venv, prepare the real datasets, lint, run pytest and the C++
# tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# shellcheck disable=SC1091
. "${BGBENCH_VENV:-.venv}/bin/activate"

bgbench data prepare --dataset all
export BGBENCH_REQUIRE_DATA=1

ruff check .
bash scripts/format_check.sh
python -m pytest -q "$@"

cmake -S . -B build/cmake -DPython_EXECUTABLE="$(command -v python)" >/dev/null
cmake --build build/cmake -j 2 >/dev/null
ctest --test-dir build/cmake --output-on-failure
