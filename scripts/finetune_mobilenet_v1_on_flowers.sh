#!/usr/bin/env bash
# Fine-tunes the released ImageNet MobileNet V1 1.0/224 on Flowers (5
# classes) in two stages, evaluating after each:
#   1. a new classification head only (the body stays frozen), then
#   2. all layers, starting from stage 1, with a smaller learning rate.
#
# Downloads the checkpoint and the flowers data when missing (needs the
# internet). Every path and size below can be overridden from the
# environment; extra arguments go to both training runs.
set -euo pipefail

# PYTHON: the project environment unless set (see python_env.sh).
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh"
REPO_DIR=${REPO_DIR:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
PRETRAINED_CHECKPOINT_DIR=${PRETRAINED_CHECKPOINT_DIR:-/tmp/checkpoints}
CHECKPOINT_URL=${CHECKPOINT_URL:-http://download.tensorflow.org/models/mobilenet_v1_2018_08_02/mobilenet_v1_1.0_224.tgz}
PRETRAINED_CHECKPOINT=${PRETRAINED_CHECKPOINT:-${PRETRAINED_CHECKPOINT_DIR}/mobilenet_v1_1.0_224.ckpt}
DATASET_DIR=${DATASET_DIR:-/tmp/flowers}
TRAIN_DIR=${TRAIN_DIR:-/tmp/flowers-models/mobilenet_v1}
MODEL_NAME=${MODEL_NAME:-mobilenet_v1}
HEAD_SCOPE=${HEAD_SCOPE:-MobilenetV1/Logits}
IMAGE_SIZE=${IMAGE_SIZE:-224}
BATCH_SIZE=${BATCH_SIZE:-32}
HEAD_STEPS=${HEAD_STEPS:-1000}
ALL_STEPS=${ALL_STEPS:-500}

# Relative paths are taken from where the launcher was started (it changes
# into the repository below).
for name in PRETRAINED_CHECKPOINT_DIR PRETRAINED_CHECKPOINT DATASET_DIR TRAIN_DIR; do
  [[ "${!name}" == /* ]] || printf -v "${name}" '%s/%s' "${PWD}" "${!name}"
done
cd "${REPO_DIR}"
if [[ ! -f "${PRETRAINED_CHECKPOINT}.index" ]]; then
  mkdir -p "${PRETRAINED_CHECKPOINT_DIR}"
  if ! curl -fsSL "${CHECKPOINT_URL}" -o "${PRETRAINED_CHECKPOINT_DIR}/checkpoint.tgz"; then
    rm -f "${PRETRAINED_CHECKPOINT_DIR}/checkpoint.tgz"
    echo "finetune_mobilenet_v1_on_flowers.sh: cannot download the ImageNet checkpoint" \
      "${CHECKPOINT_URL} (no internet?). Fetch and unpack it on a connected machine" \
      "(tar -xzf mobilenet_v1_1.0_224.tgz), copy mobilenet_v1_1.0_224.ckpt.* into" \
      "${PRETRAINED_CHECKPOINT_DIR}, or set PRETRAINED_CHECKPOINT to where they are." >&2
    exit 1
  fi
  tar -xzf "${PRETRAINED_CHECKPOINT_DIR}/checkpoint.tgz" \
      -C "${PRETRAINED_CHECKPOINT_DIR}"
fi
if ! ls "${DATASET_DIR}"/flowers_train_*.tfrecord >/dev/null 2>&1; then
  "${PYTHON}" download_and_convert_data.py --dataset_name=flowers \
      --dataset_dir="${DATASET_DIR}"
fi

evaluate() {  # evaluate CHECKPOINT_DIR
  "${PYTHON}" eval_image_classifier.py \
      --checkpoint_path="$1" \
      --eval_dir="$1/eval" \
      --dataset_name=flowers \
      --dataset_split_name=validation \
      --dataset_dir="${DATASET_DIR}" \
      --model_name="${MODEL_NAME}" \
      --eval_image_size="${IMAGE_SIZE}"
}

# Stage 1: the 1001-class ImageNet head does not fit 5 flowers; train a new
# one on the frozen body.
"${PYTHON}" train_image_classifier.py \
    --train_dir="${TRAIN_DIR}" \
    --dataset_name=flowers \
    --dataset_split_name=train \
    --dataset_dir="${DATASET_DIR}" \
    --model_name="${MODEL_NAME}" \
    --train_image_size="${IMAGE_SIZE}" \
    --checkpoint_path="${PRETRAINED_CHECKPOINT}" \
    --checkpoint_exclude_scopes="${HEAD_SCOPE}" \
    --trainable_scopes="${HEAD_SCOPE}" \
    --max_number_of_steps="${HEAD_STEPS}" \
    --batch_size="${BATCH_SIZE}" \
    --learning_rate=0.01 \
    --learning_rate_decay_type=fixed \
    --optimizer=rmsprop \
    --weight_decay=0.00004 \
    --save_interval_secs=60 \
    --save_summaries_secs=60 \
    --log_every_n_steps=100 \
    "$@"
evaluate "${TRAIN_DIR}"

# Stage 2: every layer, from the stage-1 checkpoint.
"${PYTHON}" train_image_classifier.py \
    --train_dir="${TRAIN_DIR}/all" \
    --dataset_name=flowers \
    --dataset_split_name=train \
    --dataset_dir="${DATASET_DIR}" \
    --model_name="${MODEL_NAME}" \
    --train_image_size="${IMAGE_SIZE}" \
    --checkpoint_path="${TRAIN_DIR}" \
    --max_number_of_steps="${ALL_STEPS}" \
    --batch_size="${BATCH_SIZE}" \
    --learning_rate=0.0001 \
    --learning_rate_decay_type=fixed \
    --optimizer=rmsprop \
    --weight_decay=0.00004 \
    --save_interval_secs=60 \
    --save_summaries_secs=60 \
    --log_every_n_steps=10 \
    "$@"
evaluate "${TRAIN_DIR}/all"
