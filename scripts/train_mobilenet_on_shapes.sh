#!/usr/bin/env bash
# Trains a MobileNet on the embedded `shapes` set, then evaluates it.
#
# Creates the dataset if DATASET_DIR holds none, trains MAX_STEPS steps into
# TRAIN_DIR and writes the validation metrics to EVAL_DIR/metrics.json.
# MobileNet V1 by default; any factory name (V2, V3, EdgeTPU, V4) through
# MODEL_NAME, e.g.
#   MODEL_NAME=mobilenet_v2 scripts/train_mobilenet_on_shapes.sh
# Extra arguments go to train_image_classifier.py, e.g. --num_clones=2
# --clone_on_cpu. Every path and size below can be overridden from the
# environment.
set -euo pipefail

# PYTHON: the project environment unless set (see python_env.sh).
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh"
REPO_DIR=${REPO_DIR:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
DATASET_DIR=${DATASET_DIR:-/tmp/shapes}
MODEL_NAME=${MODEL_NAME:-mobilenet_v1}
TRAIN_DIR=${TRAIN_DIR:-/tmp/shapes-models/${MODEL_NAME}}
EVAL_DIR=${EVAL_DIR:-${TRAIN_DIR}/eval}
IMAGE_SIZE=${IMAGE_SIZE:-64}
BATCH_SIZE=${BATCH_SIZE:-64}
MAX_STEPS=${MAX_STEPS:-5000}
OPTIMIZER=${OPTIMIZER:-rmsprop}
LEARNING_RATE=${LEARNING_RATE:-0.01}
# Empty: the model's own preprocessing (inception-style for MobileNets).
PREPROCESSING_NAME=${PREPROCESSING_NAME:-}

cd "${REPO_DIR}"
if ! ls "${DATASET_DIR}"/shapes_train_*.tfrecord >/dev/null 2>&1; then
  "${PYTHON}" download_and_convert_data.py --dataset_name=shapes \
      --dataset_dir="${DATASET_DIR}"
fi

"${PYTHON}" train_image_classifier.py \
    --train_dir="${TRAIN_DIR}" \
    --dataset_name=shapes \
    --dataset_split_name=train \
    --dataset_dir="${DATASET_DIR}" \
    --model_name="${MODEL_NAME}" \
    --preprocessing_name="${PREPROCESSING_NAME}" \
    --train_image_size="${IMAGE_SIZE}" \
    --batch_size="${BATCH_SIZE}" \
    --max_number_of_steps="${MAX_STEPS}" \
    --optimizer="${OPTIMIZER}" \
    --learning_rate="${LEARNING_RATE}" \
    --learning_rate_decay_type=exponential \
    --learning_rate_decay_factor=0.94 \
    --num_epochs_per_decay=2.0 \
    --weight_decay=0.00004 \
    --save_interval_secs=300 \
    --save_summaries_secs=120 \
    --log_every_n_steps=50 \
    "$@"

"${PYTHON}" eval_image_classifier.py \
    --checkpoint_path="${TRAIN_DIR}" \
    --eval_dir="${EVAL_DIR}" \
    --dataset_name=shapes \
    --dataset_split_name=validation \
    --dataset_dir="${DATASET_DIR}" \
    --model_name="${MODEL_NAME}" \
    --preprocessing_name="${PREPROCESSING_NAME}" \
    --eval_image_size="${IMAGE_SIZE}"
