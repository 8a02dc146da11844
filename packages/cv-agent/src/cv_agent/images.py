"""Image helpers: Qwen's smart_resize pixel budget, the model's (cached) copy of an image, loading and data
URLs.

Box mapping through image lineage lives in :mod:`cv_sandbox.geometry`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import math
import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ImageLike = Image.Image | np.ndarray | str | os.PathLike[str]


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 4 * 28 * 28, max_pixels: int = 8192 * 28 * 28
) -> tuple[int, int]:
    """Target ``(height, width)`` for a model image, with Qwen2-VL ``smart_resize`` semantics.

    Both sides become multiples of ``factor``, the pixel count lands in ``[min_pixels, max_pixels]`` and
    the aspect ratio is kept as closely as possible.

    Args:
        height: Source height in pixels.
        width: Source width in pixels.
        factor: Side multiple (28 for Qwen2.5-VL: patch 14 x merge 2; 32 for Qwen3-VL).
        min_pixels: Lower pixel bound.
        max_pixels: Upper pixel bound.

    Example:
        >>> smart_resize(1000, 1000, max_pixels=512 * 28 * 28)
        (616, 616)
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"absolute aspect ratio must be smaller than 200, got {width}x{height}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def load_image_file(path: str | os.PathLike[str]) -> Image.Image:
    """Read an image file, fully decoded; every way it can fail is one readable line.

    Raises:
        FileNotFoundError: The file does not exist (or is a directory).
        ValueError: It is not an image, it is corrupt or truncated, or it is too large to decode safely
            (more than PIL's ``Image.MAX_IMAGE_PIXELS``, a decompression-bomb guard).

    Example:
        >>> load_image_file("/nonexistent.png")
        Traceback (most recent call last):
        ...
        FileNotFoundError: image file not found: /nonexistent.png
    """
    import warnings

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image file not found: {p}" + (" (it is a directory)" if p.is_dir() else ""))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                im.load()
                return im.copy() if im.mode in ("RGB", "RGBA", "L") else im.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"{p}: image too large to decode safely ({e})") from None
    except Image.UnidentifiedImageError:
        raise ValueError(f"{p}: not an image file (PIL cannot identify it)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{p}: corrupt or truncated image ({e})") from None


def to_pil(image: ImageLike) -> Image.Image:
    """Load a path, array or PIL image as a PIL image (fully decoded, so files can be closed).

    Example:
        >>> to_pil(np.zeros((2, 3, 3), dtype=np.uint8)).size
        (3, 2)
    """
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"array images must be uint8, got {image.dtype}; convert with .astype(np.uint8)")
        return Image.fromarray(image)
    if isinstance(image, (str, os.PathLike)):
        return load_image_file(image)
    raise TypeError(f"expected a PIL image, uint8 array or path, got {type(image).__name__}")


def resize_for_model(
    image: Image.Image, *, factor: int = 28, min_pixels: int = 4 * 28 * 28, max_pixels: int = 8192 * 28 * 28
) -> Image.Image:
    """The copy of ``image`` the model sees: RGB, resized to the pixel budget by :func:`smart_resize`.

    Example:
        >>> resize_for_model(Image.new("RGB", (100, 50)), max_pixels=28 * 28 * 4).size
        (56, 28)
    """
    h, w = smart_resize(image.height, image.width, factor, min_pixels, max_pixels)
    im = image if image.mode == "RGB" else image.convert("RGB")
    if (w, h) == im.size:
        return im
    if w * h >= 0.64 * im.width * im.height:
        # Near-identity (rounding to the factor) or upscaling: OpenCV's bicubic is ~3x faster than PIL's
        # and, without antialiasing to do, gives the same result; this is the common per-turn case.
        import cv2

        return Image.fromarray(cv2.resize(np.asarray(im), (w, h), interpolation=cv2.INTER_CUBIC))
    # Real downscales: PIL's antialiased bicubic (what the HF processors use); reducing_gap adds a box
    # pre-reduction that makes big downscales much faster at no visible cost.
    return im.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=3.0)


# Model copies of images shared by many episodes (GRPO's n rollouts of one prompt, benchmark items) are
# made once: same copy object -> backends' per-object encoding caches hit too. Weak references, so the
# cache never keeps an image alive.
_COPIES: dict[int, tuple[weakref.ref[Image.Image], tuple[int, int, int], Image.Image]] = {}


def _cached_copy(image: Image.Image, key: tuple[int, int, int]) -> Image.Image | None:
    hit = _COPIES.get(id(image))
    if hit is not None and hit[0]() is image and hit[1] == key:
        return hit[2]
    return None


# Resizes running in worker threads, by (id(image), key): concurrent episodes that share an input image
# (GRPO's n rollouts of one prompt) await the one resize instead of each making (and encoding) a copy.
_IN_FLIGHT: dict[tuple[int, tuple[int, int, int]], tuple[Image.Image, asyncio.Future[Image.Image]]] = {}


async def _threaded_copy(image: Image.Image, key: tuple[int, int, int], kw: dict[str, int]) -> Image.Image:
    loop = asyncio.get_running_loop()
    pk = (id(image), key)
    hit = _IN_FLIGHT.get(pk)
    if hit is not None and hit[0] is image and hit[1].get_loop() is loop:
        return await asyncio.shield(hit[1])
    fut = loop.run_in_executor(None, functools.partial(resize_for_model, image, **kw))
    _IN_FLIGHT[pk] = (image, fut)

    def done(f: asyncio.Future[Image.Image]) -> None:
        if _IN_FLIGHT.get(pk, (None, None))[1] is f:
            del _IN_FLIGHT[pk]
        if not f.cancelled() and f.exception() is None:
            _remember_copy(image, key, f.result())

    fut.add_done_callback(done)
    return await asyncio.shield(fut)  # one waiter's cancellation must not cancel the others' resize


def _remember_copy(image: Image.Image, key: tuple[int, int, int], copy: Image.Image) -> None:
    ident = id(image)
    try:
        ref = weakref.ref(image, lambda _r, i=ident, d=_COPIES: d.pop(i, None))
    except TypeError:  # not weak-referenceable: just skip caching
        return
    _COPIES[ident] = (ref, key, copy)


# Images above this many pixels are resized in a worker thread (OpenCV and PIL release the GIL there), so
# that with many episodes in flight the event loop keeps serving other episodes' HTTP traffic meanwhile
# (a 640x480 model copy costs ~0.7 ms of CPU; the hop ~20-60 us of event-loop time). Tiny images are
# resized inline, where the hop would cost more than the resize.
_THREAD_RESIZE_PIXELS = 32_768


async def model_copy(
    image: Image.Image, *, factor: int = 28, min_pixels: int = 4 * 28 * 28, max_pixels: int = 8192 * 28 * 28
) -> Image.Image:
    """:func:`resize_for_model`, made once per image and pixel budget however many episodes ask.

    Episodes sharing an input image get the same copy object (so per-object encoding caches hit too);
    concurrent requests for one image await a single resize; large images are resized in a worker thread
    so the event loop keeps serving other episodes meanwhile. Nothing is kept alive by the cache.

    Example:
        >>> import asyncio
        >>> im = Image.new("RGB", (100, 50))
        >>> a = asyncio.run(model_copy(im, max_pixels=28 * 28 * 4))
        >>> a.size, asyncio.run(model_copy(im, max_pixels=28 * 28 * 4)) is a
        ((56, 28), True)
    """
    key = (factor, min_pixels, max_pixels)
    copy = _cached_copy(image, key)
    if copy is not None:
        return copy
    kw = {"factor": factor, "min_pixels": min_pixels, "max_pixels": max_pixels}
    if image.width * image.height > _THREAD_RESIZE_PIXELS:
        return await _threaded_copy(image, key, kw)
    copy = resize_for_model(image, **kw)
    _remember_copy(image, key, copy)
    return copy


def encode_image(image: Image.Image, fmt: str = "png", quality: int = 90) -> bytes:
    """Encode for transport. PNG uses a fast compression level (speed matters more than bytes here).

    Example:
        >>> encode_image(Image.new("RGB", (2, 2)))[:4]
        b'\\x89PNG'
    """
    buf = io.BytesIO()
    fmt = fmt.lower()
    if fmt == "png":
        image.save(buf, format="PNG", compress_level=1)
    elif fmt in ("jpeg", "jpg"):
        image.convert("RGB").save(buf, format="JPEG", quality=quality)
    else:
        raise ValueError(f"unsupported image format {fmt!r}; set it to 'png' or 'jpeg'")
    return buf.getvalue()


def data_url(image: Image.Image, fmt: str = "png", quality: int = 90) -> str:
    """``data:image/...;base64,...`` URL of ``image``.

    Example:
        >>> data_url(Image.new("RGB", (1, 1))).startswith("data:image/png;base64,")
        True
    """
    mime = "png" if fmt.lower() == "png" else "jpeg"
    return f"data:image/{mime};base64," + base64.b64encode(encode_image(image, fmt, quality)).decode("ascii")


def decode_data_url(url: str) -> Image.Image:
    """Inverse of :func:`data_url`.

    Example:
        >>> decode_data_url(data_url(Image.new("RGB", (3, 1)))).size
        (3, 1)
    """
    if not url.startswith("data:") or "," not in url:
        raise ValueError("not a data URL (expected 'data:image/...;base64,...')")
    header, payload = url.split(",", 1)
    if ";base64" not in header:
        raise ValueError("only base64 data URLs are supported")
    with Image.open(io.BytesIO(base64.b64decode(payload))) as im:
        im.load()
        return im.copy()


def image_to_jsonable(image: Image.Image) -> dict[str, Any]:
    """Size and mode of an image, for logs."""
    return {"size": list(image.size), "mode": image.mode}
