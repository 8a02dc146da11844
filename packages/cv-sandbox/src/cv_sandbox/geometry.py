"""Axis-aligned affine maps between image frames, in continuous pixel-edge coordinates.

The one implementation of the geometry behind ``ExecResult.to_source`` and every crop box mapped back to an
input image (the sandbox's tracer, cv-agent's trajectories, cv-train's RL environment).

A map ``(a, b, c, d, e, f)`` sends a point ``(x, y)`` of an op's *output* image to
``(a*x + b*y + c, d*x + e*y + f)`` in its *input* image. Pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``,
so rotations by multiples of 90 degrees, flips, crops and resizes are exact (no half-pixel fudge).

Example:
    >>> m = compose(rotate_90(100, 50), translate(10, 20))  # crop at (10, 20) of a rotated 100x50 image
    >>> map_box(m, (0, 0, 20, 40))
    (40.0, 10.0, 80.0, 30.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Affine = tuple[float, float, float, float, float, float]

IDENTITY: Affine = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

__all__ = [
    "IDENTITY",
    "Affine",
    "apply",
    "chain_to_input",
    "clean",
    "compose",
    "flip_horizontal",
    "flip_vertical",
    "is_axis_aligned",
    "map_box",
    "resize",
    "rotate_90",
    "rotate_180",
    "rotate_270",
    "scale",
    "translate",
    "transpose",
    "transverse",
]


def compose(outer: Affine, inner: Affine) -> Affine:
    """``outer`` after ``inner``: first map with ``inner`` (new output -> op input), then ``outer``.

    Example:
        >>> compose((1, 0, 5, 0, 1, 0), (2, 0, 0, 0, 2, 0))
        (2, 0, 5, 0, 2, 0)
    """
    a1, b1, c1, d1, e1, f1 = outer
    a2, b2, c2, d2, e2, f2 = inner
    return (
        a1 * a2 + b1 * d2,
        a1 * b2 + b1 * e2,
        a1 * c2 + b1 * f2 + c1,
        d1 * a2 + e1 * d2,
        d1 * b2 + e1 * e2,
        d1 * c2 + e1 * f2 + f1,
    )


def apply(m: Affine, x: float, y: float) -> tuple[float, float]:
    """The image of point ``(x, y)`` under ``m``."""
    a, b, c, d, e, f = m
    return a * x + b * y + c, d * x + e * y + f


def translate(dx: float, dy: float) -> Affine:
    return (1.0, 0.0, float(dx), 0.0, 1.0, float(dy))


def scale(sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> Affine:
    return (float(sx), 0.0, float(dx), 0.0, float(sy), float(dy))


def flip_horizontal(w: int) -> Affine:
    return (-1.0, 0.0, float(w), 0.0, 1.0, 0.0)


def flip_vertical(h: int) -> Affine:
    return (1.0, 0.0, 0.0, 0.0, -1.0, float(h))


def rotate_90(w: int, h: int) -> Affine:
    """Counter-clockwise quarter turn of a ``w x h`` input (output is ``h x w``)."""
    return (0.0, -1.0, float(w), 1.0, 0.0, 0.0)


def rotate_180(w: int, h: int) -> Affine:
    return (-1.0, 0.0, float(w), 0.0, -1.0, float(h))


def rotate_270(w: int, h: int) -> Affine:
    return (0.0, 1.0, 0.0, -1.0, 0.0, float(h))


def transpose() -> Affine:
    return (0.0, 1.0, 0.0, 1.0, 0.0, 0.0)


def transverse(w: int, h: int) -> Affine:
    return (0.0, -1.0, float(w), -1.0, 0.0, float(h))


def resize(src_w: int, src_h: int, dst_w: int, dst_h: int, box: tuple[float, ...] | None = None) -> Affine:
    """Map of a resize of region ``box`` (default: the whole input) to ``dst_w x dst_h``."""
    x1, y1, x2, y2 = box if box is not None else (0, 0, src_w, src_h)
    return scale((x2 - x1) / max(dst_w, 1), (y2 - y1) / max(dst_h, 1), x1, y1)


def is_axis_aligned(m: Affine) -> bool:
    """True for compositions of 90-degree rotations, flips, crops and resizes."""
    a, b, _, d, e, _ = m
    return (abs(b) < 1e-9 and abs(d) < 1e-9) or (abs(a) < 1e-9 and abs(e) < 1e-9)


def clean(m: Affine) -> Affine:
    """Snap float noise so exact integer maps stay integers (JSON stays readable)."""
    out = []
    for v in m:
        r = round(v)
        out.append(float(r) if abs(v - r) < 1e-9 else float(v))
    return (out[0], out[1], out[2], out[3], out[4], out[5])


def map_box(
    m: Affine, box: Sequence[float], bounds: tuple[int, int] | None = None
) -> tuple[float, float, float, float] | tuple[int, int, int, int]:
    """Map an axis-aligned box through ``m`` (the bounding box of its mapped corners).

    Args:
        m: An axis-aligned map (90-degree rotations, flips, scales, shifts and their compositions).
        box: ``(x1, y1, x2, y2)`` in the frame ``m`` maps from.
        bounds: ``(w, h)`` of the target frame: the box is clipped to it and rounded to whole pixels (the
            sandbox's source-frame crop boxes). ``None``: exact floats, unclipped.

    Example:
        >>> map_box((-1, 0, 10, 0, 1, 0), (1, 2, 3, 4))
        (7.0, 2.0, 9.0, 4.0)
        >>> map_box(IDENTITY, (-5, -5, 70, 20.4), (64, 48))
        (0, 0, 64, 20)
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    pts = [apply(m, x, y) for x, y in ((x1, y1), (x2, y1), (x1, y2), (x2, y2))]
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    if bounds is None:
        return float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))
    w, h = bounds

    def clip(v: float, hi: int) -> int:
        v = min(max(v, 0.0), float(hi))
        return int(math.floor(v + 0.5))

    return clip(min(xs), w), clip(min(ys), h), clip(max(xs), w), clip(max(ys), h)


def chain_to_input(
    index: int, parents: Sequence[int | None], to_parent: Sequence[Sequence[float] | None]
) -> Affine | None:
    """Map from image ``index``'s pixels to input image 0's pixels, following the image lineage.

    Args:
        index: The image whose frame to map from.
        parents: ``parents[k]`` is the image that image ``k`` was computed from (``None`` for inputs).
        to_parent: ``to_parent[k]`` maps image ``k``'s pixels to its parent's (an ``ExecResult.to_source``;
            ``None``: not trackable).

    Returns:
        The composed map, or ``None`` when a link is untrackable or the chain ends at an input other
        than image 0.

    Example:
        >>> chain_to_input(1, [None, 0], [None, (1, 0, 5, 0, 1, 7)])
        (1.0, 0.0, 5.0, 0.0, 1.0, 7.0)
        >>> chain_to_input(1, [None, None], [None, None]) is None  # image 1 is an input of its own
        True
    """
    affine: Affine = IDENTITY
    k: int | None = index
    seen = 0
    while k is not None and parents[k] is not None:
        link = to_parent[k]
        if link is None:
            return None
        affine = compose(tuple(link), affine)  # type: ignore[arg-type]
        k = parents[k]
        seen += 1
        if seen > len(parents):  # defensive: a corrupted lineage must not loop forever
            return None
    return affine if k == 0 else None
