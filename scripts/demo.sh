#!/usr/bin/env bash
# The main job on a fresh machine: set up, then evaluate the scripted reference policy on the built-in
# offline orientation suite (the real sandbox runs every call) and print the paper-style table.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
export PATH="$HOME/.local/bin:$PATH"
uv run --frozen cv-sandbox demo
