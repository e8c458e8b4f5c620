#!/usr/bin/env bash
# Burda et al.'s k = 50 members (VAE and IWAE, one stochastic layer,
# configs/burda_iwae.py:accelerator) on a GPU or TPU, resumable across
# device calls. 3,280 epochs of 2,980 steps do not fit one call: each call
# trains until BUDGET_SECONDS, then copies the workdir (checkpoints, metrics)
# to $OUT/burda_k50; carry that folder back as WORKDIR on the next call and
# it resumes from its newest checkpoint. Once every epoch is trained it
# evaluates k = 5000 on all 10,000 test images and the active units.
#
#   OUT=/tmp/burda WORKDIR=.device_runs/burda_k50 bash benchmarks/burda_accelerator.sh
#
# Settings (environment): DATA_DIR (.device_data, as accelerator_check.sh),
# WORKDIR (.device_runs/burda_k50), BUDGET_SECONDS (540), ROWS
# (accelerator), EXTRA_FLAGS (more --config.* flags; the CPU test shortens
# the schedule with them), IWAE_SAMPLES (5000).
# tests/test_accelerator_check.py runs it on CPU with tiny settings.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output directory}"
DATA_DIR=${DATA_DIR:-.device_data}
WORKDIR=${WORKDIR:-.device_runs/burda_k50}
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
    --config.data.dir="$DATA_DIR" --config.plots=False "${EXTRA[@]}" \
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
rm -rf "$OUT/burda_k50"
cp -r "$WORKDIR" "$OUT/burda_k50"
tail -n 3 "$OUT/burda_train.log"
