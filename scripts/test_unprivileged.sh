#!/usr/bin/env bash
# The sandbox's adversarial and hardening tests as an unprivileged user with every capability dropped
# (what most researchers are: non-root on a cluster), then once more as if the kernel had no user
# namespaces and no Landlock. Run as root (it creates the user); scripts/test.sh calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cache/cv-bootstrap-uv/bin:$PATH" UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy
user=cvsb-test
id -u "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
# An interpreter outside root's home (a pyenv or uv one under /root cannot be run by another user).
python=""
for p in /usr/bin/python3.13 /usr/bin/python3.12 /usr/bin/python3.11 /usr/local/bin/python3.11; do
    [ -x "$p" ] && python=$p && break
done
if [ -z "$python" ]; then
    command -v apt-get >/dev/null && apt-get install -y -qq python3 >/dev/null
    python=/usr/bin/python3
fi
dir=$(mktemp -d /tmp/cvsb-unpriv.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cp -r packages/cv-protocol packages/cv-sandbox "$dir/"
uv export --frozen --quiet --package cv-sandbox --group dev --no-hashes --no-emit-workspace \
    --format requirements-txt >"$dir/requirements.txt"
uv venv --quiet --python "$python" "$dir/venv"
uv pip install --quiet --python "$dir/venv/bin/python" -r "$dir/requirements.txt" "$dir/cv-protocol" "$dir/cv-sandbox"
chmod -R a+rX "$dir"
chmod 755 "$dir"
tests=("$dir/cv-sandbox/tests/test_adversarial.py" "$dir/cv-sandbox/tests/test_hardening.py"
       "$dir/cv-sandbox/tests/test_escapes.py" "$dir/cv-sandbox/tests/test_trace_integrity.py"
       "$dir/cv-sandbox/tests/test_conventions.py")
as_user=(setpriv --reuid="$user" --regid="$user" --clear-groups --inh-caps=-all --bounding-set=-all
         env -i PATH=/usr/bin:/bin HOME="$dir" LC_ALL=C.UTF-8)
status=0
echo "::: as $user, no capabilities"
"${as_user[@]}" "$dir/venv/bin/python" -m pytest "${tests[@]}" -q -p no:cacheprovider -o xfail_strict=true \
    || status=1
echo "::: as $user, no capabilities, without user namespaces and Landlock"
"${as_user[@]}" CV_SANDBOX_DISABLE=userns,landlock "$dir/venv/bin/python" -m pytest \
    "$dir/cv-sandbox/tests/test_adversarial.py" "$dir/cv-sandbox/tests/test_hardening.py" \
    -k "not gives_strict and not own_pid_namespace" -q -p no:cacheprovider || status=1
exit $status
