"""Framing and raw-pixel image encoding for the pipes between caller, worker and child.

A frame is ``>IQ`` (header length, payload length), a UTF-8 JSON header, then the payload bytes. Images
travel as ``{"mode", "w", "h"}`` plus ``Image.tobytes()``; nothing is ever pickled.
"""

from __future__ import annotations

import json
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


class WireError(Exception):
    """Broken, oversized or late frame."""


class WireTimeout(WireError):
    """The other side did not answer before the deadline."""


def expected_nbytes(mode: str, w: int, h: int) -> int:
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
    if mode not in TRANSFER_MODES or not isinstance(w, int) or not isinstance(h, int) or w <= 0 or h <= 0:
        raise WireError(f"bad image header {meta!r}")
    if nbytes != expected_nbytes(mode, w, h):
        raise WireError(f"image payload is {nbytes} bytes, expected {expected_nbytes(mode, w, h)}")
    return mode, w, h


def decode_image(meta: dict[str, Any], data: bytes | bytearray | memoryview) -> Image.Image:
    mode, w, h = check_image(meta, len(data))
    return Image.frombytes(mode, (w, h), data)


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
            raise WireError("connection closed")
        got += k
    return buf


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
