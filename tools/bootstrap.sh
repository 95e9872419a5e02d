#!/usr/bin/env bash
# Set up this checkout.
#
#   bash tools/bootstrap.sh           the headless renderer: .venv/ with requirements.txt (CPU, no root needed)
#   bash tools/bootstrap.sh --tests   also what the tests need: requirements-dev.txt in .venv/, the Debian
#                                     `chromium` (apt, as root or with sudo) for the browser tests, and the
#                                     real AUTOMATIC1111 webui harness (../shared/webui/setup.sh) at
#                                     $ANIMLONG_WEBUI_PREFIX (default /root/.cache/animlong-webui)
#
# Idempotent: a second run only checks (a few seconds; the webui harness ~10 s). Long outputs go to log files
# under .venv/logs/; each step prints one line.
set -euo pipefail
cd "$(dirname "$0")/.."
TESTS=0
for a in "$@"; do
  case "$a" in
    --tests) TESTS=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bootstrap.sh: unknown argument $a (use --tests or nothing)" >&2; exit 2 ;;
  esac
done
T0=$SECONDS
say() { printf '[bootstrap %4ss] %s\n' "$((SECONDS - T0))" "$*"; }
die() { echo "bootstrap.sh: ERROR: $*" >&2; exit 1; }
LOGS=.venv/logs

# ------------------------------------------------------------------ 1. the venv (no root)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || die "python -m venv failed ($PY)"
fi
mkdir -p "$LOGS"
pip_install() {   # stamp-file, description, requirements file (and the files it includes)...
  local stamp=$1 what=$2 want; shift 2
  want=$(cat "$@" tools/bootstrap.sh | sha1sum | cut -c1-12)
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then say "$what: up to date"; return; fi
  say "$what: pip install (log $LOGS/pip.log)"
  { .venv/bin/python -m pip install --upgrade pip \
      && .venv/bin/python -m pip install -r "$1" \
      && .venv/bin/python -m pip install --no-deps stable-diffusion-sdkit==2.1.5 k-diffusion==0.1.1.post1
  } >>"$LOGS/pip.log" 2>&1 || { tail -n 20 "$LOGS/pip.log" >&2; die "pip install failed (log $LOGS/pip.log)"; }
  echo "$want" > "$stamp"
  say "$what: done"
}
# ldm (the Stability-AI UNet the webui runs) and k-diffusion come without their heavy declared dependencies.
pip_install .venv/.animlong-installed "renderer venv" requirements.txt
[ "$TESTS" = 1 ] || { say "ready: .venv/bin/python -m lib_animlong render"; exit 0; }

pip_install .venv/.animlong-tests-installed "test venv" requirements-dev.txt requirements.txt

# ------------------------------------------------------------------ 2. a real browser for tests/e2e/test_ui.py
# Playwright drives the Debian chromium; it never downloads a browser of its own.
if command -v chromium >/dev/null; then
  say "chromium: present ($(command -v chromium))"
else
  if [ "$(id -u)" = 0 ]; then SUDO=(); elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=(sudo -n)
  else die "the browser tests need the Debian package chromium: install it (apt-get install chromium) as root, or run this as root / with sudo"; fi
  say "chromium: apt-get install --no-install-recommends chromium (log $LOGS/apt.log)"
  { "${SUDO[@]}" apt-get update -q && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium
  } >"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get install chromium failed (log $LOGS/apt.log)"; }
  say "chromium: installed ($(grep -c '^Setting up' "$LOGS/apt.log") packages)"
fi

# ------------------------------------------------------------------ 3. the real webui (tests/e2e)
HARNESS=${ANIMLONG_WEBUI_HARNESS:-}
if [ -z "$HARNESS" ]; then
  HARNESS=../shared/webui
  if [ ! -f "$HARNESS/setup.sh" ]; then   # a git worktree: next to the main checkout
    common=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
    [ -n "$common" ] && HARNESS=$(dirname "$common")/../shared/webui
  fi
fi
[ -f "$HARNESS/setup.sh" ] || die "the webui harness is missing ($HARNESS/setup.sh); set ANIMLONG_WEBUI_HARNESS"
PREFIX=${ANIMLONG_WEBUI_PREFIX:-/root/.cache/animlong-webui}
say "webui harness: $HARNESS/setup.sh $PREFIX (first time 3-10 min; log $LOGS/webui-setup.log)"
bash "$HARNESS/setup.sh" "$PREFIX" >"$LOGS/webui-setup.log" 2>&1 \
  || { tail -n 25 "$LOGS/webui-setup.log" >&2; die "the webui harness set-up failed (log $LOGS/webui-setup.log)"; }
say "webui harness: ready at $PREFIX"
say "ready: .venv/bin/python -m pytest -q"
