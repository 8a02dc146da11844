"""The public entry point: a pool of warm, hardened workers that run model-written image code.

Each worker is a separate Python process started with a scrubbed environment; it imports PIL, NumPy and
OpenCV once, then forks a fresh hardened child per call (nothing from one call is visible to the next).
Calls are thread-safe and can be awaited; a worker that dies or hangs is killed and replaced.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ._wire import (
    WireClosed,
    WireError,
    WireTimeout,
    _wait,
    normalize_mode,
    read_image,
    recv_frame,
    send_frame,
    write_image,
)
from .result import ExecResult, TraceOp

ImageLike = Image.Image | np.ndarray | str | Path

#: Grace period the caller gives a worker beyond ``timeout_s`` before killing it outright.
_BACKSTOP_S = 0.4


@dataclass
class SandboxConfig:
    """Limits and pool settings of a :class:`Sandbox`.

    Attributes:
        timeout_s: Wall-clock limit for one execution (the child is killed at this point).
        memory_mb: Address-space allowance for user code on top of the preloaded libraries.
        workers: Number of warm worker processes, i.e. how many calls run in parallel.
        max_code_chars: Longest accepted code string.
        max_output_pixels: Largest accepted ``result`` (width * height).
        max_input_pixels: Largest accepted input image (width * height).
        max_stdout_chars: Captured ``print`` output is truncated to this many characters.
        max_aspect_ratio: ``result`` images more elongated than this are rejected (``empty_result``).
        start_timeout_s: How long to wait for a worker to import its libraries and report ready.
        calls_per_child: How many calls one hardened child may serve before it is replaced by a fresh fork
            of the clean worker. 1 gives every call a brand-new process (strictest, slower: fork and
            first-touch costs land on each call); larger values amortise them. A child is retired early
            after any timeout, memory error, crash or forbidden access.
        harden: Apply OS hardening (namespaces, chroot, rlimits, uid drop, no_new_privs, seccomp) to every
            child. Turn off only to debug; the RestrictedPython layer and facades stay on either way.
    """

    timeout_s: float = 10.0
    memory_mb: int = 2048
    workers: int = 2
    max_code_chars: int = 20_000
    max_output_pixels: int = 64_000_000
    max_input_pixels: int = 100_000_000
    max_stdout_chars: int = 4_000
    max_aspect_ratio: float = 200.0
    start_timeout_s: float = 120.0
    harden: bool = True
    calls_per_child: int = 32

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {self.timeout_s}; set e.g. timeout_s=10")
        if self.memory_mb < 64:
            raise ValueError(f"memory_mb must be >= 64, got {self.memory_mb}; set e.g. memory_mb=2048")
        if self.workers < 1:
            raise ValueError(
                f"workers must be >= 1, got {self.workers}; set workers to the parallel calls you need"
            )
        if self.max_code_chars < 1:
            raise ValueError(f"max_code_chars must be >= 1, got {self.max_code_chars}")
        if self.max_output_pixels < 1 or self.max_input_pixels < 1:
            raise ValueError("max_output_pixels and max_input_pixels must be >= 1")
        if self.max_stdout_chars < 0:
            raise ValueError(f"max_stdout_chars must be >= 0, got {self.max_stdout_chars}")
        if self.max_aspect_ratio < 1:
            raise ValueError(f"max_aspect_ratio must be >= 1, got {self.max_aspect_ratio}")
        if self.calls_per_child < 1:
            raise ValueError(
                f"calls_per_child must be >= 1, got {self.calls_per_child}; 1 forks a child per call"
            )
        if not self.start_timeout_s > 0:
            raise ValueError(f"start_timeout_s must be > 0, got {self.start_timeout_s}")


_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); from cv_sandbox._worker import main; main()"

_WORKER_ENV = {
    "PATH": "/usr/bin:/bin",
    "LC_ALL": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENCV_FOR_THREADS_NUM": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


_REUSABLE_AFTER = frozenset(
    {"syntax", "exception", "bad_result", "empty_result", "output_too_large", "code_too_long"}
)


def _error(kind: str, msg: str) -> dict[str, Any]:
    return {"ok": False, "error_kind": kind, "error": msg}


class _ChildLink:
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


class _Worker:
    """One warm worker process and the pipes to it; used by one call at a time."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctl: socket.socket | None = None
        self.cur: _ChildLink | None = None
        self.nxt: _ChildLink | None = None
        self.ready = False
        self.hardening: dict[str, bool] = {}
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
        self.cur: _ChildLink | None = None
        self.nxt: _ChildLink | None = None
        self.ready = False
        assert self.proc.stdin is not None
        send_frame(self.proc.stdin.fileno(), {"op": "init", "config": cfg}, deadline=time.monotonic() + 10)

    def wait_ready(self) -> None:
        if self.ready:
            return
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.config.start_timeout_s
        msg, _ = recv_frame(self.proc.stdout.fileno(), deadline)
        if msg.get("op") != "ready":
            raise RuntimeError(f"sandbox worker failed to start: {msg.get('error', msg)}")
        self.hardening = dict(msg.get("hardening") or {})
        while self.nxt is None:  # the first child, forked and hardened: start-up, not the first call
            self.recv_ctl(deadline)
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

    def send_ctl(self, msg: dict[str, Any], deadline: float) -> None:
        assert self.ctl is not None
        send_frame(self.ctl.fileno(), msg, b"", deadline)

    def recv_ctl(self, deadline: float) -> dict[str, Any]:
        """The worker's next message; a child offer (pipe ends attached) becomes ``self.nxt``."""
        assert self.ctl is not None
        fd = self.ctl.fileno()
        _wait(fd, False, deadline)
        marker, fds, _, _ = socket.recv_fds(self.ctl, 1, 2)
        for f in fds:
            os.set_inheritable(f, False)
        try:
            if not marker:
                raise WireError("connection closed")
            msg, _ = recv_frame(fd, deadline, max_header=1 << 16, max_payload=0)
        except BaseException:
            for f in fds:
                os.close(f)
            raise
        if marker == b"F":
            if len(fds) != 2 or msg.get("op") != "child" or not isinstance(msg.get("id"), int):
                for f in fds:
                    os.close(f)
                raise WireError("bad child offer from the worker")
            if self.nxt is not None:
                self.nxt.close()
            self.nxt = _ChildLink(msg["id"], fds[0], fds[1])
        elif fds:
            for f in fds:
                os.close(f)
            raise WireError("unexpected file descriptors from the worker")
        return msg

    def _child(self, deadline: float) -> _ChildLink:
        """The child for the next call: the current one while it may serve more calls, else the spare."""
        if self.cur is not None and self.cur.calls < self.config.calls_per_child:
            return self.cur
        if self.cur is not None:
            self._retire(deadline)
        while self.nxt is None:
            self.recv_ctl(deadline)
        self.cur, self.nxt = self.nxt, None
        self.send_ctl({"op": "take", "id": self.cur.id}, deadline)  # the worker forks the next spare
        return self.cur

    def _retire(self, deadline: float) -> None:
        link, self.cur = self.cur, None
        if link is not None:
            link.close()
            self.send_ctl({"op": "retire", "id": link.id}, deadline)

    def _ask(self, op: str, link: _ChildLink, deadline: float) -> dict[str, Any]:
        """Have the worker kill or reap ``link``'s child; returns its status message."""
        if self.cur is link:
            self.cur = None
        link.close()
        self.send_ctl({"op": op, "id": link.id}, deadline)
        while True:
            msg = self.recv_ctl(deadline)
            if msg.get("op") == "status" and msg.get("id") == link.id:
                return msg

    def call(self, code: str, im: Image.Image) -> tuple[dict[str, Any], Image.Image | None]:
        assert self.proc is not None
        t0 = time.monotonic()
        backstop = t0 + self.config.timeout_s + _BACKSTOP_S
        meta, nbytes = write_image(self.in_map, im)  # one memcpy straight into shared memory
        link = self._child(backstop)
        link.calls += 1
        deadline = min(time.monotonic() + self.config.timeout_s, backstop)
        try:
            # Straight to the child and back: the worker is not woken on the way.
            send_frame(
                link.req_w,
                {"code": code, "image": meta, "nbytes": nbytes},
                b"",
                deadline,
            )
            header, _ = recv_frame(
                link.res_r,
                deadline,
                max_header=self.config.max_stdout_chars * 8 + (8 << 20),
                max_payload=0,
            )
        except WireTimeout:
            self._ask("kill", link, backstop)  # raises WireTimeout if the worker does not answer
            return _error(
                "timeout",
                f"execution timed out after {self.config.timeout_s:g} s (the code must finish faster; "
                "avoid infinite loops and very slow per-pixel Python loops)",
            ), None
        except (WireClosed, BrokenPipeError):  # the child died: the worker reaps it and says why
            status = self._ask("reap", link, time.monotonic() + 2.0)
            return _error(str(status.get("error_kind") or "crash"), str(status.get("error") or "")), None
        except (WireError, OSError, ValueError, RecursionError) as exc:  # garbage on the pipe
            self._ask("kill", link, time.monotonic() + 2.0)
            return _error("crash", f"invalid reply from sandbox child: {type(exc).__name__}"), None
        image = None
        try:
            if header.get("ok"):
                n = header.get("nbytes")
                if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= self.out_bytes:
                    raise WireError("result size out of range")
                # One copy: the caller's image never aliases the buffer the next call reuses.
                image = read_image(self.out_map, header.get("image"), n)
        except (WireError, TypeError, ValueError) as exc:
            self._retire(backstop)
            return _error("crash", f"invalid result from sandbox child: {exc}"), None
        # Anything beyond an ordinary exception retires the child: its state is no longer trusted.
        if not (header.get("ok") or header.get("error_kind") in _REUSABLE_AFTER):
            self._retire(backstop)
        return header, image

    def close_shm(self) -> None:
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


class Sandbox:
    """Run model-written image code safely and fast.

    Two layers: the code is compiled with RestrictedPython and sees only curated facades of
    PIL/NumPy/OpenCV/math; it runs in a forked child of a warm worker process that is hardened at the OS
    level (empty network namespace, chroot into an empty directory, rlimits, uid ``nobody``,
    ``no_new_privs``, seccomp) and killed at the deadline.

    Example:
        >>> from PIL import Image
        >>> with Sandbox(SandboxConfig(workers=1)) as sb:
        ...     r = sb.run("result = image.rotate(90, expand=True)", [Image.new("RGB", (4, 2))])
        >>> r.ok, r.image.size, r.ops
        (True, (2, 4), ['rotate_90'])
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._pid = os.getpid()
        self._closed = False
        self._lock = threading.Lock()
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._all: list[_Worker] = []
        for _ in range(self.config.workers):
            w = _Worker(self.config)
            self._all.append(w)
            self._idle.put(w)

    # ------------------------------------------------------------------ public API

    def run(self, code: str, images: Sequence[ImageLike], image_index: int = 0) -> ExecResult:
        """Execute ``code`` on ``images[image_index]`` and return the outcome (never raises for bad code).

        Args:
            code: Python source that assigns a PIL image (or uint8 array) to ``result`` / ``output``.
            images: The conversation's images (PIL images, HxW[xC] uint8 arrays in RGB order, or paths,
                which are opened here, never by the sandboxed code).
            image_index: Which image the code sees as ``image`` / ``img``.

        Returns:
            An :class:`ExecResult`; on failure ``error``/``error_kind`` say what went wrong.

        Example:
            >>> from PIL import Image
            >>> with Sandbox(SandboxConfig(workers=1)) as sb:
            ...     sb.run("result = image.crop((0, 0, 2, 2))", [Image.new("L", (4, 4))]).crop_boxes
            [(0, 0, 2, 2)]
        """
        t0 = time.perf_counter()
        if self._closed:
            raise RuntimeError("Sandbox is closed; create a new Sandbox")
        if os.getpid() != self._pid:
            raise RuntimeError(
                "this Sandbox belongs to the process that created it; create a new Sandbox "
                "in each forked process"
            )
        if not isinstance(code, str):
            return self._fail("bad_input", f"code must be a string, got {type(code).__name__}", t0)
        if len(code) > self.config.max_code_chars:
            return self._fail(
                "code_too_long",
                f"code is {len(code)} characters; the limit is {self.config.max_code_chars}",
                t0,
            )
        try:
            im = self._prepare(images, image_index)
        except ValueError as exc:
            return self._fail("bad_input", str(exc), t0)
        worker = self._idle.get()
        try:
            header, image = self._call(worker, code, im)
        finally:
            self._idle.put(worker)
        return self._to_result(header, image, t0)

    async def arun(self, code: str, images: Sequence[ImageLike], image_index: int = 0) -> ExecResult:
        """Async :meth:`run`; many calls may be awaited concurrently (they queue for workers).

        Example:
            >>> import asyncio
            >>> from PIL import Image
            >>> with Sandbox(SandboxConfig(workers=1)) as sb:
            ...     asyncio.run(sb.arun("result = image", [Image.new("L", (3, 3))])).ok
            True
        """
        return await asyncio.to_thread(self.run, code, images, image_index)

    @property
    def hardening(self) -> dict[str, bool]:
        """What OS hardening worked on this machine (from the workers' start-up probe)."""
        for w in self._all:
            if w.ready and w.hardening:
                return dict(w.hardening)
        w = self._idle.get()
        try:
            w.wait_ready()
            return dict(w.hardening)
        finally:
            self._idle.put(w)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        return [w.proc.pid for w in self._all if w.proc is not None]

    def close(self) -> None:
        """Kill all workers. Idempotent."""
        if os.getpid() != self._pid:
            return  # a forked copy must not kill the parent's workers
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for w in self._all:
            try:
                if w.proc is not None and w.ctl is not None:
                    w.send_ctl({"op": "exit"}, time.monotonic() + 0.2)
            except (OSError, WireError):
                pass
            w.kill()
            w.close_shm()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ------------------------------------------------------------------ internals

    def _call(self, worker: _Worker, code: str, im: Image.Image) -> tuple[dict[str, Any], Image.Image | None]:
        for attempt in (0, 1):
            try:
                if worker.proc is None:
                    worker.start()
                worker.wait_ready()
            except (WireError, OSError, RuntimeError) as exc:
                worker.kill()
                if attempt == 1:
                    return {
                        "ok": False,
                        "error_kind": "crash",
                        "error": f"sandbox worker could not start: {exc}",
                    }, None
                continue
            try:
                return worker.call(code, im)
            except WireTimeout:
                self._replace(worker)
                return {
                    "ok": False,
                    "error_kind": "timeout",
                    "error": f"execution timed out after {self.config.timeout_s:g} s",
                }, None
            except (WireError, OSError, ValueError) as exc:
                self._replace(worker)
                return {"ok": False, "error_kind": "crash", "error": f"sandbox worker failed: {exc}"}, None
        raise AssertionError("unreachable")  # pragma: no cover

    def _replace(self, worker: _Worker) -> None:
        if self._closed:
            worker.kill()
            return
        worker.restart()

    def _prepare(self, images: Sequence[ImageLike], image_index: int) -> Image.Image:
        if isinstance(images, Image.Image | np.ndarray | str | Path):
            images = [images]
        if not isinstance(images, Sequence):
            raise ValueError(
                f"images must be a list of PIL images, arrays or paths, got {type(images).__name__}"
            )
        if isinstance(image_index, bool) or not isinstance(image_index, int | np.integer):
            raise ValueError(f"image_index must be an integer, got {type(image_index).__name__}")
        if not 0 <= image_index < len(images):
            raise ValueError(
                f"image_index {image_index} is out of range: there are {len(images)} image(s) "
                f"(valid: 0..{len(images) - 1})"
            )
        im = load_image(images[int(image_index)])
        if im.width * im.height > self.config.max_input_pixels:
            raise ValueError(
                f"input image has {im.width * im.height} pixels; the limit is {self.config.max_input_pixels}"
            )
        if im.width == 0 or im.height == 0:
            raise ValueError("input image is empty")
        return im

    def _fail(self, kind: str, msg: str, t0: float) -> ExecResult:
        return ExecResult(error=msg, error_kind=kind, duration_s=time.perf_counter() - t0)

    def _to_result(self, header: dict[str, Any], image: Image.Image | None, t0: float) -> ExecResult:
        trace = [
            TraceOp.from_dict(op) for op in header.get("trace") or [] if isinstance(op, dict) and "name" in op
        ]
        ts = header.get("to_source")
        to_source = tuple(float(v) for v in ts) if isinstance(ts, list) and len(ts) == 6 else None
        cs = header.get("child_s")
        run = cs.get("run") if isinstance(cs, dict) else None
        run_s = (
            float(run) if isinstance(run, int | float) and not isinstance(run, bool) and run >= 0 else None
        )
        if not header.get("ok") or image is None:
            kind = header.get("error_kind") or "crash"
            return ExecResult(
                stdout=str(header.get("stdout") or ""),
                error=str(header.get("error") or "unknown error"),
                error_kind=kind,
                duration_s=time.perf_counter() - t0,
                run_s=run_s,
                trace=trace,
            )
        return ExecResult(
            image=image,
            stdout=str(header.get("stdout") or ""),
            duration_s=time.perf_counter() - t0,
            run_s=run_s,
            trace=trace,
            to_source=to_source,  # type: ignore[arg-type]
        )


def load_image(obj: ImageLike) -> Image.Image:
    """Turn a caller-supplied image (PIL, array, path) into a PIL image with a transferable mode.

    Example:
        >>> import numpy as np
        >>> load_image(np.zeros((2, 3, 3), np.uint8)).size
        (3, 2)
    """
    if isinstance(obj, Image.Image):
        try:
            obj.load()
        except Exception as exc:  # noqa: BLE001 - truncated or broken files surface here
            raise ValueError(f"cannot read image: {exc}") from exc
        return normalize_mode(obj)
    if isinstance(obj, np.ndarray):
        arr = obj
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
            raise ValueError(f"image array must be HxW, HxWx3 or HxWx4, got shape {obj.shape}")
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8) * 255
        if arr.dtype != np.uint8:
            raise ValueError(f"image array must be uint8, got {arr.dtype}")
        return Image.fromarray(np.ascontiguousarray(arr))
    if isinstance(obj, str | Path):
        p = Path(obj)
        if not p.is_file():
            raise ValueError(f"image file not found: {p}")
        try:
            with Image.open(p) as im:
                im.load()
                return normalize_mode(im.copy())
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
            raise ValueError(f"cannot open image {p}: {exc}") from exc
    raise ValueError(
        f"unsupported image type {type(obj).__name__}; pass a PIL image, a uint8 array or a path"
    )
