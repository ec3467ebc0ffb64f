#!/usr/bin/env bash
# Produces the committed results/ folder: the full preset over seeds (every method) and the
# paper's method as written (the faithful preset, proposal only), each model evaluated and
# searched (budget 100) and published with its ONNX file; the ablation ladder's intermediate
# steps (bgbench/ladder.py, each at its seeds; the searched ones with their models in
# results/ladder-searched/<step>/); the report and its figures; and the README's results
# table. Resumable: re-run it and finished work is skipped.
#   bash scripts/publish_results.sh [WORK_DIR [FAITHFUL_WORK_DIR [LADDER_WORK_DIR]]]
#   (defaults bgbench-full, bgbench-faithful and bgbench-ladder)
# SEEDS and ABLATION_SEEDS override the seeds (default 0,1,2 for both).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bgbench-full}
faithful=${2:-bgbench-faithful}
ladder=${3:-bgbench-ladder}
bgbench=.venv/bin/bgbench

# publish OUT WORK MODEL...: each model evaluated and searched in WORK (skipped where done),
# merged into OUT with models named models/NAME.onnx, and the models copied to OUT/models/.
publish() {
  local out=$1 from=$2 parts=() model name
  shift 2
  for model in "$@"; do
    name=$(basename "$model" .onnx)
    [ -f "$from/evals/$name/results.json" ] || $bgbench eval "$model" --noise-sweep \
      --suite extended --out "$from/evals/$name" --quiet --force
    [ -f "$from/attacks/$name/results.json" ] || $bgbench attack "$model" --budget 100 \
      --out "$from/attacks/$name" --quiet --force
    parts+=("$from/evals/$name" "$from/attacks/$name")
  done
  mkdir -p "$out/models"
  $bgbench merge "${parts[@]}" --relative-to "$from" --out "$out" --force
  cp "$@" "$out/models/"
}

# reproduce trains, evaluates and searches every model; publish names them in the repository.
$bgbench reproduce --preset full --seeds "${SEEDS:-0,1,2}" \
  --ablation-seeds "${ABLATION_SEEDS:-0,1,2}" --attack-budget 100 --out "$work"
publish results "$work" "$work"/models/*.onnx

$bgbench reproduce --preset faithful --methods proposal --seeds "${SEEDS:-0,1,2}" \
  --attack-budget 100 --out "$faithful"
publish results/faithful "$faithful" "$faithful"/models/*.onnx

# The ladder's steps between faithful and full (the runs above are its first and last).
while read -r tag seeds flags; do
  for seed in ${seeds//,/ }; do
    for dataset in mnist fashion-mnist; do
      run="$ladder/runs/$dataset-proposal-$tag-seed$seed"
      [ -f "$run/done.json" ] && continue
      resume=(); [ -d "$run" ] && resume=(--resume)
      # shellcheck disable=SC2086
      $bgbench train --dataset "$dataset" $flags --seed "$seed" --out "$run" --quiet \
        "${resume[@]}"
    done
  done
done < <(.venv/bin/python -c "from bgbench.ladder import LADDER
for step in LADDER:
    if step.changes:
        print(step.tag, ','.join(map(str, step.seeds)), ' '.join(step.flags()))")
mkdir -p "$ladder/models"
for run in "$ladder"/runs/*/; do
  model="$ladder/models/$(basename "$run").onnx"
  [ -f "$model" ] || $bgbench export "$run" --out "$model"
done
# The searched steps are published each in its folder with its models; the others are
# evaluated together into results/ladder/.
searched=" $(.venv/bin/python -c "from bgbench.ladder import LADDER
print(' '.join(s.tag for s in LADDER if s.searched))") "
unsearched=()
for model in "$ladder"/models/*.onnx; do
  tag=$(basename "$model" .onnx); tag=${tag%-seed*}; tag=${tag##*-proposal-}
  [[ "$searched" == *" $tag "* ]] || unsearched+=("$model")
done
for tag in $searched; do
  publish "results/ladder-searched/$tag" "$ladder" "$ladder"/models/*-proposal-"$tag"-seed*.onnx
done
$bgbench eval "${unsearched[@]}" --noise-sweep --suite extended --out "$ladder/results" --force
mkdir -p results/ladder
cp "$ladder"/results/results.json "$ladder"/results/results.csv results/ladder/

# `results`, not a path to it: the report names its results directories as given.
# results/epochs/ (the proposal at the ladder step `epochs`, not made here) is shown
# where the repository has it.
epochs=(); [ -f results/epochs/results.json ] && epochs=(results/epochs)
$bgbench report results "${epochs[@]}" results/faithful \
  --ladder results/ladder results/ladder-searched/* \
  --worst-case results results/faithful --runs "$work/runs" "$faithful/runs" \
  --out results/report.md --force --readme README.md
