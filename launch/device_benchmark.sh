#!/usr/bin/env bash
# The GPU figures of issue 16, item 5, on a lent GPU machine: paper-size 8x
# forward (coarse, fine, cascade) at batch 1 and 32, and the coarse training
# step at 320x240, in float32 and in bfloat16 (BUILD_NOTES.md, speed).
#
# Such a machine has CUDA JAX, flax, optax, orbax and chex in its own Python
# but no network, so what it lacks travels as wheels:
#   here:  make device-wheels        (writes .device_wheels/, about 11 MB)
#   there: bash launch/device_benchmark.sh OUT_DIR   (carry .device_wheels)
# It writes OUT_DIR/gpu.txt (the device, JAX's version) and, per dtype,
# flic_8x_<dtype>.json and .log. DEVICE_PYTHON picks the Python (python3),
# TRAIN_BATCH the training batch (the config's 32); BENCHMARK_ARGS are added
# to launch.benchmark's flags (a smoke run on a CPU: "--repeats=1
# --warmup=0 --batch_sizes=1").
set -euo pipefail
out=${1:?usage: bash launch/device_benchmark.sh OUT_DIR}
wheels=.device_wheels
if [[ ! -f $wheels/requirements.txt ]]; then
  echo "$0: no $wheels/requirements.txt: run 'make device-wheels' where" \
       "there is a network and carry $wheels" >&2
  exit 1
fi
mkdir -p "$out"
python=${DEVICE_PYTHON:-python3}
# Beside that Python's own packages (it is itself a virtual environment
# there, so a new one would not see them): a folder on PYTHONPATH.
"$python" -m pip install --quiet --no-index --no-deps --target .device_site \
  --find-links "$wheels" -r "$wheels/requirements.txt"
export PYTHONPATH="$PWD/.device_site:$PWD" PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv \
    || echo 'no nvidia-smi'
  "$python" -c 'import jax; print("jax", jax.__version__, jax.devices())'
} 2>&1 | tee "$out/gpu.txt"
for dtype in float32 bfloat16; do
  "$python" -m launch.benchmark --config=configs/flic_8x.py \
    --poolings=8 --batch_sizes=1,32 --repeats=20 --train_stages=coarse \
    --train_batch_size="${TRAIN_BATCH:-32}" \
    --config.model.compute_dtype="$dtype" --out="$out/flic_8x_$dtype.json" \
    ${BENCHMARK_ARGS:-} 2>&1 | tee "$out/flic_8x_$dtype.log"
done
