# Sourced by scripts/serve and scripts/test: a project virtualenv with vault installed.
# VAULT_PYTHON picks the interpreter (default python3, which must be 3.11 or newer).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${VAULT_PYTHON:-python3}"
venv="$root/.venv"
extras="${1:-}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "vault needs Python 3.11 or newer (VAULT_PYTHON=... to choose one)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$python" -m venv "$venv"
    else
      echo "cannot create a virtualenv: install python3-venv" >&2
      exit 1
    fi
  fi
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
# constraints.txt pins the versions the suite was last run green with: a fresh machine gets
# the same test tools (a new pytest once broke schemathesis's plugin), not whatever is newest.
"$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$root/constraints.txt" \
  -e "$root$extras"
export PATH="$venv/bin:$PATH"
