"""The direct caller<->child channel: private pipes per child, hostile replies, fd and process hygiene."""

from __future__ import annotations

import json
import os
import signal
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from cv_sandbox import Sandbox, SandboxConfig
from cv_sandbox._pool import ChildLink
from cv_sandbox._zygote import SPARES
from cv_sandbox.testing import child_zombies, children_of
from PIL import Image

IMG = Image.new("RGB", (16, 12), (40, 50, 60))


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    s = Sandbox(SandboxConfig(workers=1, timeout_s=2.0, calls_per_child=4))
    assert s.run("result = image", [IMG]).ok
    yield s
    s.close()


def _fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


def _fake_child(sb: Sandbox, reply: bytes) -> tuple[ChildLink, int]:
    """Replace the current child link with pipes we control; ``reply`` is what the "child" answers."""
    (w,) = sb._pool.workers
    req_r, req_w = os.pipe()
    res_r, res_w = os.pipe()

    def feed() -> None:
        try:
            os.write(res_w, reply)
        except OSError:  # the caller stopped reading (oversized frame)
            pass
        os.close(res_w)

    threading.Thread(target=feed, daemon=True).start()  # the reply may be larger than a pipe holds
    if w.cur is not None:
        w._retire(w.cur, time.monotonic() + 2)
    w.cur = ChildLink(10**6, req_w, res_r)  # an id the worker does not know: it answers, kills nothing
    return w.cur, req_r


def _frame(header: bytes, payload_len: int = 0) -> bytes:
    return struct.pack(">IQ", len(header), payload_len) + header


@pytest.mark.parametrize(
    "reply",
    [
        _frame(b"[" * 100_000 + b"]" * 100_000),  # JSON nested deeper than the parser's recursion limit
        _frame(b"not json"),
        _frame(b"[1, 2]"),
        _frame(b"{}", payload_len=1 << 30),  # results never carry a payload
        struct.pack(">IQ", 1 << 31, 0),  # oversized header
        _frame(json.dumps({"ok": True, "nbytes": 1 << 40, "image": {"mode": "L", "w": 1, "h": 1}}).encode()),
        _frame(json.dumps({"ok": True, "nbytes": 4, "image": {"mode": "L", "w": 1, "h": 1}}).encode()),
        _frame(json.dumps({"ok": True, "nbytes": True, "image": {"mode": "L", "w": 1, "h": 1}}).encode()),
    ],
)
def test_hostile_reply_is_a_crash_result_never_an_exception(sb: Sandbox, reply: bytes) -> None:
    link, req_r = _fake_child(sb, reply)
    try:
        r = sb.run("result = image", [IMG])
    finally:
        os.close(req_r)
    assert not r.ok and r.error_kind == "crash", r.error
    assert link.req_w == -1 and link.res_r == -1  # the caller let go of that child
    r = sb.run("result = image.rotate(90, expand=True)", [IMG])  # the next call gets a real child
    assert r.ok and r.image.size == (12, 16)


def test_child_that_closed_its_pipe_is_reaped_and_the_call_runs_on_another(sb: Sandbox) -> None:
    """The request never reached that child, so none of the call ran: it is reaped and the call runs on the
    next child of the same worker (a crash here would be a harness failure charged to the model's code)."""
    (wpid,) = sb.worker_pids()
    link, req_r = _fake_child(sb, b"")  # EOF: the worker is asked why; it knows no such child
    os.close(req_r)
    r = sb.run("result = image", [IMG])
    assert r.ok, r.error
    assert link.req_w == -1 and link.res_r == -1  # the caller let go of that child
    assert sb.worker_pids() == [wpid]  # one dead child does not cost the worker
    assert sb.run("result = image", [IMG]).ok


def test_idle_child_killed_between_calls_is_replaced(sb: Sandbox) -> None:
    (wpid,) = sb.worker_pids()
    (w,) = sb._pool.workers
    assert w.cur is not None
    before = set(children_of(wpid))
    for pid in before:  # the current child and the spare
        os.kill(pid, signal.SIGKILL)
    r = sb.run("result = image", [IMG])
    assert not r.ok and r.error_kind in ("memory", "crash")
    for _ in range(SPARES + 1):  # each spare killed above fails once, then fresh ones serve
        r = sb.run("result = image", [IMG])
        if r.ok:
            break
    assert r.ok, r.error
    assert sb.worker_pids() == [wpid] or child_zombies() == []


def test_every_child_gets_private_pipes_and_no_fds_leak() -> None:
    with Sandbox(SandboxConfig(workers=1, calls_per_child=1, timeout_s=2)) as sb:
        (w,) = sb._pool.workers
        assert sb.run("result = image", [IMG]).ok
        fds = _fds()
        seen: set[int] = set()
        for k in range(6):
            r = sb.run(f"result = image.crop((0, 0, {k + 1}, 1))" if k % 2 else "import os", [IMG])
            assert r.ok or r.error_kind == "forbidden"
            assert w.cur is None or w.cur.id not in seen
            if w.cur is not None:
                seen.add(w.cur.id)
        assert sb.run("while True:\n    pass", [IMG]).error_kind == "timeout"
        assert sb.run("result = image", [IMG]).ok
        time.sleep(0.05)
        # Only the offered spares' pipe ends are held, whatever happened (two per spare).
        assert len(_fds() - fds) <= 2 * SPARES and len(fds - _fds()) <= 2 * SPARES
        (wpid,) = sb.worker_pids()
        assert len(children_of(wpid)) <= SPARES + 2  # spares, the child just used (being reaped)
    assert child_zombies() == []


def test_worker_is_not_on_the_call_path() -> None:
    """Calls on a reused child never wake the worker (no context switch of the worker process)."""
    with Sandbox(SandboxConfig(workers=1, calls_per_child=4, timeout_s=2)) as sb:
        (wpid,) = sb.worker_pids()

        def wakeups() -> int:
            with open(f"/proc/{wpid}/status") as f:
                return sum(int(ln.split()[1]) for ln in f if "ctxt_switches" in ln)

        assert sb.run("result = image", [IMG]).ok  # takes the first child; the worker forks a spare
        time.sleep(0.5)
        before = wakeups()
        for _ in range(3):  # the same child serves them
            assert sb.run("result = image.point(lambda v: 255 - v)", [IMG]).ok
        assert wakeups() == before
        assert sb.run("result = image", [IMG]).ok  # a new child: now the worker is told
        time.sleep(0.2)
        assert wakeups() > before
