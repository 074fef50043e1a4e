#!/usr/bin/env bash
# Float, post-training int8 and quantization-aware int8 accuracy, side by side:
# mobilenet_v1_025 at 64x64 on the embedded `shapes` set (the main job's
# recipe), then QAT_STEPS of quantization-aware fine-tuning from the float
# checkpoint and, as the control, as many float fine-tuning steps at the same
# learning rate (so QAT is not credited with the extra training), then
# export_model.py --verify on every validation image of each checkpoint (its
# table has a top-1 accuracy column).
#
#   bash benchmarks/quantization_accuracy.sh                  # TF 2 stack
#   PYTHON=.venv/tf1/bin/python bash benchmarks/quantization_accuracy.sh out/qacc_tf1
#
# Run from the repository root. A second run reuses the dataset and goes on
# from the checkpoints already there (nothing is trained twice).
set -euo pipefail
OUT=${1:-out/quantization_accuracy}
PYTHON=${PYTHON:-.venv/tf2/bin/python}
FLOAT_STEPS=${FLOAT_STEPS:-1500}
QAT_STEPS=${QAT_STEPS:-500}
# shapes: 6 classes x 100 validation images.
VALIDATION_IMAGES=600

recipe=(--dataset_name=shapes --dataset_dir="$OUT/shapes"
  --model_name=mobilenet_v1_025 --train_image_size=64 --batch_size=64
  --preprocessing_name=cifarnet --optimizer=adam --opt_epsilon=1e-8
  --learning_rate_decay_type=fixed --batch_norm_decay=auto
  --log_every_n_steps=250 --noshowprefixforinfo)
verify=(--dataset_dir="$OUT/shapes" --formats=tflite,tflite_int8 --verify
  --num_verify_images=$VALIDATION_IMAGES --min_top1_agreement=0
  --noshowprefixforinfo)

"$PYTHON" download_and_convert_data.py --dataset_name=shapes \
  --dataset_dir="$OUT/shapes"
"$PYTHON" train_image_classifier.py "${recipe[@]}" --learning_rate=0.002 \
  --max_number_of_steps="$FLOAT_STEPS" --train_dir="$OUT/float"
# Fine-tuning starts a new run at step 0: QAT_STEPS more steps, quantized
# from the first, at a quarter of the float learning rate.
"$PYTHON" train_image_classifier.py "${recipe[@]}" --learning_rate=0.0005 \
  --checkpoint_path="$OUT/float" --quantize_delay=0 \
  --max_number_of_steps="$QAT_STEPS" --train_dir="$OUT/qat"
"$PYTHON" train_image_classifier.py "${recipe[@]}" --learning_rate=0.0005 \
  --checkpoint_path="$OUT/float" \
  --max_number_of_steps="$QAT_STEPS" --train_dir="$OUT/float_more"
echo "=== float checkpoint: float TFLite and post-training int8 TFLite"
"$PYTHON" export_model.py --checkpoint_path="$OUT/float" \
  --output_dir="$OUT/export_float" "${verify[@]}"
echo "=== float checkpoint fine-tuned QAT_STEPS more in float (the control)"
"$PYTHON" export_model.py --checkpoint_path="$OUT/float_more" \
  --output_dir="$OUT/export_float_more" "${verify[@]}"
echo "=== quantization-aware checkpoint: fake-quant TFLite and its int8 TFLite"
"$PYTHON" export_model.py --checkpoint_path="$OUT/qat" --quantize \
  --output_dir="$OUT/export_qat" "${verify[@]}"
