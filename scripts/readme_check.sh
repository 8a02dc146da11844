#!/usr/bin/env bash
# A newcomer's first hour, checked: clone the repository afresh, open a shell with no uv on its PATH, and run
# every command of the README that needs no GPU exactly as written (the two set-up commands first), in order.
# Blocks marked `<!-- readme-check: skip (why) -->` are left out (model servers, GPUs, other environments).
# Usage: scripts/readme_check.sh [COMMIT]   (default HEAD; uncommitted changes are not part of a clone)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
rev=${1:-HEAD}
work=$(mktemp -d "${TMPDIR:-/tmp}/readme-check.XXXXXX")
git clone --quiet "$src" "$work/CodeVision"
git -C "$work/CodeVision" checkout --quiet "$rev"
cd "$work/CodeVision"
python3 scripts/readme_commands.py README.md > "$work/readme.sh"
echo "readme-check: $(grep -c . "$work/readme.sh") lines from README.md, in $work/CodeVision"

# A fresh machine's PATH: none of the places a uv may already be.
clean_path=$(printf '%s' "$PATH" | tr ':' '\n' | while read -r dir; do
    [ -n "$dir" ] && [ ! -x "$dir/uv" ] && printf '%s:' "$dir"
done)
clean_path=${clean_path%:}
if PATH="$clean_path" command -v uv >/dev/null 2>&1; then
    echo "readme-check: could not hide uv from PATH" >&2
    exit 1
fi
start=$(date +%s)
env -u VIRTUAL_ENV -u UV_PROJECT_ENVIRONMENT PATH="$clean_path" bash "$work/readme.sh"
echo "readme-check: every README command ran as written in $(( $(date +%s) - start )) s ($work/CodeVision)"
