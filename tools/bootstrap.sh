#!/usr/bin/env bash
# Create .venv with everything the headless renderer and the test suite need (CPU only, ~1 min).
# Idempotent: a second run only checks that the environment is complete.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.animlong-installed
want=$(cat requirements-dev.txt tools/bootstrap.sh | sha1sum | cut -c1-12)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  # ldm (the Stability-AI UNet the webui runs) and k-diffusion without their heavy declared deps.
  .venv/bin/python -m pip install -q --no-deps stable-diffusion-sdkit==2.1.5 k-diffusion==0.1.1.post1
  echo "$want" > "$stamp"
fi
# A real browser for the UI test (tests/test_webui_ui.py); Playwright drives it, never downloading its own.
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi
fi
