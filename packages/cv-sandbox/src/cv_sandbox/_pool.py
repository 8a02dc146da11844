"""The caller's side: the pool of warm worker processes and the handle on each.

A :class:`Worker` starts one worker process (:mod:`cv_sandbox._zygote`) with a scrubbed environment and
two shared-memory regions for pixels, takes the children it offers over the control socket, and runs each
call on one of them with :func:`cv_sandbox._exchange.call_child`, acting as that exchange's supervisor
(it asks the worker to kill, reap or retire a child). A :class:`WorkerPool` hands workers to calls in the
order the calls asked (first come, first served), bounds the wait, and replaces a worker that fails or
stops answering.

Confidentiality between calls: by default a child serves one call and is then retired. Pixels travel
through :data:`SLOTS` pairs of shared regions; each child maps only the pair (slot) the worker gave it, and
consecutive children get different slots, so a call's pixels can be written while the child of the call
before is still being reaped. A slot is written only once the worker has reported every child that ran code
on it gone (reaped); the unused tail of the input region is zeroed, and the result region is zeroed as soon
as the result has been copied out. No process that ran earlier code can see a later call's data.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from ._exchange import (
    ControlOp,
    call_child,
    error_reply,
    read_ready,
    read_worker_message,
    send_controls,
    send_init,
    timeout_message,
)
from ._harden import DISABLE_ENV
from ._wire import CallLost, WireClosed, WireError, WireTimeout, read_image, write_image


class SandboxConfig(Protocol):
    """What the pool reads of :class:`cv_sandbox.SandboxConfig` (a dataclass; sent to workers whole)."""

    timeout_s: float
    workers: int
    max_input_pixels: int
    max_output_pixels: int
    max_stdout_chars: int
    start_timeout_s: float
    calls_per_child: int
    acquire_timeout_s: float


#: Grace period the caller gives a worker beyond ``timeout_s`` before killing it outright.
_BACKSTOP_S = 0.4
#: How long a worker may take to reap a child whose pipe closed (freeing a big address space is slow).
_REAP_S = 2.0
#: Pairs of pixel regions per worker (children take them in turn; see the module docstring).
SLOTS = 2
#: Tries of one call whose code never ran (its child, or its worker, was gone before the call reached it):
#: enough for every spare a worker keeps ahead to have been killed, bounded so that a machine killing every
#: child cannot keep a call looping.
_TRIES = 4

# The worker imports only the internals it runs, not the package's public API (asyncio, ssl, cv_protocol,
# ... : ~100 more memory mappings, which every fork copies and every child's exit tears down again).
_BOOTSTRAP = (
    "import os, sys, types; pkg = types.ModuleType('cv_sandbox'); "
    "pkg.__path__ = [os.path.join(sys.argv[1], 'cv_sandbox')]; sys.modules['cv_sandbox'] = pkg; "
    "from cv_sandbox._zygote import main; main()"
)

_WORKER_ENV = {
    "PATH": "/usr/bin:/bin",
    "LC_ALL": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENCV_FOR_THREADS_NUM": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


class ChildLink:
    """The caller's ends of one sandbox child's request and reply pipes, and the pixel slot it maps."""

    __slots__ = ("id", "req_w", "res_r", "calls", "slot")

    def __init__(self, child_id: int, req_w: int, res_r: int, slot: int = 0) -> None:
        self.id = child_id
        self.req_w = req_w
        self.res_r = res_r
        self.calls = 0
        self.slot = slot

    def close(self) -> None:
        for fd in (self.req_w, self.res_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.req_w = self.res_r = -1


def _zero(buf: mmap.mmap, start: int, end: int) -> None:
    """Overwrite ``buf[start:end]`` with zeros."""
    if end <= start:
        return
    anchor = ctypes.c_char.from_buffer(buf)  # pins the mapping while we write
    try:
        ctypes.memset(ctypes.addressof(anchor) + start, 0, end - start)
    finally:
        del anchor


class PixelSlot:
    """One pair of shared-memory regions: a call's input pixels and its result's (sparse until written)."""

    __slots__ = ("in_fd", "out_fd", "in_map", "out_map", "in_used")

    def __init__(self, in_bytes: int, out_bytes: int) -> None:
        self.in_fd = self.out_fd = -1
        try:
            self.in_fd = os.memfd_create("cv-sandbox-in", os.MFD_CLOEXEC)
            self.out_fd = os.memfd_create("cv-sandbox-out", os.MFD_CLOEXEC)
            os.ftruncate(self.in_fd, in_bytes)
            os.ftruncate(self.out_fd, out_bytes)
            self.in_map = mmap.mmap(self.in_fd, in_bytes)
            self.out_map = mmap.mmap(self.out_fd, out_bytes)
        except BaseException:
            self.close()
            raise
        self.in_used = 0  # how much of the input region holds pixels (zeroed beyond)

    def close(self) -> None:
        for m in (getattr(self, "in_map", None), getattr(self, "out_map", None)):
            try:
                if m is not None:
                    m.close()
            except (BufferError, ValueError):
                pass
        for fd in (self.in_fd, self.out_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.in_fd = self.out_fd = -1


class Worker:
    """One warm worker process and the pipes to it; used by one call at a time."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctl: socket.socket | None = None
        self.cur: ChildLink | None = None  # the child serving calls (reuse mode only outlives a call)
        self.spares: deque[ChildLink] = deque()  # children the worker offered, forked and hardened
        self.dirty: dict[int, int] = {}  # child id -> slot: may have run code, not reported gone yet
        self.ready = False
        self.hardening: dict[str, bool] = {}
        self._backstop = 0.0  # the current call's last moment before the worker itself is given up on
        # The worker stopped answering after a call's reply was safe: the reply stands, the worker is replaced.
        self.failed = False
        # Pixels travel through shared-memory regions, never through pipes.
        self.in_bytes = config.max_input_pixels * 4
        self.out_bytes = config.max_output_pixels * 4 + 64
        self.slots: list[PixelSlot] = []
        try:
            for _ in range(SLOTS):
                self.slots.append(PixelSlot(self.in_bytes, self.out_bytes))
        except BaseException:
            for slot in self.slots:
                slot.close()
            raise
        self.start()

    # ------------------------------------------------------------------ the worker process

    def start(self) -> None:
        env = dict(_WORKER_ENV)
        if os.environ.get("CV_SANDBOX_DEBUG") == "1":
            env["CV_SANDBOX_DEBUG"] = "1"
        if os.environ.get(DISABLE_ENV):
            env[DISABLE_ENV] = os.environ[DISABLE_ENV]
        pkg_root = str(Path(__file__).resolve().parent.parent)
        # Control socket: the worker hands over each child's pipe ends on it and kills/reaps on request.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOTSTRAP, pkg_root],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None if env.get("CV_SANDBOX_DEBUG") else subprocess.DEVNULL,
                env=env,
                cwd="/",
                start_new_session=True,
                close_fds=True,
                pass_fds=(*(fd for s in self.slots for fd in (s.in_fd, s.out_fd)), theirs.fileno()),
            )
            cfg = dict(
                asdict(self.config),  # type: ignore[call-overload]
                in_fds=[s.in_fd for s in self.slots],
                out_fds=[s.out_fd for s in self.slots],
                in_bytes=self.in_bytes,
                out_bytes=self.out_bytes,
                ctl_fd=theirs.fileno(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.ctl = ours
        self.failed = False
        self.cur = None
        self.spares.clear()
        self.dirty.clear()
        self.ready = False
        assert self.proc.stdin is not None
        send_init(self.proc.stdin.fileno(), cfg, deadline=time.monotonic() + 10)

    def wait_ready(self) -> None:
        if self.ready:
            return
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.config.start_timeout_s
        self.hardening = read_ready(self.proc.stdout.fileno(), deadline)
        while not self.spares:  # the first child, forked and hardened: start-up, not the first call
            self._recv(deadline)
        self.ready = True

    def terminate(self) -> None:
        """Kill the worker's processes (only signals: safe while another thread is in a call on it)."""
        proc = self.proc
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        proc = self.proc
        self.proc = None
        self.ready = False
        for link in (self.cur, *self.spares):
            if link is not None:
                link.close()
        self.cur = None
        self.spares.clear()
        self.dirty.clear()  # killing the worker's process group ends every child it had
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for f in (proc.stdin, proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        """Ask the worker to exit, then make sure of it (kill), and free the shared memory."""
        try:
            if self.proc is not None and self.ctl is not None:
                self._send("exit", None, time.monotonic() + 0.2)
        except (OSError, WireError):
            pass
        self.kill()
        for slot in self.slots:
            slot.close()

    def pid(self) -> int | None:
        """The worker process's id (in a PID namespace: process 1 there, a child of the launcher here)."""
        if self.proc is None:
            return None
        from .testing import children_of

        kids = children_of(self.proc.pid)
        return kids[0] if len(kids) == 1 and self.hardening.get("pidns") else self.proc.pid

    # ------------------------------------------------------------------ control channel

    def _send(self, op: ControlOp, child_id: int | None, deadline: float) -> None:
        assert self.ctl is not None
        send_controls(self.ctl.fileno(), [(op, child_id)], deadline)

    def _recv(self, deadline: float) -> dict[str, Any]:
        """The worker's next message: a child offer becomes a spare, ``gone`` clears a child."""
        assert self.ctl is not None
        msg, ends = read_worker_message(self.ctl, deadline)
        if ends is not None:
            link = ChildLink(msg["id"], *ends, slot=msg["slot"])
            if not 0 <= link.slot < len(self.slots):
                link.close()
                raise WireError("child offer with an unknown pixel slot")
            self.spares.append(link)
        elif msg.get("op") == "gone":
            self.dirty.pop(msg.get("id"), None)  # type: ignore[arg-type]
        return msg

    def _drain(self, deadline: float) -> None:
        """Take in the messages the worker has already sent (offers, children gone), without waiting."""
        assert self.ctl is not None
        while select.select([self.ctl], [], [], 0)[0]:
            self._recv(deadline)

    def _ask(self, op: ControlOp, link: ChildLink, deadline: float) -> dict[str, Any]:
        """Have the worker kill or reap ``link``'s child; returns its status message."""
        if self.cur is link:
            self.cur = None
        link.close()
        self.dirty[link.id] = link.slot
        self._send(op, link.id, deadline)
        while True:
            msg = self._recv(deadline)
            if msg.get("op") == "status" and msg.get("id") == link.id:
                return msg

    def _await_clean(self, slot: int, deadline: float) -> None:
        """Wait until every child that may have run earlier code on ``slot`` is gone (reaped)."""
        while slot in self.dirty.values():
            self._recv(deadline)

    # ------------------------------------------------------------------ children (the exchange's supervisor)

    def _child(self, deadline: float) -> tuple[ChildLink, bool]:
        """The child for the next call: the current one while it may serve more calls, else a spare (then
        also True: the worker must be told to fork the next spare)."""
        if self.cur is not None and self.cur.calls < self.config.calls_per_child:
            return self.cur, False
        if self.cur is not None:
            self._retire(self.cur, deadline)
        while not self.spares:
            self._recv(deadline)
        self.cur = self.spares.popleft()
        return self.cur, True

    def kill_child(self, child: ChildLink) -> None:
        self._ask("kill", child, self._backstop)  # raises WireTimeout if the worker does not answer

    def reap_child(self, child: ChildLink) -> tuple[str, str]:
        try:
            status = self._ask("reap", child, time.monotonic() + _REAP_S)
        except (WireError, OSError):
            self.failed = True  # the worker cannot account for its children any more
            raise
        return str(status.get("error_kind") or "crash"), str(status.get("error") or "")

    def retire_child(self, child: ChildLink) -> None:
        try:
            self._retire(child, self._backstop)
        except (WireError, OSError):  # only bookkeeping: the reply in hand stands; the worker is replaced
            self.failed = True

    def _retire(self, child: ChildLink, deadline: float, then_take: int | None = None) -> None:
        if self.cur is child:
            self.cur = None
        child.close()  # a child that replied waits for this end to close, then exits
        self.dirty[child.id] = child.slot
        requests: list[tuple[ControlOp, int | None]] = [("retire", child.id)]
        if then_take is not None:
            requests.append(("take", then_take))
        assert self.ctl is not None
        send_controls(self.ctl.fileno(), requests, deadline)

    # ------------------------------------------------------------------ one call

    def call(self, code: str, im: Image.Image) -> tuple[dict[str, Any], Image.Image | None]:
        """Run ``code`` on ``im`` in a child. Raises :class:`WireError` or ``OSError`` only when the worker
        itself failed (it must then be restarted)."""
        if self.proc is None:
            raise WireError("the worker is not running")
        timeout_s = self.config.timeout_s
        self._backstop = time.monotonic() + timeout_s + _BACKSTOP_S
        try:
            self._drain(self._backstop)
            link, taken = self._child(self._backstop)
            self._await_clean(link.slot, self._backstop)  # no earlier child may see this call's pixels
        except (WireClosed, OSError) as exc:  # the worker is gone and this call has not started
            self.failed = True
            raise CallLost(f"the sandbox worker was gone before the call: {exc}") from exc
        slot = self.slots[link.slot]
        meta, nbytes = write_image(slot.in_map, im)  # one memcpy straight into shared memory
        _zero(slot.in_map, nbytes, slot.in_used)
        slot.in_used = nbytes
        link.calls += 1

        def load(image: Any, n: int) -> Image.Image:
            # One copy: the caller's image never aliases the buffer; then nothing of it stays there.
            try:
                return read_image(slot.out_map, image, n)
            finally:
                _zero(slot.out_map, 0, n)

        # Straight to the child and back: the worker is not woken on the way.
        try:
            reply = call_child(
                link,
                code,
                meta,
                nbytes,
                deadline=min(time.monotonic() + timeout_s, self._backstop),
                timeout_s=timeout_s,
                max_stdout_chars=self.config.max_stdout_chars,
                out_capacity=self.out_bytes,
                load_result=load,
                supervisor=self,
            )
        except CallLost:  # that child was gone: the spare it was must still be replaced
            if taken and not self.failed:
                try:
                    self._send("take", link.id, self._backstop)
                except (WireError, OSError):
                    self.failed = True
            raise
        # Only now (the result is safe) the worker hears about this call: it retires the child and forks
        # the spare that replaces the one taken, in one wake-up and off this call's path.
        take = link.id if taken else None
        try:
            if self.cur is link and link.calls >= self.config.calls_per_child:
                self._retire(link, self._backstop, then_take=take)
            elif take is not None:
                self._send("take", take, self._backstop)
        except (WireError, OSError):  # the worker died after the child answered: the reply is still right
            self.failed = True
        return reply


class _Waiter:
    __slots__ = ("event", "worker", "closed")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.worker: Worker | None = None
        self.closed = False


class PoolClosed(Exception):
    """The pool was closed while a call waited for a worker."""


class WorkerPool:
    """``config.workers`` warm workers, handed to calls first come, first served (the most recently used
    idle worker first: its caches are warm); a worker that fails is replaced."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.closed = False
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._waiters: deque[_Waiter] = deque()
        self._busy: set[Worker] = set()
        self.workers: list[Worker] = []
        try:
            for _ in range(config.workers):
                w = Worker(config)
                self.workers.append(w)
                self._idle.append(w)
        except BaseException:
            self.close()  # the workers already started must not outlive a pool that failed to start
            raise

    # ------------------------------------------------------------------ handing out workers

    def acquire(self, timeout_s: float) -> Worker | None:
        """The next free worker, in the order callers asked; None after ``timeout_s``.

        Raises :class:`PoolClosed` if the pool is (or gets) closed.
        """
        with self._lock:
            if self.closed:
                raise PoolClosed
            if self._idle and not self._waiters:
                w = self._idle.pop()
                self._busy.add(w)
                return w
            waiter = _Waiter()
            self._waiters.append(waiter)
        waiter.event.wait(timeout_s)
        with self._lock:
            if waiter.worker is not None:  # handed over (possibly right at the deadline)
                return waiter.worker
            if waiter.closed:
                raise PoolClosed
            self._waiters.remove(waiter)
            return None

    def release(self, worker: Worker) -> None:
        """Hand ``worker`` straight to the longest-waiting call, or put it back."""
        with self._lock:
            if self.closed:
                self._busy.discard(worker)
                stop = True
            else:
                stop = False
                if self._waiters:
                    waiter = self._waiters.popleft()
                    waiter.worker = worker
                    waiter.event.set()
                    return
                self._busy.discard(worker)
                self._idle.append(worker)
        if stop:
            worker.stop()

    # ------------------------------------------------------------------ calls

    def call(self, code: str, im: Image.Image) -> tuple[dict[str, Any], Image.Image | None]:
        """Run one call on the next free worker; returns the reply header and the result image."""
        try:
            worker = self.acquire(self.config.acquire_timeout_s)
        except PoolClosed:
            return error_reply("closed", _CLOSED_MESSAGE), None
        if worker is None:
            return (
                error_reply(
                    "busy",
                    f"no sandbox worker became free within {self.config.acquire_timeout_s:g} s (all "
                    f"{self.config.workers} are busy); raise SandboxConfig.workers or acquire_timeout_s",
                ),
                None,
            )
        try:
            header, image = self._call(worker, code, im)
        finally:
            self.release(worker)
        if self.closed and not header.get("ok"):
            return error_reply("closed", _CLOSED_MESSAGE), None
        return header, image

    def hardening(self) -> dict[str, bool]:
        """What OS hardening worked (from the workers' start-up probe; waits for one if need be)."""
        for w in self.workers:
            if w.ready and w.hardening:
                return dict(w.hardening)
        try:
            w = self.acquire(self.config.start_timeout_s)
        except PoolClosed:
            return {}
        if w is None:
            return {}
        try:
            w.wait_ready()
            return dict(w.hardening)
        finally:
            self.release(w)

    def pids(self) -> list[int]:
        return [p for p in (w.pid() for w in self.workers) if p is not None]

    def close(self) -> None:
        """Stop every worker; calls waiting for one, and calls in flight, return a ``closed`` error."""
        with self._lock:
            self.closed = True
            waiters, self._waiters = list(self._waiters), deque()
            idle, self._idle = self._idle, []
            busy = list(self._busy)
        for waiter in waiters:
            waiter.closed = True
            waiter.event.set()
        for w in busy:
            w.terminate()  # its call ends now and stops the worker when it hands it back
        for w in idle:
            w.stop()

    def _call(self, worker: Worker, code: str, im: Image.Image) -> tuple[dict[str, Any], Image.Image | None]:
        last = _TRIES - 1
        for attempt in range(_TRIES):
            if self.closed:
                return error_reply("closed", _CLOSED_MESSAGE), None
            try:
                if worker.proc is None:
                    worker.start()
                worker.wait_ready()
            except (WireError, OSError, RuntimeError) as exc:
                worker.kill()
                if attempt >= 1:  # a worker that failed to start twice will not start
                    return error_reply("crash", f"sandbox worker could not start: {exc}"), None
                continue
            try:
                reply = worker.call(code, im)
            except CallLost as exc:  # none of its code ran: run it again (on a fresh worker if need be)
                if worker.failed:
                    self._replace(worker)
                if attempt == last:
                    return error_reply("crash", f"sandbox worker failed: {exc}"), None
                continue
            except WireTimeout:  # the worker did not answer by the backstop
                self._replace(worker)
                return error_reply("timeout", timeout_message(self.config.timeout_s)), None
            except (WireError, OSError, ValueError) as exc:
                self._replace(worker)
                return error_reply("crash", f"sandbox worker failed: {exc}"), None
            if worker.failed:
                self._replace(worker)
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _replace(self, worker: Worker) -> None:
        if self.closed:
            worker.kill()
            return
        worker.restart()


_CLOSED_MESSAGE = "the sandbox was closed while this call was waiting or running; create a new Sandbox"
