"""Axis-aligned affine maps between image frames, in continuous pixel-edge coordinates.

A map ``(a, b, c, d, e, f)`` sends a point ``(x, y)`` of an op's *output* image to
``(a*x + b*y + c, d*x + e*y + f)`` in its *input* image. Pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``,
so rotations by multiples of 90 degrees, flips, crops and resizes are exact (no half-pixel fudge).
"""

from __future__ import annotations

import math

Affine = tuple[float, float, float, float, float, float]

IDENTITY: Affine = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def compose(outer: Affine, inner: Affine) -> Affine:
    """``outer`` after ``inner``: first map with ``inner`` (new output -> op input), then ``outer``."""
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
    m: Affine, box: tuple[float, float, float, float], bounds: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Map a box of an op's input frame to the source frame, clipped to ``bounds`` (w, h)."""
    x1, y1, x2, y2 = box
    pts = [apply(m, x, y) for x, y in ((x1, y1), (x2, y1), (x1, y2), (x2, y2))]
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    w, h = bounds

    def clip(v: float, hi: int) -> int:
        v = min(max(v, 0.0), float(hi))
        return int(math.floor(v + 0.5))

    return clip(min(xs), w), clip(min(ys), h), clip(max(xs), w), clip(max(ys), h)
