#!/usr/bin/env bash
# TiM4Rec Table 3 on Amazon-Beauty, on a CPU: every row of benchmarks/results/reproduction.json
# "amazon-beauty" (and its tie-order / protocol variants) comes from these commands, run one
# after the other in the background:
#
#   nohup bash benchmarks/table3_beauty.sh > runs/table3.log 2>&1 &
#
# Each finished (model, seed) is written at once; rerunning skips finished rows and resumes an
# interrupted one from its checkpoint (runs/reproduce/), so the table can be built in parts.
# Objective "all" (every position predicts its next item; the windows hold exactly RecBole's
# prefix targets) at batch 256 rows, early stopping as RecBole (train.early_stop=recbole).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export SSMLAB_DATA_DIR=${SSMLAB_DATA_DIR:-$(realpath ../shared/datasets)}
ALL=(--set train.objective=all --set train.batch_size=256 --set train.early_stop=recbole)
LAST=(--set train.objective=last --set train.early_stop=recbole)
run() { "$PY" benchmarks/reproduce.py --data amazon-beauty --threads 2 "$@"; }

phase=${1:-all}
if [[ $phase == all || $phase == fast ]]; then
  run --models sasrec --seeds 0,1,2 "${ALL[@]}"
  run --models gru4rec,lrurec "${ALL[@]}"
fi
