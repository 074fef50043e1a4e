#!/usr/bin/env bash
# The main job, end to end on the embedded `shapes` dataset:
#   generate the dataset -> train a small MobileNet -> evaluate -> export
#   -> freeze -> classify an image with the exported model.
# Run it with `make run` (TF 1.15) or `make run TF=2`; every path is a variable.
# A second run reuses what the first left in OUT (the dataset; training goes on
# from the last checkpoint up to MAX_STEPS); FRESH=1 deletes OUT first.
# VERBOSITY=1 shows TensorFlow's own messages (passed on as --verbosity).
# The default run prints about 50 lines (tests/test_first_run_checks.py keeps it
# under 60): a banner per step, a progress line per LOG_EVERY_N_STEPS
# training steps, the accuracy, and where each output went.
set -euo pipefail

# The settings given to this run (before the defaults below fill in the
# others): the start-over hint repeats them, so that pasted, it deletes
# this run's OUT and redoes this run.
JOB_SETTINGS=(PYTHON OUT DATASET_DIR TRAIN_DIR EVAL_DIR EXPORT_DIR MODEL_NAME
  IMAGE_SIZE MAX_STEPS BATCH_SIZE LOG_EVERY_N_STEPS SUMMARY_EVERY_N_STEPS
  SHAPES_TRAIN_PER_CLASS SHAPES_VALIDATION_PER_CLASS)
given_settings=()
for name in "${JOB_SETTINGS[@]}"; do
  # OUT is added below; make passes PYTHON itself (MAKE_RUN says TF=).
  [[ $name == OUT || ( -n "${MAKE_RUN:-}" && $name == PYTHON ) ]] && continue
  [[ -n "${!name:-}" ]] && given_settings+=("$name=$(printf '%q' "${!name}")")
done

# The repository's scripts by their full path: the job may be started from
# any working directory, and relative paths in its settings are taken from
# that directory.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

# PYTHON: the project environment unless set (see python_env.sh).
source "$REPO/scripts/python_env.sh"
OUT=${OUT:-out}
# The OUT make uses when none is given (out/tf1, out/tf2...); the hint names
# any other.
DEFAULT_OUT=${DEFAULT_OUT:-out}
DATASET_DIR=${DATASET_DIR:-$OUT/shapes}
TRAIN_DIR=${TRAIN_DIR:-$OUT/train}
EVAL_DIR=${EVAL_DIR:-$OUT/eval}
EXPORT_DIR=${EXPORT_DIR:-$OUT/export}
MODEL_NAME=${MODEL_NAME:-mobilenet_v1_025}
IMAGE_SIZE=${IMAGE_SIZE:-64}
MAX_STEPS=${MAX_STEPS:-1500}
BATCH_SIZE=${BATCH_SIZE:-64}
LOG_EVERY_N_STEPS=${LOG_EVERY_N_STEPS:-250}
# TensorBoard summaries: about 30 points over the run whatever its length.
SUMMARY_EVERY_N_STEPS=${SUMMARY_EVERY_N_STEPS:-$(( MAX_STEPS >= 60 ? MAX_STEPS / 30 : 2 ))}
# Images per class of the generated dataset (empty: the generator's 1000 / 100).
SHAPES_TRAIN_PER_CLASS=${SHAPES_TRAIN_PER_CLASS:-}
SHAPES_VALIDATION_PER_CLASS=${SHAPES_VALIDATION_PER_CLASS:-}
FRESH=${FRESH:-}
VERBOSITY=${VERBOSITY:-}
# How make started this job (e.g. "make run TF=2"), for the start-over hint;
# unset when it was started with bash.
MAKE_RUN=${MAKE_RUN:-}

# Bold banners on a terminal only: a log file gets plain text.
if [[ -t 1 && -z "${NO_COLOR:-}" && "${TERM:-dumb}" != dumb ]]; then
  say() { printf '\n\033[1m>>> %s\033[0m\n' "$*"; }
else
  say() { printf '\n>>> %s\n' "$*"; }
fi
missing() { say "SKIPPED: $1 is not built yet ($2); the steps after it are skipped too."; exit 0; }

VERBOSITY_FLAG=()
if [[ -n "$VERBOSITY" ]]; then
  VERBOSITY_FLAG=(--verbosity="$VERBOSITY")
  (( VERBOSITY >= 1 )) && export TF_CPP_MIN_LOG_LEVEL=0
fi
# Progress and result lines without absl's "I1207 17:05:05.176 123 file.py:42]"
# prefix (warnings and errors keep theirs).
py() {
  local script="$1"; shift
  "$PYTHON" "$REPO/$script" "$@" --noshowprefixforinfo ${VERBOSITY_FLAG[@]+"${VERBOSITY_FLAG[@]}"}
}

# The command that starts this job over, to be pasted as printed.
start_over=("FRESH=1")
[[ "$OUT" != "$DEFAULT_OUT" || -z "${MAKE_RUN:-}" ]] && start_over+=("OUT=$(printf '%q' "$OUT")")
start_over+=(${given_settings[@]+"${given_settings[@]}"})
if [[ -n "${MAKE_RUN:-}" ]]; then
  START_OVER="$MAKE_RUN ${start_over[*]}"
else
  START_OVER="${start_over[*]} bash $(printf '%q' "$0")"
fi

# FRESH=1 deletes OUT, but only a folder holding nothing but this job's outputs.
if [[ -n "$FRESH" && "$FRESH" != 0 && -e "$OUT" ]]; then
  for entry in "$OUT"/* "$OUT"/.[!.]*; do
    [[ -e "$entry" ]] || continue
    case "$(basename "$entry")" in
      shapes|train|eval|export|training_curves.png) ;;
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

[ -f "$REPO/download_and_convert_data.py" ] || missing download_and_convert_data.py "issue 4"
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

[ -f "$REPO/train_image_classifier.py" ] || missing train_image_classifier.py "issue 5"
last_step=""
if [[ -f "$TRAIN_DIR/checkpoint" ]]; then
  last_step=$(sed -n 's/^model_checkpoint_path: ".*-\([0-9]*\)"$/\1/p' "$TRAIN_DIR/checkpoint")
fi
if [[ -n "$last_step" ]]; then
  if (( last_step >= MAX_STEPS )); then plan="already at step $last_step of $MAX_STEPS: nothing left to train; evaluation and export run again"
  else plan="training goes on from step $last_step to $MAX_STEPS"; fi
  say "2/5 Reusing the checkpoints in $TRAIN_DIR ($plan). To start over: $START_OVER (deletes $OUT)"
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
  --log_every_n_steps="$LOG_EVERY_N_STEPS" --save_interval_secs=120 \
  --save_summaries_steps="$SUMMARY_EVERY_N_STEPS"

[ -f "$REPO/eval_image_classifier.py" ] || missing eval_image_classifier.py "issue 5"
say "3/5 Evaluating the last checkpoint on the validation split; metrics JSON in $EVAL_DIR"
py eval_image_classifier.py \
  --checkpoint_path="$TRAIN_DIR" --eval_dir="$EVAL_DIR" --dataset_name=shapes \
  --dataset_split_name=validation --dataset_dir="$DATASET_DIR" \
  --model_name="$MODEL_NAME" --eval_image_size="$IMAGE_SIZE" --preprocessing_name=cifarnet

[ -f "$REPO/freeze_graph.py" ] || missing freeze_graph.py "issue 6"
say "4/5 Exporting: inference graph, frozen graph with the trained weights, float TFLite model, in $EXPORT_DIR"
mkdir -p "$EXPORT_DIR"
py export_inference_graph.py --model_name="$MODEL_NAME" --dataset_name=shapes \
  --image_size="$IMAGE_SIZE" --output_file="$EXPORT_DIR/inference_graph.pb"
py freeze_graph.py --model_name="$MODEL_NAME" --dataset_name=shapes \
  --dataset_dir="$DATASET_DIR" --image_size="$IMAGE_SIZE" \
  --checkpoint_path="$TRAIN_DIR" --output_file="$EXPORT_DIR/frozen.pb"
py export_tflite.py --input_graph="$EXPORT_DIR/frozen.pb" \
  --output_file="$EXPORT_DIR/model.tflite"

[ -f "$REPO/classify_image.py" ] || missing classify_image.py "issue 6"
say "5/5 Classifying a freshly drawn triangle with the exported TFLite model"
$PYTHON -c "import sys, numpy as np; from PIL import Image; from datasets import generate_shapes as g; Image.fromarray(g.render(2, $IMAGE_SIZE, np.random.RandomState(123))).save(sys.argv[1])" "$EXPORT_DIR/triangle.png"
py classify_image.py --model_path="$EXPORT_DIR/model.tflite" \
  --dataset_dir="$DATASET_DIR" "$EXPORT_DIR/triangle.png"

py plot_training.py --train_dir="$TRAIN_DIR" --eval_dir="$EVAL_DIR" \
  --output_file="$OUT/training_curves.png" --title="$MODEL_NAME on shapes ($(basename "$OUT"))"

# TensorBoard of the environment that trained (its bin/ holds the command).
tensorboard_command=$(printf '%q' "$(dirname "$PYTHON")/tensorboard")
[[ "$PYTHON" == */* && -x "$(dirname "$PYTHON")/tensorboard" ]] ||
  tensorboard_command="$(printf '%q' "$PYTHON") -m tensorboard.main"
say "Done. Dataset: $DATASET_DIR  checkpoints: $TRAIN_DIR  metrics: $EVAL_DIR  models: $EXPORT_DIR  plot: $OUT/training_curves.png"
echo "    TensorBoard: $tensorboard_command --logdir=$(printf '%q' "$OUT")   then open http://localhost:6006"
