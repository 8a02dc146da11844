"""Runaway code ends in a clear error within timeout + 0.5 s; dead workers are replaced; no zombies."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from cv_sandbox import Sandbox, SandboxConfig
from cv_sandbox.testing import child_zombies, children_of
from PIL import Image

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    s = Sandbox(SandboxConfig(workers=1, timeout_s=TIMEOUT, memory_mb=256))
    assert s.hardening["probe_ok"]  # started and warm: timings below measure calls, not start-up
    yield s
    s.close()


IMG = Image.new("RGB", (32, 32), (10, 20, 30))


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("while True:\n    pass", "timeout"),
        ("x = 0\nwhile True:\n    x = (x + 1) % 7", "timeout"),
        ("while True:\n    print('spam ' * 100)", "timeout"),
        ("a = np.ones((2000, 2000))\nwhile True:\n    a = np.sqrt(a + 1.0)", "timeout"),
        ("x = [0] * (10 ** 10)", "memory"),
        ("s = 'a' * (10 ** 10)", "memory"),
        ("b = bytearray(10 ** 10)", "memory"),
        ("a = np.ones((40000, 40000, 3), np.uint8)", "memory"),
        ("result = Image.new('RGB', (60000, 60000))", "memory"),
        ("result = image.resize((60000, 60000))", "memory"),
        ("xs = []\nwhile True:\n    xs.append(np.ones(10 ** 7))", "memory"),
        ("def f(n):\n    return f(n + 1)\nf(0)", "exception"),
        ("x = []\nfor i in range(10 ** 6):\n    x = [x]\nprint(x)", "exception"),
        ("x = " + "[" * 5000 + "]" * 5000, "syntax"),
        ("x = " + "-" * 15000 + "1", "syntax"),
    ],
)
def test_runaway_code_is_contained(sb: Sandbox, code: str, kind: str) -> None:
    t0 = time.monotonic()
    r = sb.run(code, [IMG])
    elapsed = time.monotonic() - t0
    assert not r.ok
    assert r.error_kind == kind, r.error
    assert elapsed < TIMEOUT + 0.5
    assert sb.run("result = image", [IMG]).ok  # still serving


def test_output_bomb_is_truncated(sb: Sandbox) -> None:
    r = sb.run("for i in range(10 ** 5):\n    print('x' * 100)\nresult = image", [IMG])
    assert r.ok and len(r.stdout) <= sb.config.max_stdout_chars + 100


def _run_in_thread(sb: Sandbox, code: str) -> tuple[threading.Thread, list]:
    out: list = []
    t = threading.Thread(target=lambda: out.append(sb.run(code, [IMG])))
    t.start()
    return t, out


def _busy_child(worker_pid: int) -> int:
    """The worker's child that is running a call (spares, once pre-warmed, wait in a read)."""
    time.sleep(0.6)  # spares forked for this call finish pre-warming
    for _ in range(300):
        for pid in children_of(worker_pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "R":
                        return pid
            except OSError:
                pass
        time.sleep(0.01)
    raise AssertionError("no busy child appeared")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


def test_crashed_child_reports_crash(sb: Sandbox) -> None:
    (wpid,) = sb.worker_pids()
    t, out = _run_in_thread(sb, "while True:\n    pass")
    child = _busy_child(wpid)
    os.kill(child, signal.SIGSEGV)
    t.join(5)
    (r,) = out
    assert r.error_kind == "crash" and "SIGSEGV" in r.error
    assert sb.worker_pids() == [wpid]  # the worker survived its child
    assert sb.run("result = image", [IMG]).ok


def test_killed_worker_is_replaced(sb: Sandbox) -> None:
    (wpid,) = sb.worker_pids()
    t, out = _run_in_thread(sb, "while True:\n    pass")
    _busy_child(wpid)
    os.kill(wpid, signal.SIGKILL)
    t.join(15)
    (r,) = out
    # The worker's death is not a verdict on the code: the call runs again on a fresh worker, and the
    # endless loop gets its own verdict.
    assert r.error_kind == "timeout"
    r2 = sb.run("result = image.rotate(90, expand=True)", [IMG])
    assert r2.ok and r2.ops == ["rotate_90"]
    assert sb.worker_pids() != [wpid]
    assert child_zombies() == []


def test_hung_worker_is_killed_at_backstop(sb: Sandbox) -> None:
    (wpid,) = sb.worker_pids()
    t0 = time.monotonic()
    t, out = _run_in_thread(sb, "while True:\n    pass")
    _busy_child(wpid)
    os.kill(wpid, signal.SIGSTOP)  # the worker can no longer enforce the deadline itself
    t.join(5)
    elapsed = time.monotonic() - t0
    (r,) = out
    assert r.error_kind == "timeout"
    assert elapsed < TIMEOUT + 0.5
    assert sb.run("result = image", [IMG]).ok
    assert child_zombies() == []
    # the stopped worker's child (its grandchild) dies with it: nothing of the old worker survives
    time.sleep(0.2)
    assert _gone(wpid)


def test_no_zombies_and_no_leftover_processes() -> None:
    s = Sandbox(SandboxConfig(workers=2, timeout_s=TIMEOUT))
    for _ in range(5):
        s.run("result = image", [IMG])
    s.run("while True:\n    pass", [IMG])
    pids = s.worker_pids()
    s.close()
    time.sleep(0.1)
    for pid in pids:
        assert _gone(pid)
    assert child_zombies() == []
