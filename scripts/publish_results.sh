#!/usr/bin/env bash
# Produces the committed results/ folder: the full preset over seeds (resumable: re-run it
# and finished work is skipped), then results.json/csv, the published ONNX models (proposal
# and traditional, seed 0, which tests/test_published_results.py re-scores), the report and
# its figures, and the README's results table.
#   bash scripts/publish_results.sh [WORK_DIR]      (default bgbench-full)
# SEEDS and ABLATION_SEEDS override the seeds (default 0,1,2 and 0).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bgbench-full}
bgbench=.venv/bin/bgbench

$bgbench reproduce --preset full --seeds "${SEEDS:-0,1,2}" \
  --ablation-seeds "${ABLATION_SEEDS:-0}" --out "$work"

mkdir -p results/models
cp "$work"/results/results.json "$work"/results/results.csv results/
for dataset in mnist fashion-mnist; do
  for method in proposal traditional; do
    cp "$work/models/$dataset-$method-seed0.onnx" results/models/
  done
done
# `results`, not a path to it: the report names its results directory as given.
$bgbench report results --runs "$work/runs" --out results/report.md --force --readme README.md
