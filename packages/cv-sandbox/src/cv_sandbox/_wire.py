"""Framing and raw-pixel image encoding for the pipes between caller, worker and child.

A frame is ``>IQ`` (header length, payload length), a UTF-8 JSON header, then the payload bytes. Images
travel as ``{"mode", "w", "h"}`` plus ``Image.tobytes()``; nothing is ever pickled.

Images in shared memory (:func:`write_image` / :func:`read_image`): modes ``L``, ``RGB`` and ``RGBA``
travel in Pillow's own pixel layout (``"native": true``; 1 or 4 bytes per pixel, rows back to back), so
each side moves the pixels with a single ``memcpy`` instead of packing and unpacking them; other modes
(and images too large for one Pillow memory block) use the packed ``tobytes`` layout.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import select
import struct
import time
from typing import Any

from PIL import Image

_HDR = struct.Struct(">IQ")

#: Modes that round-trip through ``tobytes``/``frombytes`` and their bits per pixel.
MODE_BITS: dict[str, int] = {
    "1": 1,
    "L": 8,
    "LA": 16,
    "La": 16,
    "P": 8,
    "RGB": 24,
    "RGBA": 32,
    "RGBa": 32,
    "RGBX": 32,
    "CMYK": 32,
    "YCbCr": 24,
    "LAB": 24,
    "HSV": 24,
    "I": 32,
    "F": 32,
    "I;16": 16,
}
TRANSFER_MODES = frozenset(MODE_BITS) - {"P"}

#: Modes that may travel in Pillow's native layout, with their bytes per pixel. (RGB is stored as 4 bytes
#: per pixel, the last one padding; every byte of these layouts is either a channel or padding.)
NATIVE_PIXEL_BYTES: dict[str, int] = {"L": 1, "RGB": 4, "RGBA": 4}
#: The mode Pillow can map over an external buffer without copying, per native mode.
_MAP_MODE = {"L": "L", "RGB": "RGBA", "RGBA": "RGBA"}


class WireError(Exception):
    """Broken, oversized or late frame."""


class WireTimeout(WireError):
    """The other side did not answer before the deadline."""


class WireClosed(WireError):
    """The other side closed its end (for a sandbox child: it died)."""


class CallLost(WireError):
    """A call ended without a verdict on its code: its child was gone before the request reached it, or the
    worker itself died during the call (user code cannot reach its worker: seccomp, its own PID namespace;
    the worker dies only from outside). Sandboxed code has no effect outside its child, so the pool runs
    the call again (on the worker's next spare, or on a fresh worker; a few tries at most) and the caller
    gets the code's own verdict. A child that dies during its call while its worker lives is never retried:
    the code may be what killed it."""


def expected_nbytes(mode: str, w: int, h: int, native: bool = False) -> int:
    if native:
        return w * h * NATIVE_PIXEL_BYTES[mode]
    bits = MODE_BITS[mode]
    if bits == 1:
        return ((w + 7) // 8) * h
    return w * h * bits // 8


def normalize_mode(im: Image.Image) -> Image.Image:
    """Palette and exotic modes become RGB/RGBA so the raw bytes are self-describing."""
    if im.mode in TRANSFER_MODES:
        return im
    has_alpha = "A" in im.mode or "transparency" in im.info
    return im.convert("RGBA" if has_alpha else "RGB")


def encode_image(im: Image.Image) -> tuple[dict[str, Any], bytes]:
    im = normalize_mode(im)
    return {"mode": im.mode, "w": im.width, "h": im.height}, im.tobytes()


def check_image(meta: Any, nbytes: int) -> tuple[str, int, int]:
    """Validate an image header against its payload size; returns (mode, w, h)."""
    if not isinstance(meta, dict):
        raise WireError("image header is not an object")
    mode, w, h = meta.get("mode"), meta.get("w"), meta.get("h")
    native = meta.get("native", False)
    if (
        mode not in TRANSFER_MODES
        or not isinstance(w, int)
        or not isinstance(h, int)
        or isinstance(w, bool)
        or isinstance(h, bool)
        or w <= 0
        or h <= 0
        or not isinstance(native, bool)
        or (native and mode not in NATIVE_PIXEL_BYTES)
    ):
        raise WireError(f"bad image header {meta!r}")
    if nbytes != expected_nbytes(mode, w, h, native):
        raise WireError(f"image payload is {nbytes} bytes, expected {expected_nbytes(mode, w, h, native)}")
    return mode, w, h


def decode_image(meta: dict[str, Any], data: bytes | bytearray | memoryview) -> Image.Image:
    mode, w, h = check_image(meta, len(data))
    return Image.frombytes(mode, (w, h), data)


class _ArrowArray(ctypes.Structure):
    pass


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _native_pixels(im: Image.Image) -> tuple[object, int] | None:
    """``(keepalive, address)`` of the image's pixels if they lie in one block in native layout, else None.

    Uses Pillow's Arrow export (which refuses images spread over several memory blocks); the pixels stay
    valid while ``keepalive`` (the exported array capsule, which holds a reference to them) is alive.
    """
    size = NATIVE_PIXEL_BYTES.get(im.mode)
    if size is None:
        return None
    try:
        _, capsule = im.__arrow_c_array__()
        arr = _ArrowArray.from_address(_capsule_pointer(capsule, b"arrow_array"))
    except (ValueError, TypeError, AttributeError, OSError):
        return None
    npix = im.width * im.height
    if arr.length != npix or arr.offset != 0:
        return None
    if size == 1:
        if arr.n_children != 0 or arr.n_buffers != 2:
            return None
    else:  # fixed-size list of `size` uint8 per pixel: the pixels are the child array's data buffer
        if arr.n_children != 1:
            return None
        arr = arr.children[0].contents
        if arr.length != npix * size or arr.offset != 0 or arr.n_buffers != 2:
            return None
    addr = arr.buffers[1]
    return (capsule, addr) if addr else None


def write_image(buf: mmap.mmap, im: Image.Image) -> tuple[dict[str, Any], int]:
    """Copy ``im``'s pixels to the start of ``buf``; returns the image header and the byte count.

    Native layout where possible (one ``memcpy``), else ``tobytes``. Raises :class:`WireError` if the
    image does not fit.
    """
    im = normalize_mode(im)
    im.load()
    meta: dict[str, Any] = {"mode": im.mode, "w": im.width, "h": im.height}
    native = _native_pixels(im)
    if native is not None:
        keep, src = native
        n = expected_nbytes(im.mode, im.width, im.height, True)
        if n > len(buf):
            raise WireError(f"image of {n} bytes does not fit the {len(buf)}-byte buffer")
        dst = ctypes.c_char.from_buffer(buf)  # pins the mapping while we copy
        try:
            ctypes.memmove(ctypes.addressof(dst), src, n)
        finally:
            del dst, keep
        meta["native"] = True
        return meta, n
    data = im.tobytes()
    if len(data) > len(buf):
        raise WireError(f"image of {len(data)} bytes does not fit the {len(buf)}-byte buffer")
    buf[: len(data)] = data
    return meta, len(data)


def read_image(buf: mmap.mmap, meta: Any, nbytes: int) -> Image.Image:
    """A new, independent image from the first ``nbytes`` of ``buf`` (validated against ``meta``).

    One copy: native layouts are mapped without copying and then copied once into Pillow-owned memory, so
    the result never aliases ``buf``.
    """
    mode, w, h = check_image(meta, nbytes)
    if nbytes > len(buf):
        raise WireError("image payload exceeds the shared buffer")
    if not meta.get("native"):
        return Image.frombytes(mode, (w, h), memoryview(buf)[:nbytes])
    base = _MAP_MODE[mode]
    mapped = Image.frombuffer(base, (w, h), buf, "raw", base, 0, 1)
    try:
        view = mapped if base == mode else Image.fromarrow(mapped, mode, (w, h))
        try:
            out = view.copy()
        finally:
            del view
    finally:
        del mapped
    return out


def _wait(fd: int, write: bool, deadline: float | None) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise WireTimeout("deadline exceeded")
    r, w, _ = select.select([] if write else [fd], [fd] if write else [], [], remaining)
    if not r and not w:
        raise WireTimeout("deadline exceeded")


def write_all(fd: int, data: bytes | bytearray | memoryview, deadline: float | None = None) -> None:
    view = memoryview(data).cast("B")
    while view:
        _wait(fd, True, deadline)
        try:
            n = os.write(fd, view[: 1 << 20])
        except BlockingIOError:
            continue
        view = view[n:]


def read_exact(fd: int, n: int, deadline: float | None = None) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        _wait(fd, False, deadline)
        try:
            k = os.readv(fd, [view[got:]])
        except BlockingIOError:
            continue
        if k == 0:
            raise WireClosed("connection closed")
        got += k
    return buf


def frame_bytes(header: dict[str, Any]) -> bytes:
    """One frame without payload, ready to write (several can go out in one ``write``)."""
    h = json.dumps(header, separators=(",", ":")).encode()
    return _HDR.pack(len(h), 0) + h


def send_frame(
    fd: int,
    header: dict[str, Any],
    payload: bytes | bytearray | memoryview = b"",
    deadline: float | None = None,
) -> None:
    h = json.dumps(header, separators=(",", ":")).encode()
    if len(payload) < 65536:
        write_all(fd, _HDR.pack(len(h), len(payload)) + h + bytes(payload), deadline)
    else:
        write_all(fd, _HDR.pack(len(h), len(payload)) + h, deadline)
        write_all(fd, payload, deadline)


def recv_frame(
    fd: int, deadline: float | None = None, max_header: int = 16 << 20, max_payload: int = 1 << 34
) -> tuple[dict[str, Any], bytearray]:
    hlen, plen = _HDR.unpack(read_exact(fd, _HDR.size, deadline))
    if hlen > max_header or plen > max_payload:
        raise WireError(f"frame too large (header {hlen} bytes, payload {plen} bytes)")
    header = json.loads(read_exact(fd, hlen, deadline))
    if not isinstance(header, dict):
        raise WireError("frame header is not an object")
    payload = read_exact(fd, plen, deadline) if plen else bytearray()
    return header, payload
