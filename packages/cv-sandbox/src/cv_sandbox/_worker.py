"""The warm worker ("zygote"): imports the libraries once, then runs each request in a fresh hardened child.

Protocol on the worker's stdin/stdout (see :mod:`cv_sandbox._wire`): the caller sends an ``init`` frame with
the limits and the numbers of two shared-memory file descriptors (input and output pixels), the worker
answers ``ready`` with its hardening report, then each ``run`` frame (code + image header; the pixels are
already in the input region) is answered by exactly one result frame (the pixels are in the output region).

To keep fork and hardening off the critical path, the worker always holds one *spare* child that is
already forked, hardened and has pre-faulted its heap; a request goes to the spare, and a new spare is
forked right after the reply. The worker kills the child at the deadline and checks its result header
before anything reaches the caller; user code never shares a process with anything of another request.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import os
import resource
import signal
import sys
import tempfile
import time
from typing import Any

SIGNAL_NAMES = {getattr(signal, n): n for n in dir(signal) if n.startswith("SIG") and not n.startswith("SIG_")}
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


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
    __slots__ = ("pid", "req_w", "res_r")

    def __init__(self, pid: int, req_w: int, res_r: int) -> None:
        self.pid = pid
        self.req_w = req_w
        self.res_r = res_r


class Zygote:
    def __init__(self, chan_in: int, chan_out: int, devnull: int, cfg: dict[str, Any]) -> None:
        from PIL import Image

        from . import _harden
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
        self.in_fd, self.out_fd = int(cfg["in_fd"]), int(cfg["out_fd"])
        self.in_map = mmap.mmap(self.in_fd, int(cfg["in_bytes"]))
        self.out_map = mmap.mmap(self.out_fd, int(cfg["out_bytes"]))
        Image.core.set_blocks_max(64)  # freed image blocks stay cached in the child's arena
        self.executor = Executor(self.limits)
        self.harden = bool(cfg.get("harden", True))
        self.status: dict[str, bool] = {}
        self.seccomp = _harden.seccomp_program() if self.harden else None
        self.root_fd: int | None = None
        self.last_bytes = 1 << 20
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

    def _warm_up(self) -> None:
        """Run representative code once so lazy imports and caches happen before any fork."""
        from PIL import Image

        from ._execute import Limits

        im = Image.new("RGB", (64, 48), (120, 80, 40))
        warm = (
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
        configured, self.executor.limits = self.executor.limits, Limits()  # warm-up ignores user limits
        try:
            for code in (warm, "result = image.convert('RGBA').convert('1').convert('RGB')"):
                header, _ = self.executor.run(code, im)
                if not header.get("ok"):
                    raise RuntimeError(f"sandbox warm-up failed: {header.get('error')}")
        finally:
            self.executor.limits = configured

    # ------------------------------------------------------------------ children

    def _fork_child(self) -> _Child:
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                os.close(req_w)
                os.close(res_r)
                self._child_main(req_r, res_w)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(res_w)
        return _Child(pid, req_w, res_r)

    def _child_main(self, req_r: int, res_w: int) -> None:
        from PIL import Image

        from . import _harden
        from ._wire import WireError, check_image, recv_frame, send_frame

        try:
            status: dict[str, bool] = {}
            if self.harden:
                cpu_used = resource.getrusage(resource.RUSAGE_SELF)
                cpu_s = int(cpu_used.ru_utime + cpu_used.ru_stime) + max(1, math.ceil(self.timeout_s) + 1)
                status = _harden.harden_child(
                    res_w, self.devnull, self.root_fd, memory_mb=self.memory_mb, cpu_s=cpu_s,
                    seccomp=self.seccomp, drop_uid=True, keep_fds=(req_r,),
                )
            self._pretouch()
            req, _ = recv_frame(req_r)
        except (WireError, OSError):
            return  # the worker went away or discarded this spare
        try:
            mode, w, h = check_image(req.get("image"), int(req.get("nbytes", -1)))
            image = Image.frombytes(mode, (w, h), memoryview(self.in_map)[: int(req["nbytes"])])
            header, data = self.executor.run(str(req.get("code", "")), image)
            del image
            if header.get("ok"):
                if len(data) > len(self.out_map):
                    header, data = _reply_error("output_too_large", "result does not fit the output buffer"), b""
                else:
                    self.out_map[: len(data)] = data
                    header["nbytes"] = len(data)
            header["hardening"] = status
            send_frame(res_w, header)
        except BaseException as exc:  # noqa: BLE001 - report and die; never return into the zygote loop
            try:
                kind = "memory" if isinstance(exc, MemoryError) else "crash"
                send_frame(res_w, _reply_error(kind, f"sandbox child error: {type(exc).__name__}: {exc}"))
            except BaseException:  # noqa: BLE001
                pass

    def _pretouch(self) -> None:
        """Fault in heap pages (and PIL arena blocks) sized for the last request, before it is needed."""
        from PIL import Image

        n = min(max(4 * self.last_bytes, 8 << 20), 96 << 20)
        try:
            buf = bytearray(n)
            del buf
            side = int(math.sqrt(self.last_bytes / 4)) + 1
            ims = [Image.new("RGBA", (side, side)) for _ in range(2)]
            del ims
        except MemoryError:
            pass

    def _discard(self, child: _Child) -> None:
        for fd in (child.req_w, child.res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(child.pid, 0)

    # ------------------------------------------------------------------ serving

    def probe(self) -> dict[str, bool]:
        """Run one request through the full path and report what hardening worked."""
        from PIL import Image

        im = Image.new("RGB", (8, 8))
        data = im.tobytes()
        self.in_map[: len(data)] = data
        header = self._run({"code": "result = image", "image": {"mode": "RGB", "w": 8, "h": 8}, "nbytes": len(data)}, 10.0)
        st = dict(self.status)
        st.update(header.get("hardening") or {})
        st["probe_ok"] = bool(header.get("ok"))
        return st

    def serve(self) -> None:
        from ._wire import WireError, recv_frame, send_frame

        self.spare = self._fork_child()
        while True:
            try:
                req, _ = recv_frame(self.chan_in)
            except (WireError, OSError):
                return  # caller went away
            if req.get("op") == "exit":
                return
            try:
                header = self._run(req, self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - keep serving; the caller gets a crash result
                header = _reply_error("crash", f"sandbox worker error: {type(exc).__name__}: {exc}")
            try:
                send_frame(self.chan_out, header)
            except OSError:
                return
            if self.spare is None:
                self.spare = self._fork_child()

    def _run(self, req: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        from ._wire import WireError, WireTimeout, check_image, recv_frame, send_frame

        if not isinstance(req.get("code"), str):
            return _reply_error("bad_input", "code must be a string")
        nbytes = int(req.get("nbytes", -1))
        if not 0 < nbytes <= len(self.in_map):
            return _reply_error("bad_input", "input image does not fit the input buffer")
        self.last_bytes = nbytes
        child = self.spare if self.spare is not None else self._fork_child()
        self.spare = None
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        header: dict[str, Any] | None = None
        failure: tuple[str, str] | None = None
        try:
            send_frame(child.req_w, {"code": req["code"], "image": req.get("image"), "nbytes": nbytes}, b"", deadline)
            header, _ = recv_frame(child.res_r, deadline, max_header=self.limits.max_stdout_chars * 8 + (8 << 20),
                                   max_payload=0)
        except WireTimeout:
            failure = ("timeout", f"execution timed out after {timeout_s:g} s (the code must finish faster; "
                       "avoid infinite loops and very slow per-pixel Python loops)")
        except (WireError, ValueError, OSError):
            failure = ("crash", "")
        for fd in (child.req_w, child.res_r):
            os.close(fd)
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(child.pid, 0)
        if failure is not None:
            kind, msg = failure
            if kind == "crash":
                if os.WIFSIGNALED(status):
                    sig = os.WTERMSIG(status)
                    if sig == signal.SIGXCPU:
                        kind, msg = "timeout", f"CPU time limit exceeded ({math.ceil(timeout_s) + 1} s)"
                    elif sig == signal.SIGKILL:
                        kind, msg = "memory", "the code was killed (most likely it exceeded the memory limit)"
                    else:
                        msg = f"the code crashed the interpreter ({SIGNAL_NAMES.get(sig, sig)})"
                else:
                    msg = f"the code ended the process without a result (exit status {os.WEXITSTATUS(status)})"
            return _reply_error(kind, msg)
        assert header is not None
        if header.get("ok"):
            try:  # size check before anything leaves the worker
                n = int(header.get("nbytes", -1))
                if not 0 < n <= len(self.out_map):
                    raise WireError("result size out of range")
                check_image(header.get("image"), n)
            except (WireError, TypeError, ValueError) as exc:
                return _reply_error("crash", f"invalid result from sandbox child: {exc}")
        header["exec_s"] = time.monotonic() - t0
        return header


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
