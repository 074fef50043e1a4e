#!/usr/bin/env bash
# Prints the path of a Python interpreter of the given minor version (e.g. 3.7),
# looking on PATH first and then under pyenv. Exits 1 with advice if none.
set -u
want="${1:?usage: find_python.sh MAJOR.MINOR}"
for cand in "python${want}" "python3"; do
  path=$(command -v "$cand" 2>/dev/null) || continue
  # Ask the interpreter itself, so pyenv shims resolve to a real executable.
  found=$("$path" -c 'import sys; print("%d.%d %s" % (sys.version_info[0], sys.version_info[1], sys.executable))' 2>/dev/null) || continue
  if [ "${found%% *}" = "$want" ]; then echo "${found#* }"; exit 0; fi
done
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for path in "$root"/versions/"$want".*/bin/python"$want"; do
  if [ -x "$path" ]; then echo "$path"; exit 0; fi
done
cat >&2 <<MSG
No Python $want found (looked for python$want / python3 on PATH and under $root/versions/$want.*).
Install one, e.g. 'pyenv install $want' (or your distribution's python$want package),
or pass an interpreter explicitly: make ... PYTHON=/path/to/python$want
MSG
[ "$want" = "3.7" ] && echo "The TF 2 stack needs no Python 3.7: use TF=2." >&2
exit 1
