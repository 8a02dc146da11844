"""Exact geometric transforms (with bounding-box mapping) and seeded natural corruptions."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

Box = list[float]

# Pixel ops use Image.transpose, which is bit-exact and identical to Image.rotate(d, expand=True) for
# multiples of 90 (Pillow dispatches those rotations to transpose).
_TRANSPOSE: dict[str, Image.Transpose] = {
    "rotate_90": Image.Transpose.ROTATE_90,
    "rotate_180": Image.Transpose.ROTATE_180,
    "rotate_270": Image.Transpose.ROTATE_270,
    "flip_horizontal": Image.Transpose.FLIP_LEFT_RIGHT,
    "flip_vertical": Image.Transpose.FLIP_TOP_BOTTOM,
}


def _map_box(op: str, box: Box, w: int, h: int) -> Box:
    x1, y1, x2, y2 = box
    if op == "rotate_90":  # counter-clockwise: (x, y) -> (y, w - x)
        return [y1, w - x2, y2, w - x1]
    if op == "rotate_180":
        return [w - x2, h - y2, w - x1, h - y1]
    if op == "rotate_270":  # clockwise: (x, y) -> (h - y, x)
        return [h - y2, x1, h - y1, x2]
    if op == "flip_horizontal":
        return [w - x2, y1, w - x1, y2]
    if op == "flip_vertical":
        return [x1, h - y2, x2, h - y1]
    if op == "crop":
        return list(box)
    raise ValueError(f"unknown transform {op!r}; allowed: {list(TRANSFORMS)}")


#: Transform names accepted by :func:`apply_transform` (``crop`` leaves pixels unchanged).
TRANSFORMS: tuple[str, ...] = ("crop", *_TRANSPOSE)


def map_bbox(op: str, bbox: Sequence[float], size: tuple[int, int]) -> Box:
    """Map ``bbox`` on an image of ``size`` through ``op`` (no pixels touched).

    Example:
        >>> map_bbox("rotate_90", [0, 0, 10, 5], (100, 50))
        [0.0, 90.0, 5.0, 100.0]
    """
    w, h = size
    return [float(v) for v in _map_box(op, [float(v) for v in bbox], w, h)]


def apply_transform(
    image: Image.Image, bbox: Sequence[float] | None, op: str
) -> tuple[Image.Image, Box | None]:
    """Apply one geometric transform to an image and its answer box.

    Args:
        image: The image.
        bbox: ``[x1, y1, x2, y2]`` in pixels of ``image``, or ``None``.
        op: One of :data:`TRANSFORMS`. Rotations are counter-clockwise like ``Image.rotate(d, expand=True)``.

    Returns:
        ``(new_image, new_bbox)``; the box is mapped exactly into the new frame.

    Example:
        >>> im = Image.new("RGB", (40, 20))
        >>> out, box = apply_transform(im, [0, 0, 4, 2], "rotate_90")
        >>> out.size, box
        ((20, 40), [0.0, 36.0, 2.0, 40.0])
    """
    if op not in TRANSFORMS:
        raise ValueError(f"unknown transform {op!r}; allowed: {list(TRANSFORMS)}")
    new_box = map_bbox(op, bbox, image.size) if bbox is not None else None
    if op == "crop":
        return image, new_box
    return image.transpose(_TRANSPOSE[op]), new_box


def apply_transforms(
    image: Image.Image, bbox: Sequence[float] | None, ops: Sequence[str]
) -> tuple[Image.Image, Box | None]:
    """Apply several transforms in order (see :func:`apply_transform`).

    Example:
        >>> im = Image.new("RGB", (40, 20))
        >>> apply_transforms(im, None, ["rotate_90", "flip_vertical"])[0].size
        (20, 40)
    """
    box = list(bbox) if bbox is not None else None
    for op in ops:
        image, box = apply_transform(image, box, op)
    return image, box


# ---------------------------------------------------------------- corruptions

#: Severities accepted by :func:`corrupt` (1 = mild ... 5 = severe).
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

_NOISE_SIGMA = (6.0, 12.0, 20.0, 30.0, 45.0)
_BLUR_RADIUS = (0.6, 1.0, 1.6, 2.4, 3.5)
_JPEG_QUALITY = (40, 25, 15, 10, 5)
_BRIGHTNESS = (0.75, 0.6, 0.45, 0.33, 0.22)  # darker; the brighter side is drawn at random below
_CONTRAST = (0.7, 0.5, 0.35, 0.25, 0.15)


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _noise(image: Image.Image, s: int, rng: np.random.Generator) -> Image.Image:
    a = np.asarray(_rgb(image), dtype=np.float32)
    a = a + rng.normal(0.0, _NOISE_SIGMA[s - 1], size=a.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def _blur(image: Image.Image, s: int, rng: np.random.Generator) -> Image.Image:
    return _rgb(image).filter(ImageFilter.GaussianBlur(_BLUR_RADIUS[s - 1]))


def _jpeg(image: Image.Image, s: int, rng: np.random.Generator) -> Image.Image:
    buf = io.BytesIO()
    _rgb(image).save(buf, format="JPEG", quality=_JPEG_QUALITY[s - 1])
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _brightness(image: Image.Image, s: int, rng: np.random.Generator) -> Image.Image:
    factor = _BRIGHTNESS[s - 1]
    if rng.random() < 0.5:  # over-exposure is as common as under-exposure
        factor = 1.0 + (1.0 - factor) * 2.2
    return ImageEnhance.Brightness(_rgb(image)).enhance(factor)


def _contrast(image: Image.Image, s: int, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Contrast(_rgb(image)).enhance(_CONTRAST[s - 1])


#: Corruption kinds accepted by :func:`corrupt`.
CORRUPTIONS: dict[str, Callable[[Image.Image, int, np.random.Generator], Image.Image]] = {
    "gaussian_noise": _noise,
    "gaussian_blur": _blur,
    "jpeg": _jpeg,
    "brightness": _brightness,
    "contrast": _contrast,
}


def corrupt(image: Image.Image, kind: str, severity: int, seed: int = 0) -> Image.Image:
    """Apply a natural corruption at a graded severity, reproducibly.

    Args:
        image: Input image (any mode; the output is RGB).
        kind: One of :data:`CORRUPTIONS` (``gaussian_noise``, ``gaussian_blur``, ``jpeg``, ``brightness``,
            ``contrast``).
        severity: 1 (mild) to 5 (severe).
        seed: Seed for the random parts (noise, brighten vs darken); same seed, same pixels.

    Example:
        >>> im = Image.new("RGB", (8, 8), "white")
        >>> corrupt(im, "gaussian_noise", 3, seed=1) == corrupt(im, "gaussian_noise", 3, seed=1)
        True
    """
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; allowed: {sorted(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    return CORRUPTIONS[kind](image, severity, np.random.default_rng([seed, severity, sum(map(ord, kind))]))


def transform_item(
    item: Any, ops: Sequence[str], *, id_suffix: str | None = None, meta: dict | None = None
) -> Any:
    """A copy of ``item`` with ``ops`` applied to ``images[0]`` and its ``bbox``, ``transform`` extended.

    Args:
        item: A :class:`cv_data.Item`.
        ops: Geometric transforms (``crop`` only records that a zoom is needed).
        id_suffix: Appended to the id as ``<id>/<suffix>`` when given.
        meta: Extra metadata merged into the copy's ``meta``.

    Example:
        >>> from cv_data.sources import make_chart_item
        >>> it = transform_item(make_chart_item(0), ["rotate_90"], id_suffix="rot90")
        >>> it.transform, it.id.endswith("/rot90")
        (['rotate_90'], True)
    """
    from .item import Item

    image, box = apply_transforms(item.images[0], item.bbox, ops)
    return Item(
        id=f"{item.id}/{id_suffix}" if id_suffix else item.id,
        images=[image, *item.images[1:]],
        question=item.question,
        answer=item.answer,
        transform=[*item.transform, *ops],
        bbox=box,
        data_source=item.data_source,
        split=item.split,
        task_type=item.task_type,
        choices=list(item.choices) if item.choices is not None else None,
        meta={**item.meta, **(meta or {})},
    )
