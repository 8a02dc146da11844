#!/usr/bin/env bash
# Every test of every package, as CI runs it. Light packages run in their own exact environments, so a
# test that quietly needs torch (or a sibling package it must not import) fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh --browser
export PATH="$HOME/.cache/cv-bootstrap-uv/bin:$PATH" UV_PYTHON_DOWNLOADS=never

status=0
run() {
    echo "::: $*"
    local rc=0
    "$@" || rc=$?
    # pytest exits 5 when it collected nothing: for us that is a broken suite, not a pass.
    if [ $rc -eq 5 ]; then echo "::: no tests were collected by: $*"; fi
    if [ $rc -ne 0 ]; then status=1; fi
}

# Light members: exact per-package environments without heavy deps (cv-protocol: the stdlib alone).
# cv-data's `hf` extra is `datasets` (no torch): its tests prove the parquet output loads there.
for spec in cv-protocol: cv-sandbox: cv-rewards: cv-data:hf; do
    pkg=${spec%%:*} extra=${spec#*:}
    run env UV_PROJECT_ENVIRONMENT=".venvs/$pkg" uv run --frozen --quiet --exact --package "$pkg" \
        ${extra:+--extra "$extra"} --group dev python -m pytest "packages/$pkg/tests" -q -p no:cacheprovider
done
# cv-agent alone (no torch) must import and run its CLI help; its full tests need the hf extra.
run env UV_PROJECT_ENVIRONMENT=.venvs/cv-agent-light uv run --frozen --quiet --exact --package cv-agent \
    python -c "import cv_agent, sys; assert 'torch' not in sys.modules, 'cv_agent imported torch'"
# Members that need torch/transformers (as extras or deps) run in the full workspace environment.
for pkg in cv-agent cv-bench cv-train; do
    run uv run --frozen --quiet python -m pytest "packages/$pkg/tests" -q -p no:cacheprovider
done
# The sandbox's adversarial suite again as an unprivileged user with all capabilities dropped (as root it
# ran above), and without user namespaces; needs root to create that user, as CI is.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && command -v useradd >/dev/null; then
    run bash scripts/test_unprivileged.sh
else
    echo "::: skipping the unprivileged sandbox run: needs root, setpriv and useradd"
fi
# Lint too: TID253 is what keeps heavy imports out of module level in light packages.
run uv run --frozen --quiet ruff check packages benchmarks
run uv run --frozen --quiet ruff format --check packages benchmarks
run bash scripts/check_wheels.sh
exit $status
