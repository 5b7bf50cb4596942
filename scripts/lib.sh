# Shared by scripts/example and scripts/test: install what a fresh Debian machine lacks.
# Idempotent: a second run installs nothing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '==> %s\n' "$*" >&2; }

# apt packages, installed only when missing (we run as root on these machines; sudo otherwise).
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A Python virtual environment with Alembic from PyPI, in .venv (git-ignored).
ensure_venv() {
  local venv="$ROOT/.venv"
  if [ ! -x "$venv/bin/alembic" ] || ! cmp -s "$ROOT/scripts/requirements.txt" "$venv/.requirements"; then
    log "creating the Python environment $venv (alembic, sqlalchemy, psycopg2 from PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/requirements.txt"
    cp "$ROOT/scripts/requirements.txt" "$venv/.requirements"
  fi
  export MIGSNAP_TEST_VENV="$venv"
}

build_migsnap() {
  log "building migsnap ($1)"
  (cd "$ROOT" && swift build -c "$1" --product migsnap >&2)
  MIGSNAP="$(cd "$ROOT" && swift build -c "$1" --show-bin-path)/migsnap"
  export MIGSNAP
}
