#!/usr/bin/env bash
# Peer comparison: RecBole 1.2.1's SASRec trained on exactly ssmlab's split, timed per epoch.
#
# Usage: benchmarks/peer_recbole.sh [DATASET] [EPOCHS]     (defaults: amazon-beauty 1)
# Env:   RECBOLE_VENV (default /tmp/recbole-venv, outside the repository), PEER_OUT (default
#        /tmp/recbole-peer), DEVICE (cpu | cuda), SSMLAB_DATA_DIR (raw data, as for ssmlab).
# Steps: (1) create the RecBole venv once: torch 2.13.0 (CPU wheel; on a GPU machine install the
#        matching CUDA build instead), recbole==1.2.1, setuptools<81 (pkg_resources), numpy<2,
#        pandas<3; (2) export our processed split as a RecBole atomic .inter file with ssmlab's
#        venv; (3) train RecBole's SASRec (max_len 50, d=64, 2 layers, batch 2048, CE, full
#        ranking, 'LS' leave-one-out) with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (RecBole 1.2.1
#        loads its own checkpoints with torch.load defaults), RecBole's side in
#        $PEER_OUT/recbole-<data>.json; (4) train ssmlab's SASRec with the same settings until it
#        reaches RecBole's best valid NDCG@10: benchmarks/results/peer-recbole-<data>.{json,md}.
# Measured earlier on this 2-core machine: RecBole SASRec on ML-100K, 210-236 s per training epoch.
set -euo pipefail

DATA="${1:-amazon-beauty}"
EPOCHS="${2:-1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RECBOLE_VENV:-/tmp/recbole-venv}"
OUT="${PEER_OUT:-/tmp/recbole-peer}"
DEVICE="${DEVICE:-cpu}"
SSMLAB_PY="${SSMLAB_PY:-$ROOT/.venv/bin/python}"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import recbole" 2>/dev/null; then
    echo "creating $VENV (recbole==1.2.1)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet "torch==2.13.0"
    "$VENV/bin/pip" install --quiet "recbole==1.2.1" "setuptools<81" "numpy<2" "pandas<3"
fi

"$SSMLAB_PY" "$ROOT/benchmarks/peer_recbole.py" export --data "$DATA" --out "$OUT"
cd "$OUT"  # RecBole writes log/ and log_tensorboard/ into the working directory
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$VENV/bin/python" "$ROOT/benchmarks/peer_recbole.py" run \
    --data "$DATA" --out "$OUT" --epochs "$EPOCHS" --device "$DEVICE"
"$SSMLAB_PY" "$ROOT/benchmarks/peer_recbole.py" compare --data "$DATA" --out "$OUT"
