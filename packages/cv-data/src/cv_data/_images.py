"""Image encoding/decoding with clear errors for corrupt or truncated files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def encode_png(image: Image.Image, compress_level: int = 1) -> bytes:
    buf = io.BytesIO()
    # Level 1: datasets are written often and read once; speed matters more than a few percent of size.
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def to_struct(image: Image.Image, path: str | None = None) -> dict[str, Any]:
    """The ``{"bytes", "path"}`` struct that the ``datasets`` ``Image`` feature reads."""
    return {"bytes": encode_png(image), "path": path}


def decode(value: Any, base_dir: str | Path | None = None) -> Image.Image:
    """Decode an image given as PIL, bytes, ``{"bytes", "path"}`` struct or file path; fully loaded.

    Raises:
        ValueError: with a readable message when the value is missing, unreadable, corrupt or truncated.
    """
    if isinstance(value, Image.Image):
        return value
    data: bytes | None = None
    path: str | None = None
    if isinstance(value, dict):
        data = value.get("bytes")
        path = value.get("path")
    elif isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif isinstance(value, str | Path):
        path = str(value)
    else:
        raise ValueError(f"cannot read an image from a {type(value).__name__}")
    if data is None and path is None:
        raise ValueError("image is missing (no bytes and no path)")
    try:
        if data is not None:
            im = Image.open(io.BytesIO(data))
        else:
            p = Path(path)  # type: ignore[arg-type]
            if not p.is_absolute() and base_dir is not None:
                p = Path(base_dir) / p
            if not p.is_file():
                raise ValueError(f"image file not found: {p}")
            im = Image.open(p)
        im.load()  # decode now: truncated files fail here, not later inside a worker
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - PIL raises many types for bad files
        where = f" ({path})" if path else ""
        raise ValueError(f"corrupt or truncated image{where}: {type(e).__name__}: {e}") from e
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    return im


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    """Whether two images have the same size and the same RGB pixels."""
    return a.size == b.size and np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))
