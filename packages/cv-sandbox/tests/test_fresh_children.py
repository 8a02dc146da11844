"""The machinery that keeps a brand-new process per call cheap must not weaken isolation: pixel slots (a
child maps only its own), the wait for earlier children before a slot is written, spares that warm up
before the seccomp filter, a session per call child, children that die with their worker."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
from cv_sandbox import Sandbox, SandboxConfig
from cv_sandbox._exchange import call_child, serve_calls
from cv_sandbox._pool import SLOTS, Worker
from cv_sandbox._wire import recv_frame, send_frame, write_image
from cv_sandbox._zygote import _WARM_STEPS, Zygote, _Slot
from cv_sandbox.testing import children_of
from PIL import Image

IMG = Image.new("RGB", (16, 12), (40, 50, 60))


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    s = Sandbox(SandboxConfig(workers=1, timeout_s=2.0))
    assert s.run("result = image", [IMG]).ok
    yield s
    s.close()


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _spares(sb: Sandbox) -> list[int]:
    """The worker's children (after a short wait, the spares waiting for a call)."""
    time.sleep(0.5)
    (wpid,) = sb.worker_pids()
    return children_of(wpid)


def _memfd_maps(pid: int) -> list[str]:
    with open(f"/proc/{pid}/maps") as f:
        return [ln for ln in f if "cv-sandbox-" in ln]


def _next_spare_slot(w: Worker) -> int:
    """The slot of the spare the next call takes (waiting for the worker's offer if need be)."""
    while not w.spares:
        w._recv(time.monotonic() + 5)
    return w.spares[0].slot


def test_consecutive_calls_use_different_slots(sb: Sandbox) -> None:
    (w,) = sb._pool.workers
    assert SLOTS >= 2 and len(w.slots) == SLOTS
    used = []
    for _ in range(4):
        used.append(_next_spare_slot(w))
        assert sb.run("result = image", [IMG]).ok
    assert used[0] != used[1] and used[1] != used[2]


@pytest.mark.skipif(os.getuid() != 0, reason="reading a hardened child's memory map needs CAP_SYS_PTRACE")
def test_a_child_maps_only_its_own_slot(sb: Sandbox) -> None:
    for pid in _spares(sb):
        maps = _memfd_maps(pid)
        # Its slot's input (read-only) and result regions, nothing of another slot, no writable input.
        assert len(maps) == 2, maps
        (inp,) = [ln for ln in maps if "cv-sandbox-in" in ln]
        assert inp.split()[1].startswith("r--"), inp


def test_the_input_view_cannot_be_made_writable() -> None:
    """A child's input mapping comes from a read-only open: not even mprotect can let it write there."""
    in_fd, out_fd = os.memfd_create("cv-sandbox-in"), os.memfd_create("cv-sandbox-out")
    try:
        os.ftruncate(in_fd, 1 << 16)
        os.ftruncate(out_fd, 1 << 16)
        slot = _Slot(in_fd, out_fd, 1 << 16, 1 << 16)
        view = np.frombuffer(slot.in_view, np.uint8)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        rc = libc.mprotect(view.ctypes.data, 1 << 16, mmap.PROT_READ | mmap.PROT_WRITE)
        assert rc == -1 and ctypes.get_errno() == errno.EACCES
        del view
        slot.unmap()
    finally:
        os.close(in_fd)
        os.close(out_fd)


def test_a_new_child_unmaps_the_other_slots() -> None:
    fds = [os.memfd_create("cv-sandbox-in") for _ in range(4)]
    try:
        for fd in fds:
            os.ftruncate(fd, 1 << 16)
        slots = [_Slot(fds[0], fds[1], 1 << 16, 1 << 16), _Slot(fds[2], fds[3], 1 << 16, 1 << 16)]
        fake = SimpleNamespace(in_map=mmap.mmap(fds[0], 1 << 16), slots=slots, in_view=None, out_map=None)
        Zygote._own_slot(fake, 1)  # type: ignore[arg-type]
        assert fake.in_map.closed and slots[0].in_view.closed and slots[0].out_map.closed
        assert not slots[1].in_view.closed and fake.in_view is slots[1].in_view
        assert fake.out_map is slots[1].out_map
        slots[1].unmap()
    finally:
        for fd in fds:
            os.close(fd)


def test_no_pixels_are_written_to_a_slot_an_earlier_child_may_still_see() -> None:
    """Until the worker reports the slot's earlier child gone, the call waits (here: forever, so it ends
    at the backstop and the worker is replaced) and the slot never receives its pixels."""
    with Sandbox(SandboxConfig(workers=1, timeout_s=1.0)) as s:
        assert s.run("result = image", [IMG]).ok
        (w,) = s._pool.workers
        slot = _next_spare_slot(w)
        w.dirty[10**6] = slot  # a child the worker knows nothing of: it never reports it gone
        marker = Image.new("RGB", (16, 12), (7, 201, 99))
        r = s.run("result = image", [marker])
        assert not r.ok and r.error_kind == "timeout"
        pixels = np.frombuffer(w.slots[slot].in_map, np.uint8, 16 * 12 * 4).reshape(12, 16, 4)
        assert not (pixels[..., :3] == (7, 201, 99)).all(axis=-1).any()
        assert s.run("result = image", [marker]).ok  # the replaced worker serves


def _status_ids(pid: int, key: str) -> list[int]:
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith(key + ":"):
                return [int(v) for v in ln.split()[1:]]
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def test_each_call_child_leads_its_own_session(sb: Sandbox) -> None:
    spares = _spares(sb)
    assert spares
    for pid in spares:  # session id == process id (innermost PID namespace), so a session of its own
        assert _status_ids(pid, "NSsid")[-1] == _status_ids(pid, "NSpid")[-1]


def test_children_die_with_their_worker_outside_a_pid_namespace() -> None:
    """Without hardening there is no PID namespace and the children left the worker's process group: they
    still end when the worker does."""
    s = Sandbox(SandboxConfig(workers=1, harden=False, min_isolation="none"))
    try:
        assert s.run("result = image", [IMG]).ok
        spares = _spares(s)
        assert spares
        (wpid,) = s.worker_pids()
        os.kill(wpid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in spares):
            time.sleep(0.05)
        assert not any(_alive(p) for p in spares)
    finally:
        s.close()


def _alive(pid: int) -> bool:
    try:
        return _stat(pid)[0] not in "ZX"
    except OSError:
        return False


def test_a_spare_stops_warming_once_a_request_waits() -> None:
    """Warming only moves page faults off the call's path; a call already waiting would wait for it."""
    ran: list[str] = []
    fake = SimpleNamespace(**{n: (lambda n=n: ran.append(n)) for n in _WARM_STEPS})
    r, w = os.pipe()
    try:
        Zygote._prewarm(fake, r)  # type: ignore[arg-type]
        assert ran == list(_WARM_STEPS)
        ran.clear()
        os.write(w, b"x")
        Zygote._prewarm(fake, r)  # type: ignore[arg-type]
        assert ran == []
    finally:
        os.close(r)
        os.close(w)


def test_a_child_about_to_end_skips_the_tidy_up_after_its_reply() -> None:
    req_r, req_w = os.pipe()
    res_r, res_w = os.pipe()
    tidied: list[int] = []
    t = threading.Thread(
        target=serve_calls, args=(req_r, res_w, lambda q: {"ok": True}, 2, lambda: tidied.append(1))
    )
    t.start()
    try:
        for _ in range(2):
            send_frame(req_w, {"code": ""})
            recv_frame(res_r, time.monotonic() + 5)
        t.join(5)
        assert tidied == [1]  # after the first reply only: no call follows the second
    finally:
        for fd in (req_r, req_w, res_r, res_w):
            os.close(fd)


# ------------------------------------------------------------------------------ scheduling


def test_background_work_never_preempts_a_call() -> None:
    """The worker (forking, hardening, warming, reaping) runs SCHED_BATCH, whose wake-ups never preempt a
    running task; a spare ready for its call runs the normal policy; a child that has answered switches
    itself (under its seccomp filter) back to SCHED_BATCH for its exit."""
    w = Worker(SandboxConfig(workers=1))
    try:
        w.wait_ready()
        deadline = time.monotonic() + 10
        while len(w.spares) < 2:
            w._recv(deadline)
        time.sleep(0.3)  # both spares hardened and warmed
        worker = w.pid() or 0
        assert os.sched_getscheduler(worker) == os.SCHED_BATCH
        spares = children_of(worker)
        assert len(spares) == 2 and all(os.sched_getscheduler(p) == os.SCHED_OTHER for p in spares)
        link, _ = w._child(deadline)
        meta, nbytes = write_image(w.slots[link.slot].in_map, Image.new("L", (4, 4)))
        reply, _ = call_child(
            link,
            "result = image",
            meta,
            nbytes,
            deadline=deadline,
            timeout_s=10,
            max_stdout_chars=100,
            out_capacity=w.out_bytes,
            load_result=lambda image, n: None,
            supervisor=w,
        )
        assert reply["ok"]
        time.sleep(0.2)  # it waits to be let go (the worker was not told to fork a replacement)
        policies = sorted(os.sched_getscheduler(p) for p in children_of(worker))
        assert policies == sorted([os.SCHED_BATCH, os.SCHED_OTHER])
    finally:
        w.stop()
