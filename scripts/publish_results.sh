#!/usr/bin/env bash
# Produces the committed results/ folder: the full preset over seeds and the paper's method
# as written (the faithful preset, proposal only) over seeds (resumable: re-run it and
# finished work is skipped), then results.json/csv (results/ for full, results/faithful/),
# the published ONNX models (proposal and traditional, seed 0, which
# tests/test_published_results.py re-scores), the report and its figures, and the README's
# results table.
#   bash scripts/publish_results.sh [WORK_DIR [FAITHFUL_WORK_DIR]]
#   (defaults bgbench-full and bgbench-faithful)
# SEEDS and ABLATION_SEEDS override the seeds (default 0,1,2 and 0).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bgbench-full}
faithful=${2:-bgbench-faithful}
bgbench=.venv/bin/bgbench

$bgbench reproduce --preset full --seeds "${SEEDS:-0,1,2}" \
  --ablation-seeds "${ABLATION_SEEDS:-0}" --out "$work"

$bgbench reproduce --preset faithful --methods proposal --seeds "${SEEDS:-0,1,2}" \
  --out "$faithful"

mkdir -p results/models results/faithful
cp "$work"/results/results.json "$work"/results/results.csv results/
cp "$faithful"/results/results.json "$faithful"/results/results.csv results/faithful/
for dataset in mnist fashion-mnist; do
  for method in proposal traditional; do
    cp "$work/models/$dataset-$method-seed0.onnx" results/models/
  done
done
# `results`, not a path to it: the report names its results directories as given.
$bgbench report results results/faithful --runs "$work/runs" "$faithful/runs" \
  --out results/report.md --force --readme README.md
