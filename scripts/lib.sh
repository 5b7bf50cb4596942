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

# bench_alembic_project DIR BASE SQL: an Alembic project (the example's env.py and alembic.ini;
# the database comes from --url or DATABASE_URL) whose base revision is BASE, the one the
# benchmark's database is at, and one step after it that runs SQL: the "bad migration" a hot
# rollback undoes.
bench_alembic_project() {
  local dir=$1 base=$2 sql=$3
  mkdir -p "$dir/migrations/versions"
  cp "$ROOT/examples/shop/migrations/env.py" "$dir/migrations/"
  cp "$ROOT/examples/shop/alembic.ini" "$dir/alembic.ini"
  printf 'revision = "%s"\ndown_revision = None\nbranch_labels = None\ndepends_on = None\ndef upgrade(): pass\ndef downgrade(): pass\n' \
    "$base" > "$dir/migrations/versions/${base}_base.py"
  printf 'from alembic import op\nrevision = "bad0bad0bad0"\ndown_revision = "%s"\nbranch_labels = None\ndepends_on = None\ndef upgrade(): op.execute("%s")\ndef downgrade(): pass\n' \
    "$base" "$sql" > "$dir/migrations/versions/bad0bad0bad0_bad.py"
}
