"""The child side: the warm worker ("zygote") and the hardened children it forks to run user code.

The worker imports PIL, NumPy and OpenCV once, then forks each child (hardened and pre-warmed before it can
see any code) with a private request pipe and a private reply pipe, and passes the caller's ends over the
control socket, closing its own: requests go *straight* from the caller to a child and back, without
waking the worker. Every message is defined in :mod:`cv_sandbox._exchange`; a child answers requests with
its :func:`~cv_sandbox._exchange.serve_calls` loop. Children see the input region through a read-only
mapping and hand user code a zero-copy, copy-on-write view of it (:mod:`cv_sandbox._shared_image`); the
result goes back with one ``memcpy`` (:mod:`cv_sandbox._wire`).

The worker supervises: it keeps :data:`SPARES` children forked, hardened, pre-warmed and pre-faulted ahead
(offered to the caller at once, and replaced as each is taken into use, so fork and hardening stay off the
critical path), and kills, reaps and classifies children when the caller says so (at the deadline, after a
child's pipe closed, or when the caller is done with one). It reports each child's end (``gone``) as soon
as it has reaped it: the caller writes the next call's pixels into the shared regions only once every child
that ran earlier code is gone. Pipes are never shared between children, so nothing one child writes can
reach a call served by another; by default each child serves one call and exits, so user code never shares
a process with anything of another call.

All of that supervision is background work and runs under ``SCHED_BATCH`` (the same share of the CPU, but
its wake-ups never preempt a running task): a spare switches to the normal policy once it is ready for its
call, and back to ``SCHED_BATCH`` once it has answered, so neither forking the next spare nor tearing down
the last child's address space delays the caller or the next call.
"""

from __future__ import annotations

import ctypes
import gc
import math
import mmap
import os
import resource
import select
import signal
import sys
import time
from typing import Any

from . import _harden
from ._exchange import (
    call_child,
    error_reply,
    offer_child,
    read_control,
    read_init,
    send_failed,
    send_gone,
    send_ready,
    send_status,
    serve_calls,
)
from ._wire import WireError, check_image, write_image

SIGNAL_NAMES = {
    getattr(signal, n): n for n in dir(signal) if n.startswith("SIG") and not n.startswith("SIG_")
}
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Deadline of the start-up probe (one trivial call through a freshly forked child).
_PROBE_TIMEOUT_S = 10.0
#: Children kept forked and hardened ahead of demand (two absorb back-to-back calls).
SPARES = 2
#: Heap each spare maps ahead, so the call's image buffers need no page faults (16 MiB: the buffers of a
#: few operations on a 1 MP image). Backed by transparent huge pages where the kernel allows (a handful of
#: faults instead of 4096).
PREFAULT_BYTES = 16 << 20
#: How much of its slot's shared regions each spare maps into its page tables ahead (a fork inherits none
#: of a shared mapping's page-table entries; write-faulting them in during the call costs ~1-2 us per 4 KiB
#: page, mapping them ahead ~0.3 us). 4 MiB: a 1 MP image each way; a bigger result's tail is mapped in
#: one call before it is written.
POPULATE_BYTES = 4 << 20
_MADV_HUGEPAGE = 14
_MADV_POPULATE_READ = 22  # Linux >= 5.14; not in Python 3.11's mmap module
_MADV_POPULATE_WRITE = 23
_HUGE = 2 << 20
#: Compiled in each spare (the zygote's compile cache never holds user code, so a call's compile would
#: otherwise copy the compiler's pages on write): what typical calls contain.
_COMPILE_WARM = (
    "w, h = image.size\n"
    "a = np.asarray(image)[h // 4 : h // 2, ::-1]\n"
    "result = Image.fromarray(a).rotate(90, expand=True).crop((0, 0, w, h))\n"
)

#: What a spare does ahead of its call, most useful first (see :meth:`Zygote._prewarm`).
_WARM_STEPS = ("_prefault_heap", "_populate", "_run_warm", "_compile_warm")

#: Run in each spare: the path every call takes (the executor, the facades and tracer of all three
#: libraries, the result's conversion) with a few common operations. Measured on the benchmark's op mix:
#: ~30 page faults left in the call (600 without it) for 2 ms; running all of :data:`_PREWARM_CODE` leaves
#: ~10 for 5.5 ms.
_SPARE_WARM_CODE = (
    "a = np.asarray(image)\n"
    "result = Image.fromarray(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)).rotate(90, expand=True).crop((1, 1, 9, 9))\n"
)

#: Run once in the worker before it forks anything: every lazy import and first-use cache of the libraries.
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


def _tune_malloc() -> None:
    """Keep big buffers on the heap and freed memory in it, so a child that pre-faults its heap once
    serves image-sized allocations without page faults (as a long-running process would)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass


class _Slot:
    """The worker's mappings of one pair of pixel regions (see :data:`cv_sandbox._pool.SLOTS`)."""

    __slots__ = ("in_fd", "out_fd", "in_view", "out_map")

    def __init__(self, in_fd: int, out_fd: int, in_bytes: int, out_bytes: int) -> None:
        self.in_fd, self.out_fd = in_fd, out_fd
        # Children read input pixels through a read-only mapping of a read-only open (their input images
        # are views of it): not even mprotect can make it writable.
        try:
            ro = os.open(f"/proc/self/fd/{in_fd}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            ro = os.dup(in_fd)
        try:
            self.in_view = mmap.mmap(ro, in_bytes, prot=mmap.PROT_READ)
        finally:
            os.close(ro)
        self.out_map = mmap.mmap(out_fd, out_bytes)

    def unmap(self) -> None:
        self.in_view.close()
        self.out_map.close()


class _Child:
    """A forked child as the worker knows it (its pipe ends are closed once offered to the caller)."""

    __slots__ = ("id", "pid", "req_w", "res_r", "status", "slot")

    def __init__(self, child_id: int, pid: int, req_w: int, res_r: int, slot: int) -> None:
        self.id = child_id
        self.pid = pid
        self.req_w = req_w
        self.res_r = res_r
        self.slot = slot
        self.status: int | None = None  # wait status once reaped


class Zygote:
    """The worker process: warm libraries, a hardening recipe, and the children forked from them."""

    def __init__(
        self, chan_in: int, chan_out: int, devnull: int, cfg: dict[str, Any], worker_status: dict[str, bool]
    ) -> None:
        from PIL import Image

        from . import _shared_image  # noqa: F401 - children cannot import after hardening
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
        in_bytes, out_bytes = int(cfg["in_bytes"]), int(cfg["out_bytes"])
        self.slots = [
            _Slot(int(i), int(o), in_bytes, out_bytes)
            for i, o in zip(cfg["in_fds"], cfg["out_fds"], strict=True)
        ]
        if not self.slots:
            raise ValueError("no pixel slots")
        self.next_slot = 0
        # This process's views of slot 0 (its start-up probe); a child replaces them with its own slot's.
        self.in_map = mmap.mmap(self.slots[0].in_fd, in_bytes)
        self.in_view, self.out_map = self.slots[0].in_view, self.slots[0].out_map
        Image.core.set_blocks_max(64)  # freed image blocks stay cached in the child's arena
        self.executor = Executor(self.limits)
        self.harden = bool(cfg.get("harden", True))
        self.status: dict[str, bool] = dict(worker_status)
        # Prepared once here; each child only installs them.
        self.seccomp = _harden.seccomp_program() if self.harden else None
        self.landlock_fd = _harden.landlock_ruleset() if self.harden else None
        self.root_fd: int | None = None
        self._warm_up()
        if self.harden and (os.getuid() == 0 or self.status.get("userns")):
            # Not tempfile: it imports shutil, bz2 and lzma (more mappings for every fork to copy).
            d = os.path.join("/tmp", "cvs-root-" + os.urandom(8).hex())
            os.mkdir(d, 0o700)
            os.chmod(d, 0o555)
            self.root_fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            os.rmdir(d)  # children chroot into a deleted, empty directory
        os.environ.clear()
        self.children: dict[int, _Child] = {}  # forked and not yet reaped, by id
        self.retired: list[_Child] = []  # killed (or done), to be reaped
        self.ctl_fd = int(cfg.get("ctl_fd", -1))
        self.next_id = 0
        # Children must not walk (and so copy-on-write) every object the zygote holds.
        gc.collect()
        gc.freeze()
        # Forking, hardening and warming spares, and reaping children, is background work: it must never
        # preempt a call (the caller copying pixels or a result, a child starting its call). Children switch
        # to the normal policy once they are ready for their call (see _child_main).
        _set_policy(BACKGROUND)

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

    def _fork_child(self, slot: int | None = None) -> _Child:
        if slot is None:  # in turn, so consecutive calls use different slots
            slot, self.next_slot = self.next_slot, (self.next_slot + 1) % len(self.slots)
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                # Dies with the worker (even outside a PID namespace, and out of its process group).
                _harden.prctl(_harden.PR_SET_PDEATHSIG, signal.SIGKILL)
                if os.getppid() != parent:
                    os._exit(0)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.close(req_w)
                os.close(res_r)
                for other in self.children.values():  # no other child's pipe ends
                    for fd in (other.req_w, other.res_r):
                        if fd >= 0:
                            os.close(fd)
                self._own_slot(slot)
                self._child_main(req_r, res_w)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(res_w)
        self.next_id += 1
        child = _Child(self.next_id, pid, req_w, res_r, slot)
        self.children[child.id] = child
        return child

    def _own_slot(self, slot: int) -> None:
        """In a new child: unmap every pixel region but its own slot's (and the writable input view)."""
        self.in_map.close()
        for k, other in enumerate(self.slots):
            if k != slot:
                other.unmap()
        self.in_view, self.out_map = self.slots[slot].in_view, self.slots[slot].out_map

    def _child_main(self, req_r: int, res_w: int) -> None:
        try:
            status: dict[str, bool] = {}
            if self.harden:
                used = resource.getrusage(resource.RUSAGE_SELF)
                # A backstop only (the caller enforces each call's wall-clock deadline); a reused child
                # may spend up to its whole budget of calls.
                per_call = max(1, math.ceil(self.timeout_s) + 1)
                cpu_s = int(used.ru_utime + used.ru_stime) + per_call * self.calls_per_child + 2
                status = _harden.harden_child(
                    res_w,
                    self.devnull,
                    self.root_fd,
                    memory_mb=self.memory_mb,
                    cpu_s=cpu_s,
                    seccomp=None,  # last, below: the warm-up needs a few more syscalls (setsid)
                    drop_uid=True,
                    keep_fds=(req_r,),
                    landlock_fd=self.landlock_fd,
                )
            gc.disable()  # short-lived; cycles die with the process, the address-space cap bounds them
            self._prewarm(req_r)
            # Its own session: on kernels that group CPU time by session (autogroup), the call then does not
            # share a scheduling group with the worker's background work (forking and warming spares).
            try:
                os.setsid()
            except OSError:
                pass
            _set_policy(FOREGROUND)  # its call must preempt background work when it comes
            if self.harden:
                status["seccomp"] = _harden.restrict_syscalls(self.seccomp, status)
        except (WireError, OSError):
            return

        def handle(request: dict[str, Any]) -> dict[str, Any]:
            reply = self._child_call(request)
            reply["hardening"] = status
            return reply

        # After each reply of a reused child: free this call's cycles (only young objects are walked).
        serve_calls(req_r, res_w, handle, self.calls_per_child, after_reply=lambda: gc.collect(0))
        # Exit only once the caller has let go of this child (it closes the request pipe when it has the
        # result), and as background work: tearing down the address space must not compete with the caller
        # copying the result, nor with the next call.
        _set_policy(BACKGROUND)
        try:
            os.read(req_r, 1)
        except OSError:
            pass

    def _child_call(self, req: dict[str, Any]) -> dict[str, Any]:
        from ._shared_image import map_image

        t0 = time.monotonic()
        nbytes = req.get("nbytes", -1)
        if not isinstance(nbytes, int) or not 0 < nbytes <= len(self.in_view):
            return error_reply("bad_input", "input image does not fit the input buffer")
        image = map_image(self.in_view, req.get("image"), nbytes)  # zero-copy, copy-on-write
        t1 = time.monotonic()
        header, out = self.executor.run(str(req.get("code", "")), image)
        t2 = time.monotonic()
        del image
        if header.get("ok") and out is not None:
            try:
                _map_ahead(self.out_map, POPULATE_BYTES, out.width * out.height * 4)
                header["image"], header["nbytes"] = write_image(self.out_map, out)
            except WireError:
                return error_reply("output_too_large", "result does not fit the output buffer")
            except MemoryError:
                return error_reply("memory", "memory limit exceeded while returning `result`")
        del out
        header["child_s"] = {
            "received": t0,
            "decode": t1 - t0,
            "run": t2 - t1,
            "copy_out": time.monotonic() - t2,
        }
        return header

    def _prewarm(self, req_r: int) -> None:
        """Before the request arrives, move the page faults a fresh fork would take during its call off the
        critical path, most useful first: map a heap big enough for a call's image buffers (it stays in the
        heap once freed, see :func:`_tune_malloc`), map this child's pixel regions, run and compile small
        representative snippets (the first run in a fresh fork copies every interpreter page it writes).
        Stops as soon as a request is waiting: the call would wait for the rest, which costs more than the
        faults it saves (calls arriving faster than spares are warmed)."""
        for step in _WARM_STEPS:
            if select.select([req_r], [], [], 0)[0]:
                return
            try:
                getattr(self, step)()
            except Exception:  # noqa: BLE001 - pre-warming is an optimisation only
                pass

    @staticmethod
    def _prefault_heap() -> None:
        _prefault_heap(PREFAULT_BYTES)

    def _run_warm(self) -> None:
        from PIL import Image

        from ._shared_image import map_image

        # Private scratch memory: the shared regions belong to the call in flight.
        scratch = mmap.mmap(-1, 32 * 24 * 4)
        meta, n = write_image(scratch, Image.new("RGB", (32, 24), (90, 60, 30)))
        _, out = self.executor.run(_SPARE_WARM_CODE, map_image(scratch, meta, n))
        if out is not None:
            write_image(scratch, out)

    @staticmethod
    def _compile_warm() -> None:
        from ._execute import compile_code

        compile_code(_COMPILE_WARM)

    def _populate(self) -> None:
        """Map the start of this child's input and result regions into its page tables without changing a
        byte (the regions may belong to a call in flight)."""
        for region in (self.in_view, self.out_map):
            _map_ahead(region, 0, POPULATE_BYTES)

    # ------------------------------------------------------------------ supervising children

    def kill_child(self, child: _Child) -> None:
        """Kill now; reap later, without blocking (freeing a big address space takes a while)."""
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if child not in self.retired:
            self.retired.append(child)

    retire_child = kill_child

    def reap_child(self, child: _Child) -> tuple[str, str]:
        """Kill (if need be) and reap now; ``(error_kind, error)`` from how it ended."""
        if child.status is None:
            self._close_ends(child)
            try:
                os.kill(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.status = os.waitpid(child.pid, 0)[1]
        self._gone(child)
        return _classify(child.status)

    def _reap_retired(self, block: bool = False) -> None:
        """Reap the retired children that have ended and report each as gone."""
        for child in list(self.retired):
            if child.status is None:
                self._close_ends(child)
                pid, st = os.waitpid(child.pid, 0 if block else os.WNOHANG)
                if pid == 0:
                    continue
                child.status = st
            self._gone(child)

    def _gone(self, child: _Child) -> None:
        self.children.pop(child.id, None)
        if child in self.retired:
            self.retired.remove(child)
        if getattr(self, "ctl", None) is not None:
            send_gone(self.ctl, child.id)

    @staticmethod
    def _close_ends(child: _Child) -> None:
        for fd in (child.req_w, child.res_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        child.req_w = child.res_r = -1

    # ------------------------------------------------------------------ serving

    def probe(self) -> dict[str, bool]:
        """Run one request through a child end to end, as the caller will, and report what hardening
        worked."""
        from PIL import Image

        meta, nbytes = write_image(self.in_map, Image.new("RGB", (8, 8)))
        child = self._fork_child(slot=0)
        header, _ = call_child(
            child,
            "result = image",
            meta,
            nbytes,
            deadline=time.monotonic() + _PROBE_TIMEOUT_S,
            timeout_s=_PROBE_TIMEOUT_S,
            max_stdout_chars=self.limits.max_stdout_chars,
            out_capacity=len(self.out_map),
            load_result=check_image,
            supervisor=self,
        )
        self.kill_child(child)
        self._reap_retired(block=True)
        st = _harden.summarize(self.status, header.get("hardening") or {})
        st["probe_ok"] = bool(header.get("ok"))
        return st

    def serve(self) -> None:
        """Supervise children that talk to the caller directly.

        The caller gets each child's request/reply pipe ends over the control socket (``SCM_RIGHTS``) and
        exchanges frames with the child without this process in between; the worker keeps :data:`SPARES`
        children forked, hardened and pre-warmed ahead, and kills, reaps and classifies children on the
        caller's word (``take``: a spare was taken into use, fork the next; ``retire``: done with it;
        ``kill``: its deadline passed; ``reap``: its pipe closed, report why). It reports every child it
        has reaped (``gone``), so the caller knows when no earlier child can see the shared regions.
        """
        import socket

        if self.ctl_fd < 0:
            raise RuntimeError("no control socket")
        self.ctl = socket.socket(fileno=self.ctl_fd)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select() through the wake-up pipe
        for _ in range(SPARES):
            self._offer()
        while True:
            try:
                ready, _, _ = select.select([self.ctl_fd, wake_r], [], [], 0.05 if self.retired else None)
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
                continue
            if wake_r in ready:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
            try:
                self._reap_retired()
            except OSError:
                return
            if self.ctl_fd not in ready:
                continue
            # Every request already sent, in one wake-up (the caller sends "retire" and "take" together).
            while True:
                try:
                    op, cid = read_control(self.ctl_fd)
                    if not self._handle(op, cid):
                        return
                except (WireError, OSError):
                    return  # the caller went away (or this process cannot go on)
                if not select.select([self.ctl_fd], [], [], 0)[0]:
                    break

    def _handle(self, op: str | None, cid: int | None) -> bool:
        """Carry out one control request; False on ``exit``."""
        if op == "exit":
            return False
        child = self.children.get(cid) if op in ("retire", "kill", "reap") and cid is not None else None
        if op == "take":
            self._offer()
        elif op == "retire":
            if child is not None:
                self.retire_child(child)
        elif op == "kill":
            if child is not None:
                self.kill_child(child)  # killed now, reaped without blocking
            send_status(self.ctl, cid, "timeout")
        elif op == "reap":
            if child is not None:
                kind, msg = self.reap_child(child)
            else:
                kind, msg = "crash", "the sandbox child is gone"
            send_status(self.ctl, cid, kind, msg)
        if op in ("retire", "kill", "reap") and child is None and cid is not None:
            send_gone(self.ctl, cid)  # reaped earlier (or never ours): nothing can see anything
        self._reap_retired()
        return True

    def _offer(self) -> None:
        """Fork the next child and hand its pipe ends to the caller (closing ours)."""
        child = self._fork_child()
        try:
            offer_child(self.ctl, child.id, child.slot, child.req_w, child.res_r)
        finally:
            for fd in (child.req_w, child.res_r):
                os.close(fd)
            child.req_w = child.res_r = -1


#: Scheduling policies of background work (``SCHED_BATCH``: the same share of the CPU, but its wake-ups
#: never preempt a running task) and of calls.
BACKGROUND = getattr(os, "SCHED_BATCH", None)
FOREGROUND = getattr(os, "SCHED_OTHER", None)


def _set_policy(policy: int | None) -> None:
    """Switch this process between :data:`BACKGROUND` and :data:`FOREGROUND` (the same priority, so no
    privilege is needed; where the platform refuses, scheduling stays as it was)."""
    if policy is None:
        return
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError:
        pass


def _map_ahead(region: mmap.mmap, start: int, end: int) -> None:
    """Map ``region[start:end]`` (page-aligned ``start``) into the page tables by reading it: shared memory is
    mapped 16 pages per fault when read, and a shared writable mapping then needs no fault to be written."""
    end = min(end, len(region))
    if end <= start:
        return
    try:
        region.madvise(_MADV_POPULATE_READ, start, end - start)
    except OSError:  # before Linux 5.14: read-fault them in
        view = memoryview(region)
        for off in range(start, end, 16 * mmap.PAGESIZE):
            _ = view[off]
        view.release()


def _prefault_heap(nbytes: int) -> None:
    """Map ``nbytes`` of heap into this process's page tables, then free them (they stay in the heap).

    Transparent huge pages where the kernel offers them (``madvise`` mode included), populated in one call
    (Linux >= 5.14); page by page otherwise.
    """
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    p = libc.malloc(nbytes + _HUGE)
    if not p:
        return
    lo = -(-p // _HUGE) * _HUGE  # huge pages must be aligned
    libc.madvise(lo, nbytes, _MADV_HUGEPAGE)  # refused where THP is off: 4 KiB pages then
    if libc.madvise(lo - mmap.PAGESIZE, nbytes + mmap.PAGESIZE, _MADV_POPULATE_WRITE) != 0:
        ctypes.memset(lo - mmap.PAGESIZE, 0, nbytes + mmap.PAGESIZE)
    libc.free(p)
    # The block went back to the top of the heap, where the call's big buffers will come from. Keep its
    # unaligned head (not mapped ahead) allocated for the child's life, so they start at ``lo`` (malloc
    # puts a 16-byte header before each block; the page before ``lo``, mapped, holds it).
    if lo - p > mmap.PAGESIZE - 16:
        libc.malloc(lo - p - 8)


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


def main() -> None:
    """Entry point of a worker process (started by :mod:`cv_sandbox._pool`)."""
    chan_in = os.dup(0)
    chan_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    if os.environ.get("CV_SANDBOX_DEBUG") != "1":
        os.dup2(devnull, 1)
    else:
        os.dup2(2, 1)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        cfg = read_init(chan_in)
        # Before any library starts a thread: namespaces (and, for a PID namespace, a fork into it).
        worker_status = _harden.isolate_worker() if cfg.get("harden", True) else {}
        zyg = Zygote(chan_in, chan_out, devnull, cfg, worker_status)
        status = zyg.probe()
    except Exception as exc:  # noqa: BLE001 - tell the caller why the worker cannot start
        send_failed(chan_out, f"{type(exc).__name__}: {exc}")
        sys.exit(1)
    send_ready(chan_out, status)
    zyg.serve()


if __name__ == "__main__":
    main()
