#!/usr/bin/env bash
# Build every member's wheel without workspace sources (so version ranges between members are real) and
# prove the light members install standalone from wheels: `pip install cv-sandbox` and `pip install
# cv-rewards` each pull in cv-protocol and nothing else of ours, and neither imports torch.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
rm -rf dist
for pkg in packages/*/; do
    uv build --quiet --package "$(basename "$pkg")" --no-sources --wheel --out-dir dist
done
ls dist

# uv caches wheels found through --find-links by file name; ours are rebuilt with the same names (0.1.0) on
# every run, so without a refresh a venv could get a stale build of a member from an earlier run.
refresh=()
for pkg in packages/*/; do refresh+=(--refresh-package "$(basename "$pkg")"); done

# A fresh venv holding one member's wheel, its dependencies resolved from dist (ours) and the index.
fresh_venv() {
    local venv
    venv=$(mktemp -d)/venv
    uv venv --quiet "$venv"
    uv pip install --quiet --python "$venv/bin/python" --find-links dist "${refresh[@]}" "$@" || return 1
    echo "$venv"
}
# Which of our distributions a venv holds, sorted and comma separated.
ours() {
    "$1/bin/python" -c "import importlib.metadata as m; print(','.join(sorted(d.metadata['Name'] for d in m.distributions() if d.metadata['Name'].startswith('cv-'))))"
}

venv=$(fresh_venv dist/cv_protocol-*.whl)
[ "$(ours "$venv")" = "cv-protocol" ] || { echo "cv-protocol wheel pulled in: $(ours "$venv")"; exit 1; }
"$venv/bin/python" - <<'PY'
import sys
import cv_protocol
third = sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names) - {"cv_protocol", "__main__"})
assert not [m for m in third if not m.startswith("_")], third
print("standalone cv-protocol wheel OK (stdlib only)")
PY

venv=$(fresh_venv dist/cv_sandbox-*.whl)
[ "$(ours "$venv")" = "cv-protocol,cv-sandbox" ] || { echo "cv-sandbox wheel pulled in: $(ours "$venv")"; exit 1; }
"$venv/bin/python" - <<'PY'
import sys
from PIL import Image
from cv_protocol import tool_response_text
from cv_sandbox import ImageWorkspace, Sandbox
with Sandbox() as sb:
    r = sb.run("result = image.rotate(90, expand=True)", [Image.new("RGB", (40, 20), "red")])
    out = ImageWorkspace([Image.new("RGB", (40, 20))]).execute(sb, "result = image.crop((0, 0, 8, 4))", "zoom", 0)
assert r.ok and r.image.size == (20, 40), r.summary()
assert out.call.ok and out.call.ops[0]["box_input"] == [0, 0, 8, 4], out.call
assert tool_response_text(r, 1) == "Execution succeeded. The result is image 1 (20x40 pixels).", r.summary()
assert "torch" not in sys.modules
print("standalone cv-sandbox wheel OK:", r.ops)
PY
"$venv/bin/cv-sandbox" --help >/dev/null

venv=$(fresh_venv dist/cv_rewards-*.whl)
[ "$(ours "$venv")" = "cv-protocol,cv-rewards" ] || { echo "cv-rewards wheel pulled in: $(ours "$venv")"; exit 1; }
"$venv/bin/python" - <<'PY'
import sys
from cv_rewards import OpRecord, RolloutRecord, ToolCallRecord, score_rollout
rec = RolloutRecord("<think>sideways</think><answer>STOP</answer>",
                    [ToolCallRecord(True, [OpRecord("rotate_270")])], ["rotate_90"], None, "stop")
assert score_rollout(rec).components["must_use"] == 1.0
assert "torch" not in sys.modules and "PIL" not in sys.modules and "numpy" not in sys.modules
print("standalone cv-rewards wheel OK (stdlib + cv-protocol)")
PY
"$venv/bin/cv-rewards" --help >/dev/null

# cv-data resolves from the wheels too (the workspace never checks inter-member ranges).
venv=$(fresh_venv dist/cv_data-*.whl)
"$venv/bin/python" -c "import cv_data, sys; assert 'torch' not in sys.modules; print('cv-data wheels OK')"
