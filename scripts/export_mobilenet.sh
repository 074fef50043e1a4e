#!/usr/bin/env bash
# Exports a trained MobileNet: the inference GraphDef (no weights), the
# frozen graph (weights from the latest checkpoint of CHECKPOINT_PATH) and a
# float TFLite model, all under OUTPUT_DIR. The input node is `input`, the
# output `<scope>/Predictions/Reshape_1` (`MobilenetV1`, `MobilenetV2`,
# `MobilenetV3`, `MobilenetEdgeTPU` or `MobilenetV4`).
# Extra arguments go to freeze_graph.py (e.g. --moving_average_decay=0.9999).
set -euo pipefail

# PYTHON: the project environment unless set (see python_env.sh).
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh"
REPO_DIR=${REPO_DIR:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
DATASET_NAME=${DATASET_NAME:-shapes}
DATASET_DIR=${DATASET_DIR:-/tmp/shapes}
MODEL_NAME=${MODEL_NAME:-mobilenet_v1}
CHECKPOINT_PATH=${CHECKPOINT_PATH:-/tmp/shapes-models/${MODEL_NAME}}
OUTPUT_DIR=${OUTPUT_DIR:-${CHECKPOINT_PATH%/}/export}
IMAGE_SIZE=${IMAGE_SIZE:-64}

cd "${REPO_DIR}"
mkdir -p "${OUTPUT_DIR}"
"${PYTHON}" export_inference_graph.py \
    --model_name="${MODEL_NAME}" \
    --dataset_name="${DATASET_NAME}" \
    --dataset_dir="${DATASET_DIR}" \
    --image_size="${IMAGE_SIZE}" \
    --output_file="${OUTPUT_DIR}/${MODEL_NAME}_inf_graph.pb"
"${PYTHON}" freeze_graph.py \
    --model_name="${MODEL_NAME}" \
    --dataset_name="${DATASET_NAME}" \
    --dataset_dir="${DATASET_DIR}" \
    --image_size="${IMAGE_SIZE}" \
    --checkpoint_path="${CHECKPOINT_PATH}" \
    --output_file="${OUTPUT_DIR}/${MODEL_NAME}_frozen.pb" \
    "$@"
"${PYTHON}" export_tflite.py \
    --input_graph="${OUTPUT_DIR}/${MODEL_NAME}_frozen.pb" \
    --output_file="${OUTPUT_DIR}/${MODEL_NAME}.tflite"
