#!/usr/bin/env bash
# Make a fresh machine ready: uv on PATH, the locked workspace installed, Chromium for browser tests.
set -euo pipefail
export UV_PYTHON_DOWNLOADS=never
if ! command -v uv >/dev/null 2>&1; then
    # A private venv works everywhere, also where the system Python refuses pip (PEP 668).
    python3 -m venv "$HOME/.cache/cv-bootstrap-uv"
    "$HOME/.cache/cv-bootstrap-uv/bin/python" -m pip install --quiet uv
    export PATH="$HOME/.cache/cv-bootstrap-uv/bin:$PATH"
fi
uv sync --frozen --all-packages --extra hf --quiet
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
    # Browser tests screenshot the HTML viewers/reports; Debian's Chromium is the only browser we can install offline-hub.
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
