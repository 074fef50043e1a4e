#!/usr/bin/env bash
# The main job, end to end on the embedded `shapes` dataset:
#   generate the dataset -> train a small MobileNet -> evaluate -> export
#   -> freeze -> classify an image with the exported model.
# Run it with `make run` (TF 1.15) or `make run TF=2`; every path is a variable.
# A second run reuses what the first left in OUT (the dataset; training goes on
# from the last checkpoint up to MAX_STEPS); FRESH=1 deletes OUT first.
# VERBOSITY=1 shows TensorFlow's own messages (passed on as --verbosity).
# The default run prints about 50 lines (tests/test_newcomer.py keeps it
# under 60): a banner per step, a progress line per LOG_EVERY_N_STEPS
# training steps, the accuracy, and where each output went.
set -euo pipefail

# PYTHON: the project environment unless set (see python_env.sh).
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh"
OUT=${OUT:-out}
DATASET_DIR=${DATASET_DIR:-$OUT/shapes}
TRAIN_DIR=${TRAIN_DIR:-$OUT/train}
EVAL_DIR=${EVAL_DIR:-$OUT/eval}
EXPORT_DIR=${EXPORT_DIR:-$OUT/export}
MODEL_NAME=${MODEL_NAME:-mobilenet_v1_025}
IMAGE_SIZE=${IMAGE_SIZE:-64}
MAX_STEPS=${MAX_STEPS:-1500}
BATCH_SIZE=${BATCH_SIZE:-64}
LOG_EVERY_N_STEPS=${LOG_EVERY_N_STEPS:-250}
# Images per class of the generated dataset (empty: the generator's 1000 / 100).
SHAPES_TRAIN_PER_CLASS=${SHAPES_TRAIN_PER_CLASS:-}
SHAPES_VALIDATION_PER_CLASS=${SHAPES_VALIDATION_PER_CLASS:-}
FRESH=${FRESH:-}
VERBOSITY=${VERBOSITY:-}
# How the user started this job, for the "start over" hint.
MAKE_RUN=${MAKE_RUN:-bash scripts/main_job.sh}

say() { printf '\n\033[1m>>> %s\033[0m\n' "$*"; }
missing() { say "SKIPPED: $1 is not built yet ($2); the steps after it are skipped too."; exit 0; }

VERBOSITY_FLAG=()
if [[ -n "$VERBOSITY" ]]; then
  VERBOSITY_FLAG=(--verbosity="$VERBOSITY")
  (( VERBOSITY >= 1 )) && export TF_CPP_MIN_LOG_LEVEL=0
fi
py() { "$PYTHON" "$@" ${VERBOSITY_FLAG[@]+"${VERBOSITY_FLAG[@]}"}; }

# FRESH=1 deletes OUT, but only a folder holding nothing but this job's outputs.
if [[ -n "$FRESH" && "$FRESH" != 0 && -e "$OUT" ]]; then
  for entry in "$OUT"/* "$OUT"/.[!.]*; do
    [[ -e "$entry" ]] || continue
    case "$(basename "$entry")" in
      shapes|train|eval|export) ;;
      *) echo "FRESH=1: not deleting $OUT: it holds $entry, which this job did not write." >&2; exit 1 ;;
    esac
  done
  say "FRESH=1: deleting $OUT (dataset, checkpoints, metrics, exports)"
  rm -rf "$OUT"
fi

# The installed version from the package metadata: importing TensorFlow only
# to print it cost 1-2.5 s per run. Other distributions fall back to it.
tensorflow_version='
try:
    from importlib.metadata import version
except ImportError:  # Python 3.7: setuptools has it
    from pkg_resources import get_distribution
    version = lambda name: get_distribution(name).version
for name in ("tensorflow", "tensorflow-cpu", "intel-tensorflow"):
    try:
        print("TensorFlow", version(name))
        break
    except Exception:
        pass
else:
    import tensorflow
    print("TensorFlow", tensorflow.__version__)
'
say "Main job on $($PYTHON -c "$tensorflow_version" 2>/dev/null); outputs under $OUT/"

[ -f download_and_convert_data.py ] || missing download_and_convert_data.py "issue 4"
if ls "$DATASET_DIR"/shapes_validation_*.tfrecord >/dev/null 2>&1; then
  say "1/5 Reusing the shapes dataset in $DATASET_DIR (only missing files are written)"
else
  say "1/5 Generating the embedded shapes dataset in $DATASET_DIR (offline, deterministic)"
fi
SHAPES_FLAGS=()
[[ -n "$SHAPES_TRAIN_PER_CLASS" ]] && SHAPES_FLAGS+=(--shapes_train_per_class="$SHAPES_TRAIN_PER_CLASS")
[[ -n "$SHAPES_VALIDATION_PER_CLASS" ]] && SHAPES_FLAGS+=(--shapes_validation_per_class="$SHAPES_VALIDATION_PER_CLASS")
py download_and_convert_data.py --dataset_name=shapes --dataset_dir="$DATASET_DIR" \
  ${SHAPES_FLAGS[@]+"${SHAPES_FLAGS[@]}"}

[ -f train_image_classifier.py ] || missing train_image_classifier.py "issue 5"
last_step=""
if [[ -f "$TRAIN_DIR/checkpoint" ]]; then
  last_step=$(sed -n 's/^model_checkpoint_path: ".*-\([0-9]*\)"$/\1/p' "$TRAIN_DIR/checkpoint")
fi
if [[ -n "$last_step" ]]; then
  if (( last_step >= MAX_STEPS )); then plan="already at step $last_step of $MAX_STEPS: no training"
  else plan="training goes on from step $last_step to $MAX_STEPS"; fi
  say "2/5 Reusing the checkpoints in $TRAIN_DIR ($plan). To start over: $MAKE_RUN FRESH=1 (deletes $OUT)"
else
  say "2/5 Training $MODEL_NAME for $MAX_STEPS steps; checkpoints and TensorBoard summaries in $TRAIN_DIR"
fi
py train_image_classifier.py \
  --train_dir="$TRAIN_DIR" --dataset_name=shapes --dataset_split_name=train \
  --dataset_dir="$DATASET_DIR" --model_name="$MODEL_NAME" \
  --train_image_size="$IMAGE_SIZE" --batch_size="$BATCH_SIZE" \
  --max_number_of_steps="$MAX_STEPS" --optimizer=adam --learning_rate=0.002 --opt_epsilon=1e-8 \
  --batch_norm_decay=auto --preprocessing_name=cifarnet \
  --learning_rate_decay_type=fixed --weight_decay=0.00004 \
  --log_every_n_steps="$LOG_EVERY_N_STEPS" --save_interval_secs=120

[ -f eval_image_classifier.py ] || missing eval_image_classifier.py "issue 5"
say "3/5 Evaluating the last checkpoint on the validation split; metrics JSON in $EVAL_DIR"
py eval_image_classifier.py \
  --checkpoint_path="$TRAIN_DIR" --eval_dir="$EVAL_DIR" --dataset_name=shapes \
  --dataset_split_name=validation --dataset_dir="$DATASET_DIR" \
  --model_name="$MODEL_NAME" --eval_image_size="$IMAGE_SIZE" --preprocessing_name=cifarnet

[ -f freeze_graph.py ] || missing freeze_graph.py "issue 6"
say "4/5 Exporting: inference graph, frozen graph with the trained weights, float TFLite model, in $EXPORT_DIR"
mkdir -p "$EXPORT_DIR"
py export_inference_graph.py --model_name="$MODEL_NAME" --dataset_name=shapes \
  --image_size="$IMAGE_SIZE" --output_file="$EXPORT_DIR/inference_graph.pb"
py freeze_graph.py --model_name="$MODEL_NAME" --dataset_name=shapes \
  --dataset_dir="$DATASET_DIR" --image_size="$IMAGE_SIZE" \
  --checkpoint_path="$TRAIN_DIR" --output_file="$EXPORT_DIR/frozen.pb"
py export_tflite.py --input_graph="$EXPORT_DIR/frozen.pb" \
  --output_file="$EXPORT_DIR/model.tflite"

[ -f classify_image.py ] || missing classify_image.py "issue 6"
say "5/5 Classifying a freshly drawn triangle with the exported TFLite model"
$PYTHON -c "import sys, numpy as np; from PIL import Image; from datasets import generate_shapes as g; Image.fromarray(g.render(2, $IMAGE_SIZE, np.random.RandomState(123))).save(sys.argv[1])" "$EXPORT_DIR/triangle.png"
py classify_image.py --model_path="$EXPORT_DIR/model.tflite" \
  --dataset_dir="$DATASET_DIR" "$EXPORT_DIR/triangle.png"

say "Done. Dataset: $DATASET_DIR  checkpoints + TensorBoard: $TRAIN_DIR  metrics: $EVAL_DIR  models: $EXPORT_DIR"
echo "    tensorboard --logdir=$OUT"
