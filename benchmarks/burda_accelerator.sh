#!/usr/bin/env bash
# The members of Burda et al.'s table a CPU cannot finish
# (configs/burda_iwae.py:accelerator: the one-layer k = 50 VAE and IWAE and
# every two-stochastic-layer member) on a GPU or TPU, resumable across
# device calls. 3,280 epochs of 2,980 steps per member do not fit one call:
# each call trains until BUDGET_SECONDS, then copies the workdir
# (checkpoints, metrics) to $OUT/burda_accelerator; carry that folder back
# as WORKDIR on the next call and it resumes from its newest checkpoint.
# Once every member is trained it evaluates k = 5000 on all 10,000 test
# images and the active units.
#
#   OUT=/tmp/burda WORKDIR=.device_runs/burda bash benchmarks/burda_accelerator.sh
#
# Settings (environment): DATA_DIR (.device_data, as accelerator_check.sh),
# WORKDIR (.device_runs/burda), BUDGET_SECONDS (540), ROWS
# (accelerator), EXTRA_FLAGS (more --config.* flags; the CPU test shortens
# the schedule with them), IWAE_SAMPLES (5000).
# tests/test_accelerator_check.py runs it on CPU with tiny settings.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output directory}"
DATA_DIR=${DATA_DIR:-.device_data}
WORKDIR=${WORKDIR:-.device_runs/burda}
BUDGET_SECONDS=${BUDGET_SECONDS:-540}
ROWS=${ROWS:-accelerator}
IWAE_SAMPLES=${IWAE_SAMPLES:-5000}
PYTHON=${PYTHON:-python3}
read -r -a EXTRA <<< "${EXTRA_FLAGS:-}"
mkdir -p "$OUT" "$(dirname "$WORKDIR")"
export PYTHONUNBUFFERED=1

if compgen -G ".whl/*.whl" > /dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
      --target /tmp/vae_jax_site .whl/*.whl && \
      export PYTHONPATH=/tmp/vae_jax_site:${PYTHONPATH:-}
fi

# Evaluation needs the time left after training: keep a fifth for it.
train_limit=$((BUDGET_SECONDS * 4 / 5))
timeout "$train_limit" "$PYTHON" -m launch.sweep \
    --config=configs/burda_iwae.py:"$ROWS" --workdir="$WORKDIR" \
    --data_dir="$DATA_DIR" --config.plots=False "${EXTRA[@]}" \
    > "$OUT/burda_train.log" 2>&1
status=$?
echo "train: exit $status in $SECONDS s (limit $train_limit s)" \
    | tee -a "$OUT/summary.txt"
if [ "$status" -eq 0 ]; then
  timeout $((BUDGET_SECONDS - SECONDS)) "$PYTHON" -m launch.evaluate \
      --workdir="$WORKDIR" --metrics=iwae,active_units \
      --iwae_samples="$IWAE_SAMPLES" --iwae_batch=20 \
      > "$OUT/burda_evaluate.log" 2>&1
  echo "evaluate: exit $? at $SECONDS s" | tee -a "$OUT/summary.txt"
fi
rm -rf "$OUT/burda_accelerator"
cp -r "$WORKDIR" "$OUT/burda_accelerator"
tail -n 3 "$OUT/burda_train.log"
