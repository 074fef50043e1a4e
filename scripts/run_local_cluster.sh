#!/usr/bin/env bash
# Runs distributed (between-graph, asynchronous) training on a local cluster:
# 1 parameter server + 2 workers, all on 127.0.0.1 with free ports chosen
# at start. Worker 0 is the chief: it initializes the variables and writes
# checkpoints and summaries to TRAIN_DIR. The script waits for both workers,
# then stops the parameter server (it serves until killed); Ctrl-C or any
# exit stops every process it started. Logs: TRAIN_DIR/logs/*.log.
#
# Usage (paths and sizes are the variables below; override from the env):
#   DATASET_DIR=/tmp/shapes TRAIN_DIR=/tmp/cluster_run \
#       scripts/run_local_cluster.sh [extra train flags, e.g. --sync_replicas]
#
# Across machines the same flags run one process per host, each given the
# whole cluster and its own role (and a TRAIN_DIR the chief can write; the
# parameter servers write their checkpoint shards there too, so use a
# shared file system such as NFS or gs://):
#   host A: python train_image_classifier.py --job_name=ps --task=0 \
#             --ps_hosts=A:2222 --worker_hosts=B:2222,C:2222
#   host B: python train_image_classifier.py --job_name=worker --task=0 \
#             --ps_hosts=A:2222 --worker_hosts=B:2222,C:2222 --train_dir=...
#   host C: python train_image_classifier.py --job_name=worker --task=1 \
#             --ps_hosts=A:2222 --worker_hosts=B:2222,C:2222 --train_dir=...
# or, instead of the host flags, TF_CONFIG='{"cluster": {"ps": ["A:2222"],
# "worker": ["B:2222", "C:2222"]}, "task": {"type": "worker", "index": 1}}'.
# Add --sync_replicas --replicas_to_aggregate=2 for synchronous training.
#
# If the parameter server dies, each worker stops after PS_TIMEOUT_SECS
# (--ps_timeout_secs) without a connection, saying so; rerun this script
# with the same TRAIN_DIR and training resumes from the chief's last
# checkpoint. A killed worker can be restarted alone with its own command
# line (the same flags and --task); it rejoins the running cluster.
set -euo pipefail

# PYTHON: the project environment unless set (see python_env.sh).
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh"
REPO_DIR=${REPO_DIR:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
DATASET_NAME=${DATASET_NAME:-shapes}
DATASET_DIR=${DATASET_DIR:-/tmp/shapes}
TRAIN_DIR=${TRAIN_DIR:-/tmp/mobilenet_local_cluster}
MODEL_NAME=${MODEL_NAME:-mobilenet_v1_025}
IMAGE_SIZE=${IMAGE_SIZE:-64}
BATCH_SIZE=${BATCH_SIZE:-32}
MAX_STEPS=${MAX_STEPS:-1000}
# auto: a decay the moving batch-norm statistics converge with in MAX_STEPS
# (the networks' own 0.9997 leaves them near their start: chance accuracy).
BATCH_NORM_DECAY=${BATCH_NORM_DECAY:-auto}
PS_TIMEOUT_SECS=${PS_TIMEOUT_SECS:-60}
NUM_WORKERS=2
# Relative paths are taken from where the launcher was started (it changes
# into the repository below).
[[ "${DATASET_DIR}" == /* ]] || DATASET_DIR="${PWD}/${DATASET_DIR}"
[[ "${TRAIN_DIR}" == /* ]] || TRAIN_DIR="${PWD}/${TRAIN_DIR}"
LOG_DIR="${TRAIN_DIR}/logs"

if [[ "${DATASET_NAME}" == shapes && ! -d "${DATASET_DIR}" ]]; then
  "${PYTHON}" "${REPO_DIR}/download_and_convert_data.py" \
      --dataset_name=shapes --dataset_dir="${DATASET_DIR}"
fi
mkdir -p "${LOG_DIR}"

# Three free loopback ports (the OS picks them; they are released right
# before the servers bind them).
read -r PS_PORT WORKER0_PORT WORKER1_PORT < <("${PYTHON}" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
  s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in socks))
for s in socks:
  s.close()
EOF
)
PS_HOSTS="127.0.0.1:${PS_PORT}"
WORKER_HOSTS="127.0.0.1:${WORKER0_PORT},127.0.0.1:${WORKER1_PORT}"
echo "Cluster: ps=${PS_HOSTS} workers=${WORKER_HOSTS}; logs in ${LOG_DIR}"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "${pid}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

COMMON_FLAGS=(
  --ps_hosts="${PS_HOSTS}"
  --worker_hosts="${WORKER_HOSTS}"
  --train_dir="${TRAIN_DIR}"
  --dataset_name="${DATASET_NAME}"
  --dataset_dir="${DATASET_DIR}"
  --model_name="${MODEL_NAME}"
  --train_image_size="${IMAGE_SIZE}"
  --batch_size="${BATCH_SIZE}"
  --max_number_of_steps="${MAX_STEPS}"
  --batch_norm_decay="${BATCH_NORM_DECAY}"
  --ps_timeout_secs="${PS_TIMEOUT_SECS}"
)

cd "${REPO_DIR}"
"${PYTHON}" train_image_classifier.py --job_name=ps --task=0 \
    "${COMMON_FLAGS[@]}" "$@" >"${LOG_DIR}/ps0.log" 2>&1 &
PIDS+=($!)
WORKER_PIDS=()
for ((task = 0; task < NUM_WORKERS; task++)); do
  "${PYTHON}" train_image_classifier.py --job_name=worker --task="${task}" \
      "${COMMON_FLAGS[@]}" "$@" >"${LOG_DIR}/worker${task}.log" 2>&1 &
  PIDS+=($!)
  WORKER_PIDS+=($!)
done

status=0
for ((task = 0; task < NUM_WORKERS; task++)); do
  if ! wait "${WORKER_PIDS[${task}]}"; then
    echo "worker ${task} failed; see ${LOG_DIR}/worker${task}.log" >&2
    status=1
    break  # The EXIT trap stops the other processes.
  fi
done
# The chief's warnings (e.g. a batch-norm decay too slow for MAX_STEPS)
# would otherwise stay in its log.
grep -h '^W[0-9]' "${LOG_DIR}/worker0.log" | sed 's/^[^]]*] /worker 0 warning: /' || true
grep -h "Finished training" "${LOG_DIR}"/worker*.log || true
exit "${status}"
