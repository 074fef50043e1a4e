# Sourced by every launcher in scripts/: picks the Python to run and quiets
# TensorFlow's C++ start-up messages.
#
# PYTHON, when set, wins. Otherwise an activated virtual environment's
# `python` (after `make shell` or `source .venv/tf2/bin/activate`); else the
# project environment `make venv` created: .venv/tf$TF (TF=1 or 2;
# TF1_BUILD=onednn selects .venv/tf1-onednn), or, with TF unset, the first
# of .venv/tf1, .venv/tf2, .venv/tf1-onednn that exists (TF=1 first, like
# make). With none of these it stops and says how to create one.
#
# TF_CPP_MIN_LOG_LEVEL defaults to 2 (C++ errors only) unless the launcher's
# arguments include --verbosity; set it to 0 to see TensorFlow's C++
# messages again.

_project_python() {
  local repo="$1" candidates=() venv
  if [[ -n "${TF:-}" ]]; then
    if [[ "${TF}" == 1 && "${TF1_BUILD:-stock}" == onednn ]]; then
      candidates=(tf1-onednn)
    else
      candidates=("tf${TF}")
    fi
  else
    candidates=(tf1 tf2 tf1-onednn)
  fi
  for venv in "${candidates[@]}"; do
    if [[ -x "${repo}/.venv/${venv}/bin/python" ]]; then
      echo "${repo}/.venv/${venv}/bin/python"
      return 0
    fi
  done
  if [[ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]]; then
    echo python
    return 0
  fi
  {
    echo "No Python environment for this project (looked for .venv/${candidates[*]} in ${repo})."
    echo "Create one with 'make venv' (TensorFlow 1.15) or 'make venv TF=2' (TensorFlow 2),"
    echo "or set PYTHON=/path/to/python of an environment with requirements.txt installed."
  } >&2
  return 1
}

if [[ -z "${PYTHON:-}" ]]; then
  _repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [[ -n "${VIRTUAL_ENV:-}" && -z "${TF:-}" ]]; then
    PYTHON=python
  else
    PYTHON="$(_project_python "${_repo}")" || exit 1
  fi
  unset _repo
fi
if [[ -z "${TF_CPP_MIN_LOG_LEVEL:-}" && " $* " != *" --verbosity"* ]]; then
  export TF_CPP_MIN_LOG_LEVEL=2
fi
