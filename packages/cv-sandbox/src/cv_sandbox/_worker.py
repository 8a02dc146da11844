"""The warm worker ("zygote"): imports the libraries once, then runs each request in a fresh hardened child.

Start-up on the worker's stdin/stdout (see :mod:`cv_sandbox._wire`): the caller sends an ``init`` frame with
the limits, the numbers of two shared-memory file descriptors (input and output pixels) and of a control
socket; the worker answers ``ready`` with its hardening report (from one probe request run end to end).

Requests then go *straight* from the caller to a child and back, without waking the worker: the worker
forks each child (hardened and pre-warmed before it can see any code) with a private request pipe and a
private reply pipe, and passes the caller's ends over the control socket (``SCM_RIGHTS``), closing its own.
Each ``run`` frame (code + image header; the pixels are already in the input region) is answered by exactly
one result frame (the pixels are in the output region), which the caller size-checks. Children see the
input region through a read-only mapping and hand user code a zero-copy, copy-on-write view of it
(:mod:`cv_sandbox._shared_image`); the result goes back with one ``memcpy`` (:mod:`cv_sandbox._wire`).

The worker supervises: it always keeps one *spare* child forked ahead (offered to the caller as soon as the
previous one is taken into use, so fork and hardening stay off the critical path), and kills, reaps and
classifies children when the caller says so (at the deadline, after a child's pipe closed, or when the
caller retires one). Pipes are never shared between children, so nothing one child writes can reach a call
served by another; user code never shares a process with anything of another child's requests.
"""

from __future__ import annotations

import ctypes
import gc
import math
import mmap
import os
import resource
import signal
import sys
import tempfile
import time
from typing import Any

SIGNAL_NAMES = {
    getattr(signal, n): n for n in dir(signal) if n.startswith("SIG") and not n.startswith("SIG_")
}
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


_PREWARM_CODE = (
    "a = np.asarray(image)\n"
    "b = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)\n"
    "b = cv2.GaussianBlur(b, (3, 3), 0)\n"
    "_, b = cv2.threshold(b, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)\n"
    "b = cv2.equalizeHist(cv2.resize(b, (32, 24)))\n"
    "c = cv2.createCLAHE(2.0, (8, 8)).apply(b)\n"
    "im = image.rotate(90, expand=True).transpose(Image.FLIP_LEFT_RIGHT).crop((1, 1, 20, 20))\n"
    "im = ImageEnhance.Contrast(im).enhance(1.5)\n"
    "im = ImageEnhance.Sharpness(ImageEnhance.Brightness(im).enhance(1.1)).enhance(2)\n"
    "im = im.filter(ImageFilter.SHARPEN).filter(ImageFilter.GaussianBlur(1)).filter(ImageFilter.MedianFilter(3))\n"
    "im = ImageOps.autocontrast(ImageOps.equalize(ImageOps.grayscale(im)))\n"
    "im = ImageOps.invert(ImageOps.mirror(ImageOps.flip(im))).resize((40, 40), Image.LANCZOS)\n"
    "d = ImageDraw.Draw(im)\n"
    "d.rectangle((1, 1, 5, 5), outline=255)\n"
    "d.text((2, 2), 'ok', fill=128)\n"
    "e = np.rot90(np.flip(a[1:20, 2:30], 1))\n"
    "f = Image.fromarray(np.clip(e.astype(np.float32) * 1.2, 0, 255).astype(np.uint8))\n"
    "g = cv2.rotate(cv2.flip(np.array(f), 0), cv2.ROTATE_90_CLOCKWISE)\n"
    "print(np.mean(g), math.pi)\n"
    "result = Image.fromarray(g).convert('L').point(lambda p: 255 if p > 128 else 0)\n"
)


def _reply_error(kind: str, msg: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    h = {"ok": False, "error": msg, "error_kind": kind, "stdout": "", "trace": [], "to_source": None}
    if extra:
        h.update(extra)
    return h


def _tune_malloc() -> None:
    """Keep big buffers on the heap and freed memory in it, so a child that pre-faults its heap once
    serves image-sized allocations without page faults (as a long-running process would)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass


class _Child:
    __slots__ = ("pid", "req_w", "res_r", "calls", "id")

    def __init__(self, pid: int, req_w: int, res_r: int) -> None:
        self.calls = 0
        self.id = 0
        self.pid = pid
        self.req_w = req_w
        self.res_r = res_r


class Zygote:
    def __init__(self, chan_in: int, chan_out: int, devnull: int, cfg: dict[str, Any]) -> None:
        from PIL import Image

        from . import _harden, _shared_image  # noqa: F401 - children cannot import after hardening
        from ._execute import Executor, Limits

        _tune_malloc()
        self.chan_in = chan_in
        self.chan_out = chan_out
        self.devnull = devnull
        self.timeout_s = float(cfg["timeout_s"])
        self.memory_mb = int(cfg["memory_mb"])
        self.limits = Limits(
            max_code_chars=int(cfg["max_code_chars"]),
            max_output_pixels=int(cfg["max_output_pixels"]),
            max_stdout_chars=int(cfg["max_stdout_chars"]),
            max_aspect_ratio=float(cfg["max_aspect_ratio"]),
        )
        self.calls_per_child = max(1, int(cfg.get("calls_per_child", 1)))
        self.in_fd, self.out_fd = int(cfg["in_fd"]), int(cfg["out_fd"])
        self.in_map = mmap.mmap(self.in_fd, int(cfg["in_bytes"]))
        # Children read input pixels through a read-only mapping (their input images are views of it).
        self.in_view = mmap.mmap(self.in_fd, int(cfg["in_bytes"]), prot=mmap.PROT_READ)
        self.out_map = mmap.mmap(self.out_fd, int(cfg["out_bytes"]))
        Image.core.set_blocks_max(64)  # freed image blocks stay cached in the child's arena
        self.executor = Executor(self.limits)
        self.harden = bool(cfg.get("harden", True))
        self.status: dict[str, bool] = {}
        self.seccomp = _harden.seccomp_program() if self.harden else None
        self.root_fd: int | None = None
        self._warm_up()
        if self.harden:
            self.status["netns"] = _harden.unshare_network()
            if os.getuid() == 0:
                d = tempfile.mkdtemp(prefix="cvs-root-")
                os.chmod(d, 0o555)
                self.root_fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
                os.rmdir(d)  # children chroot into a deleted, empty directory
        os.environ.clear()
        self.spare: _Child | None = None
        self.active: _Child | None = None
        self.retired: list[_Child] = []
        self.ctl_fd = int(cfg.get("ctl_fd", -1))
        self.next_id = 0
        # Children must not walk (and so copy-on-write) every object the zygote holds.
        gc.collect()
        gc.freeze()

    def _warm_up(self) -> None:
        """Run representative code once so lazy imports and caches happen before any fork."""
        from PIL import Image

        from ._execute import Limits

        im = Image.new("RGB", (64, 48), (120, 80, 40))
        warm = _PREWARM_CODE
        self._preload()
        configured, self.executor.limits = self.executor.limits, Limits()  # warm-up ignores user limits
        try:
            for code in (warm, "result = image.convert('RGBA').convert('1').convert('RGB')"):
                header, _ = self.executor.run(code, im)
                if not header.get("ok"):
                    raise RuntimeError(f"sandbox warm-up failed: {header.get('error')}")
        finally:
            self.executor.limits = configured

    def _preload(self) -> None:
        """Import everything library code may import lazily: children cannot open files any more.

        The list comes from running the facades' functions on tiny inputs and recording which modules
        they import on first use.
        """
        import importlib

        import numpy as np
        from PIL import Image

        for name in (
            "numpy.ma",
            "numpy.linalg",
            "numpy.fft",
            "numpy.random",
            "numpy.polynomial",
            "numpy.lib.stride_tricks",
            "PIL.ImageFont",
            "PIL.ImageColor",
            "PIL.ImagePalette",
            "PIL.ImageChops",
            "PIL.ImageStat",
            "PIL.ImageMath",
            "PIL.ImageMode",
            "PIL.ImageFile",
            "PIL.PngImagePlugin",
            "PIL.JpegImagePlugin",
            "PIL.TiffImagePlugin",
            "PIL.ExifTags",
            "PIL.TiffTags",
        ):
            try:
                importlib.import_module(name)
            except ImportError:
                pass
        _ = (np, Image)

    # ------------------------------------------------------------------ children

    def _fork_child(self) -> _Child:
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                os.close(req_w)
                os.close(res_r)
                for other in (self.active, self.spare):
                    if other is not None:
                        for fd in (other.req_w, other.res_r):
                            if fd >= 0:
                                os.close(fd)
                self._child_main(req_r, res_w)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(res_w)
        return _Child(pid, req_w, res_r)

    def _child_main(self, req_r: int, res_w: int) -> None:
        from . import _harden
        from ._wire import WireError, recv_frame, send_frame

        try:
            status: dict[str, bool] = {}
            if self.harden:
                used = resource.getrusage(resource.RUSAGE_SELF)
                # A backstop only (the worker enforces each call's wall-clock deadline); a reused child
                # may spend up to its whole budget of calls.
                per_call = max(1, math.ceil(self.timeout_s) + 1)
                cpu_s = int(used.ru_utime + used.ru_stime) + per_call * self.calls_per_child
                status = _harden.harden_child(
                    res_w,
                    self.devnull,
                    self.root_fd,
                    memory_mb=self.memory_mb,
                    cpu_s=cpu_s,
                    seccomp=self.seccomp,
                    drop_uid=True,
                    keep_fds=(req_r,),
                )
            gc.disable()  # short-lived; cycles die with the process, the address-space cap bounds them
            self._prewarm()
        except (WireError, OSError):
            return
        for _ in range(self.calls_per_child):
            try:
                req, _ = recv_frame(req_r)
            except (WireError, OSError):
                return  # the worker went away or discarded this child
            try:
                header = self._child_call(req)
                header["hardening"] = status
                send_frame(res_w, header)
                gc.collect(0)  # after the reply: free this call's cycles (only young objects are walked)
            except BaseException as exc:  # noqa: BLE001 - report and die; never return into the zygote loop
                try:
                    kind = "memory" if isinstance(exc, MemoryError) else "crash"
                    send_frame(res_w, _reply_error(kind, f"sandbox child error: {type(exc).__name__}: {exc}"))
                except BaseException:  # noqa: BLE001
                    pass
                return

    def _child_call(self, req: dict[str, Any]) -> dict[str, Any]:
        from ._shared_image import map_image
        from ._wire import WireError, write_image

        t0 = time.monotonic()
        nbytes = int(req.get("nbytes", -1))
        if not 0 < nbytes <= len(self.in_view):
            return _reply_error("bad_input", "input image does not fit the input buffer")
        image = map_image(self.in_view, req.get("image"), nbytes)  # zero-copy, copy-on-write
        t1 = time.monotonic()
        header, out = self.executor.run(str(req.get("code", "")), image)
        t2 = time.monotonic()
        del image
        if header.get("ok") and out is not None:
            try:
                header["image"], header["nbytes"] = write_image(self.out_map, out)
            except WireError:
                return _reply_error("output_too_large", "result does not fit the output buffer")
            except MemoryError:
                return _reply_error("memory", "memory limit exceeded while returning `result`")
        del out
        header["child_s"] = {
            "received": t0,
            "decode": t1 - t0,
            "run": t2 - t1,
            "copy_out": time.monotonic() - t2,
        }
        return header

    def _prewarm(self) -> None:
        """Run a small representative snippet before the request arrives: the first run in a fresh fork
        pays copy-on-write faults on every interpreter object it touches; this moves that cost off the
        critical path. (Pre-faulting image-sized buffers too was measured to cost more than it saves.)"""
        from PIL import Image

        from ._shared_image import map_image
        from ._wire import write_image

        try:
            # Private scratch memory: the shared regions belong to the call in flight.
            scratch = mmap.mmap(-1, 32 * 24 * 4)
            meta, n = write_image(scratch, Image.new("RGB", (32, 24), (90, 60, 30)))
            _, out = self.executor.run(_PREWARM_CODE, map_image(scratch, meta, n))
            if out is not None:
                write_image(scratch, out)
        except Exception:  # noqa: BLE001 - pre-warming is an optimisation only
            pass

    def _retire(self, child: _Child) -> None:
        """Kill now; reap after the reply has gone out (freeing a big address space takes a while)."""
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.retired.append(child)

    def _reap_retired(self) -> None:
        while self.retired:
            self._discard(self.retired.pop())

    def _discard(self, child: _Child) -> int:
        for fd in (child.req_w, child.res_r):
            if fd < 0:
                continue
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return os.waitpid(child.pid, 0)[1]

    # ------------------------------------------------------------------ serving

    def probe(self) -> dict[str, bool]:
        """Run one request through the full path and report what hardening worked."""
        from PIL import Image

        from ._wire import write_image

        meta, nbytes = write_image(self.in_map, Image.new("RGB", (8, 8)))
        header = self._run({"code": "result = image", "image": meta, "nbytes": nbytes}, 10.0, fork_next=False)
        self._reap_retired()
        st = dict(self.status)
        st.update(header.get("hardening") or {})
        st["probe_ok"] = bool(header.get("ok"))
        return st

    def serve(self) -> None:
        """Supervise children that talk to the caller directly.

        The caller gets each child's request/reply pipe ends over the control socket (``SCM_RIGHTS``) and
        exchanges frames with the child without this process in between; the worker keeps one spare child
        forked, hardened and pre-warmed ahead, and kills, reaps and classifies children on the caller's
        word (``take``: a new spare is wanted; ``retire``: done with it; ``kill``: its deadline passed;
        ``reap``: its pipe closed, report why). Every child's pipes are its own, so nothing a child wrote
        can reach a later call of another child.
        """
        import socket

        from ._wire import WireError, recv_frame

        if self.active is not None:  # the probe's child
            self._discard(self.active)
            self.active = None
        self._reap_retired()
        if self.ctl_fd < 0:
            raise RuntimeError("no control socket")
        self.ctl = socket.socket(fileno=self.ctl_fd)
        children: dict[int, _Child] = {}
        self._offer(children)
        while True:
            try:
                req, _ = recv_frame(self.ctl_fd)
            except (WireError, OSError, ValueError, RecursionError):
                return  # caller went away
            op = req.get("op")
            if op == "exit":
                return
            cid = req.get("id")
            child = (
                children.pop(cid, None) if op in ("retire", "kill", "reap") and isinstance(cid, int) else None
            )
            try:
                if op == "take":
                    if req.get("id") == self.next_id:
                        self._offer(children)
                elif op == "retire" and child is not None:
                    self._retire(child)
                elif op == "kill":
                    if child is not None:
                        self._retire(child)  # killed now, reaped after the reply
                    self._reply({"op": "status", "id": req.get("id"), "error_kind": "timeout"})
                elif op == "reap":
                    kind, msg = ("crash", "the sandbox child is gone")
                    if child is not None:
                        kind, msg = _classify(self._discard(child))
                    self._reply({"op": "status", "id": req.get("id"), "error_kind": kind, "error": msg})
            except OSError:
                return
            self._reap_retired()

    def _offer(self, children: dict[int, _Child]) -> None:
        """Fork the next child and hand its pipe ends to the caller (closing ours)."""
        import socket

        child = self._fork_child()
        self.next_id += 1
        child.id = self.next_id
        children[child.id] = child
        try:
            socket.send_fds(self.ctl, [b"F"], [child.req_w, child.res_r])
        finally:
            for fd in (child.req_w, child.res_r):
                os.close(fd)
            child.req_w = child.res_r = -1
        from ._wire import send_frame

        send_frame(self.ctl_fd, {"op": "child", "id": child.id})

    def _reply(self, msg: dict[str, Any]) -> None:
        from ._wire import send_frame

        self.ctl.sendall(b"M")
        send_frame(self.ctl_fd, msg)

    def _run(self, req: dict[str, Any], timeout_s: float, fork_next: bool = True) -> dict[str, Any]:
        from ._wire import WireError, WireTimeout, check_image, recv_frame, send_frame

        if not isinstance(req.get("code"), str):
            return _reply_error("bad_input", "code must be a string")
        nbytes = int(req.get("nbytes", -1))
        if not 0 < nbytes <= len(self.in_map):
            return _reply_error("bad_input", "input image does not fit the input buffer")
        if self.active is not None and self.active.calls < self.calls_per_child:
            child = self.active
        else:
            if self.active is not None:
                self._discard(self.active)
            child = self.spare if self.spare is not None else self._fork_child()
            self.spare = None
        self.active = None
        child.calls += 1
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        header: dict[str, Any] | None = None
        failure: tuple[str, str] | None = None
        try:
            send_frame(
                child.req_w,
                {"code": req["code"], "image": req.get("image"), "nbytes": nbytes},
                b"",
                deadline,
            )
            if fork_next and self.spare is None:
                # The next child forks and pre-warms on the other core while this one runs.
                self.spare = self._fork_child()
            header, _ = recv_frame(
                child.res_r, deadline, max_header=self.limits.max_stdout_chars * 8 + (8 << 20), max_payload=0
            )
        except WireTimeout:
            failure = (
                "timeout",
                f"execution timed out after {timeout_s:g} s (the code must finish faster; "
                "avoid infinite loops and very slow per-pixel Python loops)",
            )
        except (WireError, ValueError, OSError):
            failure = ("crash", "")
        if failure is not None:
            kind, msg = failure
            if kind == "timeout":
                self._retire(child)  # killed now, reaped after the reply
                return _reply_error(kind, msg)
            kind, msg = _classify(self._discard(child))
            return _reply_error(kind, msg)
        assert header is not None
        if header.get("ok"):
            try:  # size check before anything leaves the worker
                n = int(header.get("nbytes", -1))
                if not 0 < n <= len(self.out_map):
                    raise WireError("result size out of range")
                check_image(header.get("image"), n)
            except (WireError, TypeError, ValueError) as exc:
                self._retire(child)
                return _reply_error("crash", f"invalid result from sandbox child: {exc}")
        # Anything beyond an ordinary exception retires the child: its state is no longer trusted.
        if header.get("ok") or header.get("error_kind") in _REUSABLE_AFTER:
            self.active = child
        else:
            self._retire(child)
        header["exec_s"] = time.monotonic() - t0
        cs = header.get("child_s")
        if isinstance(cs, dict) and isinstance(cs.get("received"), float):
            cs["wake"] = cs.pop("received") - t0
        return header


def _classify(status: int) -> tuple[str, str]:
    """``(error_kind, error)`` for a child that ended without a reply, from its wait status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "timeout", "CPU time limit exceeded"
        if sig == signal.SIGKILL:
            return "memory", "the code was killed (most likely it exceeded the memory limit)"
        return "crash", f"the code crashed the interpreter ({SIGNAL_NAMES.get(sig, sig)})"
    return "crash", f"the code ended the process without a result (exit status {os.WEXITSTATUS(status)})"


_REUSABLE_AFTER = frozenset(
    {"syntax", "exception", "bad_result", "empty_result", "output_too_large", "code_too_long"}
)


def main() -> None:
    from ._wire import recv_frame, send_frame

    chan_in = os.dup(0)
    chan_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    if os.environ.get("CV_SANDBOX_DEBUG") != "1":
        os.dup2(devnull, 1)
    else:
        os.dup2(2, 1)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    init, _ = recv_frame(chan_in)
    try:
        zyg = Zygote(chan_in, chan_out, devnull, init["config"])
        status = zyg.probe()
    except Exception as exc:  # noqa: BLE001 - tell the caller why the worker cannot start
        send_frame(chan_out, {"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
        sys.exit(1)
    send_frame(chan_out, {"op": "ready", "hardening": status, "pid": os.getpid()})
    zyg.serve()


if __name__ == "__main__":
    main()
