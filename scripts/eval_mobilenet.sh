#!/usr/bin/env bash
# Evaluates a trained MobileNet: the latest checkpoint of CHECKPOINT_PATH (a
# directory, or one checkpoint prefix), or with WATCH_INTERVAL_SECS set,
# every new checkpoint as training writes it (until TIMEOUT_SECS pass
# without one). Metrics: EVAL_DIR/metrics.json and TensorBoard summaries.
# Extra arguments go to eval_image_classifier.py.
set -euo pipefail

# PYTHON: the project environment unless set (see python_env.sh).
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh"
REPO_DIR=${REPO_DIR:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
DATASET_NAME=${DATASET_NAME:-shapes}
DATASET_SPLIT_NAME=${DATASET_SPLIT_NAME:-validation}
DATASET_DIR=${DATASET_DIR:-/tmp/shapes}
MODEL_NAME=${MODEL_NAME:-mobilenet_v1}
CHECKPOINT_PATH=${CHECKPOINT_PATH:-/tmp/shapes-models/${MODEL_NAME}}
EVAL_DIR=${EVAL_DIR:-${CHECKPOINT_PATH%/}/eval}
IMAGE_SIZE=${IMAGE_SIZE:-64}
BATCH_SIZE=${BATCH_SIZE:-100}
PREPROCESSING_NAME=${PREPROCESSING_NAME:-}
WATCH_INTERVAL_SECS=${WATCH_INTERVAL_SECS:-}
TIMEOUT_SECS=${TIMEOUT_SECS:-3600}

WATCH_FLAGS=()
if [[ -n "${WATCH_INTERVAL_SECS}" ]]; then
  WATCH_FLAGS=(--eval_interval_secs="${WATCH_INTERVAL_SECS}"
               --timeout="${TIMEOUT_SECS}")
fi

cd "${REPO_DIR}"
"${PYTHON}" eval_image_classifier.py \
    --checkpoint_path="${CHECKPOINT_PATH}" \
    --eval_dir="${EVAL_DIR}" \
    --dataset_name="${DATASET_NAME}" \
    --dataset_split_name="${DATASET_SPLIT_NAME}" \
    --dataset_dir="${DATASET_DIR}" \
    --model_name="${MODEL_NAME}" \
    --preprocessing_name="${PREPROCESSING_NAME}" \
    --eval_image_size="${IMAGE_SIZE}" \
    --batch_size="${BATCH_SIZE}" \
    ${WATCH_FLAGS[@]+"${WATCH_FLAGS[@]}"} \
    "$@"
