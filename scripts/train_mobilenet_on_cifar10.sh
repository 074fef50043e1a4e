#!/usr/bin/env bash
# Trains a MobileNet on CIFAR-10 (32x32 images, cifarnet preprocessing),
# then evaluates it on the test split.
#
# Downloads and converts CIFAR-10 into DATASET_DIR when it holds none (this
# step needs the internet). MobileNet V1 by default; any factory name (V2,
# V3, EdgeTPU, V4) through MODEL_NAME, e.g.
#   MODEL_NAME=mobilenet_v2 scripts/train_mobilenet_on_cifar10.sh
# Extra arguments go to train_image_classifier.py. Every path and size below
# can be overridden from the environment.
set -euo pipefail

# PYTHON: the project environment unless set (see python_env.sh).
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh"
REPO_DIR=${REPO_DIR:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
DATASET_DIR=${DATASET_DIR:-/tmp/cifar10}
MODEL_NAME=${MODEL_NAME:-mobilenet_v1}
TRAIN_DIR=${TRAIN_DIR:-/tmp/cifar10-models/${MODEL_NAME}}
EVAL_DIR=${EVAL_DIR:-${TRAIN_DIR}/eval}
IMAGE_SIZE=${IMAGE_SIZE:-32}
BATCH_SIZE=${BATCH_SIZE:-128}
MAX_STEPS=${MAX_STEPS:-100000}
LEARNING_RATE=${LEARNING_RATE:-0.1}
PREPROCESSING_NAME=${PREPROCESSING_NAME:-cifarnet}

cd "${REPO_DIR}"
if ! ls "${DATASET_DIR}"/cifar10_train*.tfrecord >/dev/null 2>&1; then
  "${PYTHON}" download_and_convert_data.py --dataset_name=cifar10 \
      --dataset_dir="${DATASET_DIR}"
fi

"${PYTHON}" train_image_classifier.py \
    --train_dir="${TRAIN_DIR}" \
    --dataset_name=cifar10 \
    --dataset_split_name=train \
    --dataset_dir="${DATASET_DIR}" \
    --model_name="${MODEL_NAME}" \
    --preprocessing_name="${PREPROCESSING_NAME}" \
    --train_image_size="${IMAGE_SIZE}" \
    --batch_size="${BATCH_SIZE}" \
    --max_number_of_steps="${MAX_STEPS}" \
    --optimizer=momentum \
    --momentum=0.9 \
    --learning_rate="${LEARNING_RATE}" \
    --learning_rate_decay_type=exponential \
    --learning_rate_decay_factor=0.1 \
    --num_epochs_per_decay=100 \
    --weight_decay=0.00004 \
    --moving_average_decay=0.9999 \
    --save_interval_secs=600 \
    --save_summaries_secs=300 \
    --log_every_n_steps=100 \
    "$@"

"${PYTHON}" eval_image_classifier.py \
    --checkpoint_path="${TRAIN_DIR}" \
    --eval_dir="${EVAL_DIR}" \
    --dataset_name=cifar10 \
    --dataset_split_name=test \
    --dataset_dir="${DATASET_DIR}" \
    --model_name="${MODEL_NAME}" \
    --preprocessing_name="${PREPROCESSING_NAME}" \
    --eval_image_size="${IMAGE_SIZE}" \
    --moving_average_decay=0.9999
