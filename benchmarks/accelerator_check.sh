#!/usr/bin/env bash
# The accelerator check: one call on a fresh GPU (or TPU) machine that holds
# only this working tree. Writes under $OUT:
#   devices.txt                 devices and versions
#   frameworks_default/, frameworks_study_d/
#                               benchmarks.run: JAX against the PyTorch
#                               variants (TF32 on both sides on a GPU)
#   conv_study_e/               Study E's conv VAE, XLA's convolutions
#   sweep_scaling/              Study D's MLP as K-member sweeps: images/s
#                               and peak device memory per K
#   study_d/                    Study D at its budget (7 members x 300
#                               epochs) if the time left allows: its table
#   *.log, summary.txt          each step's output and exit status
#
# What the device image lacks travels with the tree (both kept out of git):
#   .whl/          wheels to install offline (ml_collections):
#                  pip download --no-deps -d .whl ml_collections==1.1.0
#   .device_data/  a copy of the MNIST files: cp -r ../shared/data/mnist .device_data/
#
#   OUT=/tmp/check bash benchmarks/accelerator_check.sh
#
# Settings (environment): DATA_DIR (.device_data), EPOCHS (10), SWEEP_KS
# (1,8,64,256), BUDGET_SECONDS (450: the whole call), STEP_SECONDS (150),
# TRAIN_SUBSET (all), TORCH_VARIANTS (all), STUDY_D_EPOCHS (Study D's own
# 300). tests/test_accelerator_check.py
# runs it on CPU with tiny settings.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output directory}"
DATA_DIR=${DATA_DIR:-.device_data}
EPOCHS=${EPOCHS:-10}
SWEEP_KS=${SWEEP_KS:-1,8,64,256}
BUDGET_SECONDS=${BUDGET_SECONDS:-450}
STEP_SECONDS=${STEP_SECONDS:-150}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

if compgen -G ".whl/*.whl" > /dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
      --target /tmp/vae_jax_site .whl/*.whl && \
      export PYTHONPATH=/tmp/vae_jax_site:${PYTHONPATH:-}
fi

DATA_FLAGS=(--data_dir="$DATA_DIR")
if [ -n "${TRAIN_SUBSET:-}" ]; then
  DATA_FLAGS+=(--config.data.train_subset="$TRAIN_SUBSET"
               --config.data.test_subset="$TRAIN_SUBSET")
fi
TORCH_FLAGS=()
if [ -n "${TORCH_VARIANTS:-}" ]; then
  TORCH_FLAGS+=(--torch_variants="$TORCH_VARIANTS")
fi

left() { echo $((BUDGET_SECONDS - SECONDS)); }

# step NAME COMMAND...: runs it with the smaller of STEP_SECONDS and the time
# left, logs to $OUT/NAME.log, records its status in summary.txt.
step() {
  local name=$1; shift
  local limit=$STEP_SECONDS
  if [ "$(left)" -lt "$limit" ]; then limit=$(left); fi
  if [ "$limit" -le 10 ]; then
    echo "$name: skipped (no time left)" | tee -a "$OUT/summary.txt"
    return
  fi
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local status=$?
  echo "$name: exit $status in $((SECONDS - start)) s (limit $limit s)" \
      | tee -a "$OUT/summary.txt"
}

{
  date -u
  nvidia-smi -L 2>/dev/null || echo 'nvidia-smi: none'
  "$PYTHON" -c 'import jax, flax, optax, orbax.checkpoint as ocp, ml_collections
print("jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__)
print("devices", jax.devices())'
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' \
      2>/dev/null || echo 'torch: not installed'
} > "$OUT/devices.txt" 2>&1
cat "$OUT/devices.txt"

step frameworks_default "$PYTHON" -m benchmarks.run --config=configs/default.py \
    "${DATA_FLAGS[@]}" --epochs="$EPOCHS" "${TORCH_FLAGS[@]}" \
    --workdir="$OUT/frameworks_default"
step frameworks_study_d "$PYTHON" -m benchmarks.run --config=configs/study_d.py \
    "${DATA_FLAGS[@]}" --epochs="$EPOCHS" "${TORCH_FLAGS[@]}" \
    --workdir="$OUT/frameworks_study_d"
step conv_study_e "$PYTHON" -m benchmarks.run --config=configs/study_e.py \
    --config.model.latent_size=2 --config.model.conv_impl=xla \
    "${DATA_FLAGS[@]}" --epochs=3 "${TORCH_FLAGS[@]}" \
    --workdir="$OUT/conv_study_e"
step sweep_scaling "$PYTHON" -m benchmarks.sweep_scaling \
    --config=configs/study_d.py "${DATA_FLAGS[@]}" --members="$SWEEP_KS" \
    --epochs=2 --workdir="$OUT/sweep_scaling"
# Study D at its budget in a scratch workdir; its tables come back. A run
# the time cuts short leaves its metrics (epochs so far) for the record.
WORK=$(mktemp -d)
STUDY_D_FLAGS=()
if [ -n "${STUDY_D_EPOCHS:-}" ]; then
  STUDY_D_FLAGS+=(--config.num_epochs="$STUDY_D_EPOCHS")
fi
step study_d "$PYTHON" -m launch.sweep --config=configs/study_d.py \
    "${DATA_FLAGS[@]}" "${STUDY_D_FLAGS[@]}" --workdir="$WORK/study_d" \
    --config.plots=False
mkdir -p "$OUT/study_d"
cp "$WORK"/study_d/results.{md,json} "$WORK"/study_d/metrics.jsonl \
    "$OUT/study_d/" 2>/dev/null
rm -rf "$WORK"
echo "total: $SECONDS s" | tee -a "$OUT/summary.txt"
