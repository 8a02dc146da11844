"""The caller's side: the pool of warm worker processes and the handle on each.

A :class:`Worker` starts one worker process (:mod:`cv_sandbox._zygote`) with a scrubbed environment and
two shared-memory regions for pixels, takes the children it offers over the control socket, and runs each
call on one of them with :func:`cv_sandbox._exchange.call_child`, acting as that exchange's supervisor
(it asks the worker to kill, reap or retire a child). A :class:`WorkerPool` hands workers to calls and
replaces a worker that fails or stops answering.
"""

from __future__ import annotations

import mmap
import os
import queue
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from ._exchange import (
    ControlOp,
    call_child,
    error_reply,
    read_ready,
    read_worker_message,
    send_control,
    send_init,
    timeout_message,
)
from ._wire import WireError, WireTimeout, read_image, write_image

if TYPE_CHECKING:
    from .sandbox import SandboxConfig

#: Grace period the caller gives a worker beyond ``timeout_s`` before killing it outright.
_BACKSTOP_S = 0.4
#: How long a worker may take to reap a child whose pipe closed (freeing a big address space is slow).
_REAP_S = 2.0

_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); from cv_sandbox._zygote import main; main()"

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
    """The caller's ends of one sandbox child's request and reply pipes."""

    __slots__ = ("id", "req_w", "res_r", "calls")

    def __init__(self, child_id: int, req_w: int, res_r: int) -> None:
        self.id = child_id
        self.req_w = req_w
        self.res_r = res_r
        self.calls = 0

    def close(self) -> None:
        for fd in (self.req_w, self.res_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.req_w = self.res_r = -1


class Worker:
    """One warm worker process and the pipes to it; used by one call at a time."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctl: socket.socket | None = None
        self.cur: ChildLink | None = None  # the child serving calls
        self.nxt: ChildLink | None = None  # the spare the worker offered
        self.ready = False
        self.hardening: dict[str, bool] = {}
        self._backstop = 0.0  # the current call's last moment before the worker itself is given up on
        # Pixels travel through two shared-memory regions (sparse until written), never through pipes.
        self.in_bytes = config.max_input_pixels * 4
        self.out_bytes = config.max_output_pixels * 4 + 64
        self.in_fd = os.memfd_create("cv-sandbox-in", os.MFD_CLOEXEC)
        self.out_fd = os.memfd_create("cv-sandbox-out", os.MFD_CLOEXEC)
        os.ftruncate(self.in_fd, self.in_bytes)
        os.ftruncate(self.out_fd, self.out_bytes)
        self.in_map = mmap.mmap(self.in_fd, self.in_bytes)
        self.out_map = mmap.mmap(self.out_fd, self.out_bytes)
        self.start()

    # ------------------------------------------------------------------ the worker process

    def start(self) -> None:
        env = dict(_WORKER_ENV)
        if os.environ.get("CV_SANDBOX_DEBUG") == "1":
            env["CV_SANDBOX_DEBUG"] = "1"
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
                pass_fds=(self.in_fd, self.out_fd, theirs.fileno()),
            )
            cfg = dict(
                asdict(self.config),
                in_fd=self.in_fd,
                out_fd=self.out_fd,
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
        self.cur = self.nxt = None
        self.ready = False
        assert self.proc.stdin is not None
        send_init(self.proc.stdin.fileno(), cfg, deadline=time.monotonic() + 10)

    def wait_ready(self) -> None:
        if self.ready:
            return
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.config.start_timeout_s
        self.hardening = read_ready(self.proc.stdout.fileno(), deadline)
        while self.nxt is None:  # the first child, forked and hardened: start-up, not the first call
            self._recv(deadline)
        self.ready = True

    def kill(self) -> None:
        proc = self.proc
        self.proc = None
        self.ready = False
        for link in (self.cur, self.nxt):
            if link is not None:
                link.close()
        self.cur = self.nxt = None
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
        for m in (self.in_map, self.out_map):
            try:
                m.close()
            except (BufferError, ValueError):
                pass
        for fd in (self.in_fd, self.out_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    # ------------------------------------------------------------------ control channel

    def _send(self, op: ControlOp, child_id: int | None, deadline: float) -> None:
        assert self.ctl is not None
        send_control(self.ctl.fileno(), op, child_id, deadline)

    def _recv(self, deadline: float) -> dict[str, Any]:
        """The worker's next message; a child offer becomes the spare (``self.nxt``)."""
        assert self.ctl is not None
        msg, ends = read_worker_message(self.ctl, deadline)
        if ends is not None:
            if self.nxt is not None:
                self.nxt.close()
            self.nxt = ChildLink(msg["id"], *ends)
        return msg

    def _ask(self, op: ControlOp, link: ChildLink, deadline: float) -> dict[str, Any]:
        """Have the worker kill or reap ``link``'s child; returns its status message."""
        if self.cur is link:
            self.cur = None
        link.close()
        self._send(op, link.id, deadline)
        while True:
            msg = self._recv(deadline)
            if msg.get("op") == "status" and msg.get("id") == link.id:
                return msg

    # ------------------------------------------------------------------ children (the exchange's supervisor)

    def _child(self, deadline: float) -> ChildLink:
        """The child for the next call: the current one while it may serve more calls, else the spare."""
        if self.cur is not None and self.cur.calls < self.config.calls_per_child:
            return self.cur
        if self.cur is not None:
            self._retire(self.cur, deadline)
        while self.nxt is None:
            self._recv(deadline)
        self.cur, self.nxt = self.nxt, None
        self._send("take", self.cur.id, deadline)  # the worker forks the next spare
        return self.cur

    def kill_child(self, child: ChildLink) -> None:
        self._ask("kill", child, self._backstop)  # raises WireTimeout if the worker does not answer

    def reap_child(self, child: ChildLink) -> tuple[str, str]:
        status = self._ask("reap", child, time.monotonic() + _REAP_S)
        return str(status.get("error_kind") or "crash"), str(status.get("error") or "")

    def retire_child(self, child: ChildLink) -> None:
        self._retire(child, self._backstop)

    def _retire(self, child: ChildLink, deadline: float) -> None:
        if self.cur is child:
            self.cur = None
        child.close()
        self._send("retire", child.id, deadline)

    # ------------------------------------------------------------------ one call

    def call(self, code: str, im: Image.Image) -> tuple[dict[str, Any], Image.Image | None]:
        """Run ``code`` on ``im`` in a child. Raises :class:`WireError` or ``OSError`` only when the worker
        itself failed (it must then be restarted)."""
        assert self.proc is not None
        timeout_s = self.config.timeout_s
        self._backstop = time.monotonic() + timeout_s + _BACKSTOP_S
        meta, nbytes = write_image(self.in_map, im)  # one memcpy straight into shared memory
        link = self._child(self._backstop)
        link.calls += 1
        # Straight to the child and back: the worker is not woken on the way.
        return call_child(
            link,
            code,
            meta,
            nbytes,
            deadline=min(time.monotonic() + timeout_s, self._backstop),
            timeout_s=timeout_s,
            max_stdout_chars=self.config.max_stdout_chars,
            out_capacity=self.out_bytes,
            # One copy: the caller's image never aliases the buffer the next call reuses.
            load_result=lambda image, n: read_image(self.out_map, image, n),
            supervisor=self,
        )


class WorkerPool:
    """``config.workers`` warm workers; each call borrows one (the most recently used, whose caches are
    warm) and a worker that fails is replaced."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.closed = False
        self._idle: queue.LifoQueue[Worker] = queue.LifoQueue()
        self.workers: list[Worker] = []
        try:
            for _ in range(config.workers):
                w = Worker(config)
                self.workers.append(w)
                self._idle.put(w)
        except BaseException:
            self.close()  # the workers already started must not outlive a pool that failed to start
            raise

    def call(self, code: str, im: Image.Image) -> tuple[dict[str, Any], Image.Image | None]:
        """Run one call on the next free worker; returns the reply header and the result image."""
        worker = self._idle.get()
        try:
            return self._call(worker, code, im)
        finally:
            self._idle.put(worker)

    def hardening(self) -> dict[str, bool]:
        """What OS hardening worked (from the workers' start-up probe; waits for one if need be)."""
        for w in self.workers:
            if w.ready and w.hardening:
                return dict(w.hardening)
        w = self._idle.get()
        try:
            w.wait_ready()
            return dict(w.hardening)
        finally:
            self._idle.put(w)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc is not None]

    def close(self) -> None:
        self.closed = True
        for w in self.workers:
            w.stop()

    def _call(self, worker: Worker, code: str, im: Image.Image) -> tuple[dict[str, Any], Image.Image | None]:
        for attempt in (0, 1):
            try:
                if worker.proc is None:
                    worker.start()
                worker.wait_ready()
            except (WireError, OSError, RuntimeError) as exc:
                worker.kill()
                if attempt == 1:
                    return error_reply("crash", f"sandbox worker could not start: {exc}"), None
                continue
            try:
                return worker.call(code, im)
            except WireTimeout:  # the worker did not answer by the backstop
                self._replace(worker)
                return error_reply("timeout", timeout_message(self.config.timeout_s)), None
            except (WireError, OSError, ValueError) as exc:
                self._replace(worker)
                return error_reply("crash", f"sandbox worker failed: {exc}"), None
        raise AssertionError("unreachable")  # pragma: no cover

    def _replace(self, worker: Worker) -> None:
        if self.closed:
            worker.kill()
            return
        worker.restart()
