#!/usr/bin/env bash
# Produces the committed results/ folder: the full preset over seeds, the paper's method as
# written (the faithful preset, proposal only) over seeds, and the ablation ladder's
# intermediate steps (bgbench/ladder.py, each at its seeds) (resumable: re-run it and
# finished work is skipped), then results.json/csv (results/ for full, results/faithful/,
# results/ladder/), the published ONNX models (proposal and traditional, seed 0, which
# tests/test_published_results.py re-scores), the report and its figures, and the README's
# results table.
#   bash scripts/publish_results.sh [WORK_DIR [FAITHFUL_WORK_DIR [LADDER_WORK_DIR]]]
#   (defaults bgbench-full, bgbench-faithful and bgbench-ladder)
# SEEDS and ABLATION_SEEDS override the seeds (default 0,1,2 for both).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bgbench-full}
faithful=${2:-bgbench-faithful}
ladder=${3:-bgbench-ladder}
bgbench=.venv/bin/bgbench

$bgbench reproduce --preset full --seeds "${SEEDS:-0,1,2}" \
  --ablation-seeds "${ABLATION_SEEDS:-0,1,2}" --out "$work"

$bgbench reproduce --preset faithful --methods proposal --seeds "${SEEDS:-0,1,2}" \
  --out "$faithful"

# The ladder's steps that change a preset's options; its first and last steps are the
# faithful and full runs above.
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
# The steps up to `full` are evaluated together; the models of each step past it (new
# training options) are evaluated and searched (budget 100), and published with their
# results in results/ladder-searched/<step>/ (models under models/, as the results name them).
past=" $(.venv/bin/python -c "from bgbench.ladder import past_full
print(' '.join(s.tag for s in past_full()))") "
up_to_full=()
declare -A searched_ladder=()
for model in "$ladder"/models/*.onnx; do
  name=$(basename "$model" .onnx); tag=${name%-seed*}; tag=${tag##*-proposal-}
  if [[ "$past" != *" $tag "* ]]; then up_to_full+=("$model"); continue; fi
  [ -f "$ladder/evals/$name/results.json" ] || $bgbench eval "$model" --noise-sweep \
    --suite extended --out "$ladder/evals/$name" --quiet
  [ -f "$ladder/attacks/$name/results.json" ] || $bgbench attack "$model" --budget 100 \
    --out "$ladder/attacks/$name" --quiet
  searched_ladder[$tag]+=" $ladder/evals/$name $ladder/attacks/$name"
done
$bgbench eval "${up_to_full[@]}" --noise-sweep --suite extended --out "$ladder/results" --force
for tag in "${!searched_ladder[@]}"; do
  mkdir -p "results/ladder-searched/$tag/models"
  # shellcheck disable=SC2086
  $bgbench merge ${searched_ladder[$tag]} --relative-to "$ladder" \
    --out "results/ladder-searched/$tag" --force
  cp "$ladder"/models/*-proposal-"$tag"-seed*.onnx "results/ladder-searched/$tag/models/"
done

mkdir -p results/models results/faithful results/ladder results/worst-case
cp "$work"/results/results.json "$work"/results/results.csv results/
cp "$faithful"/results/results.json "$faithful"/results/results.csv results/faithful/
cp "$ladder"/results/results.json "$ladder"/results/results.csv results/ladder/
for dataset in mnist fashion-mnist; do
  for method in proposal traditional; do
    cp "$work/models/$dataset-$method-seed0.onnx" results/models/
  done
done
# The published models again, from results/models/ (so that results name files in the
# repository), with the worst-case search at budget 100, each joined with its evaluation.
searched=${WORST_CASE_WORK_DIR:-bgbench-worst-case}
for model in results/models/*.onnx; do
  name=$(basename "$model" .onnx)
  [ -f "$searched/evals/$name/results.json" ] || $bgbench eval "$model" --noise-sweep \
    --suite extended --out "$searched/evals/$name" --quiet
  [ -f "$searched/attacks/$name/results.json" ] || $bgbench attack "$model" --budget 100 \
    --out "$searched/attacks/$name" --quiet
done
$bgbench merge "$searched"/evals/* "$searched"/attacks/* --out results/worst-case --force
# `results`, not a path to it: the report names its results directories as given.
$bgbench report results results/faithful results/worst-case \
  --ladder results/ladder results/ladder-searched/* \
  --worst-case results/worst-case --runs "$work/runs" "$faithful/runs" \
  --out results/report.md --force --readme README.md
