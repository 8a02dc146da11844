#!/usr/bin/env bash
# The main job on a fresh machine: set up, then evaluate the scripted reference policy on the built-in
# offline orientation suite (every tool call runs in the real sandbox) and print the paper-style table.
# Evaluate a real model the same way: --model openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
export PATH="$HOME/.cache/cv-bootstrap-uv/bin:$PATH"
uv run --frozen cv-bench eval --model reference --suite orientation --out runs/demo "$@"
if ! command -v uv >/dev/null 2>&1 || [ "$(command -v uv)" = "$HOME/.cache/cv-bootstrap-uv/bin/uv" ]; then
    echo
    echo "Next: source .venv/bin/activate   # puts uv and the cv-* commands on your PATH (see README: Using it)"
fi
