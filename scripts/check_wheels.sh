#!/usr/bin/env bash
# Build every member's wheel without workspace sources (so version ranges between members are real) and
# prove `pip install cv-sandbox` works standalone: its wheel alone in a fresh venv runs a sandboxed call.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
rm -rf dist
for pkg in packages/*/; do
    uv build --quiet --package "$(basename "$pkg")" --no-sources --wheel --out-dir dist
done
ls dist
venv=$(mktemp -d)/venv
uv venv --quiet "$venv"
uv pip install --quiet --python "$venv/bin/python" dist/cv_sandbox-*.whl
"$venv/bin/python" - <<'PY'
import sys
from PIL import Image
from cv_sandbox import Sandbox
with Sandbox() as sb:
    r = sb.run("result = image.rotate(90, expand=True)", [Image.new("RGB", (40, 20), "red")])
assert r.ok and r.image.size == (20, 40), r.summary()
assert "torch" not in sys.modules
print("standalone cv-sandbox wheel OK:", r.ops)
PY
"$venv/bin/cv-sandbox" --help >/dev/null
# Light members resolve from their wheels too (the workspace never checks inter-member ranges).
uv pip install --quiet --python "$venv/bin/python" --find-links dist dist/cv_rewards-*.whl dist/cv_data-*.whl
"$venv/bin/python" -c "import cv_rewards, cv_data, sys; assert 'torch' not in sys.modules; print('cv-rewards + cv-data wheels OK')"
