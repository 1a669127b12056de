#!/usr/bin/env bash
# Run a command inside xvector's virtual environment, creating it first when needed.
#
#   scripts/env.sh bash recipes/synthetic/run.sh      # the main job
#   scripts/env.sh python -m pytest                   # the tests
#
# The venv is cached outside the clone, keyed by a hash of pyproject.toml, so a fresh checkout
# reuses it (torch alone is ~5.5 GB) while a dependency change builds a new one. Override the
# location with XVECTOR_VENV. The package itself is installed editable from *this* clone.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
key="$(sha256sum "$repo/pyproject.toml" | cut -c1-16)"
venv="${XVECTOR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/xvector/venv-$key}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "[env.sh] creating $venv (first run: installs torch, ~2 min)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  if ! "$venv/bin/python" -m pip install -q -e "$repo[test]" > "$venv/install.log" 2>&1; then
    tail -n 30 "$venv/install.log" >&2
    echo "[env.sh] install failed; full log: $venv/install.log" >&2
    exit 1
  fi
  touch "$venv/.complete"
fi
# Point the editable install at this clone (a cached venv may have been made by another one).
# Asked from / : in the caller's folder `import xvector` could find ./xvector instead of the
# installed one, and subprocesses started elsewhere would then import another clone's code.
installed="$(cd / && "$venv/bin/python" -c 'import xvector, os; print(os.path.dirname(os.path.dirname(os.path.realpath(xvector.__file__))))' 2>/dev/null || true)"
if [ "$installed" != "$repo" ]; then
  "$venv/bin/python" -m pip install -q --no-deps -e "$repo" > "$venv/reinstall.log" 2>&1 \
    || { cat "$venv/reinstall.log" >&2; exit 1; }
fi
export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv"
cd "$repo"
exec "$@"
