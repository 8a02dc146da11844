"""Canonical op names: what a transform is called in data, what the sandbox trace calls an executed op,
and which op undoes which.

Rotations are counter-clockwise, as PIL's ``Image.rotate``: ``rotate_90`` turns the content a quarter turn
to the left. A dataset's ``transform`` list (the perturbations applied to an item, in order) and the
sandbox's trace (the ops the model's code actually ran) use the same names, so "did the model undo the
perturbation" is a comparison of names: :func:`corrective_ops`.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CROP",
    "FLIP_OPS",
    "GEOMETRIC_OPS",
    "ORIENTATION_OPS",
    "ROTATE_OPS",
    "TRANSFORM_NAMES",
    "IDENTITY_ORIENTATION",
    "Orientation",
    "corrective_ops",
    "orientation_of",
    "rotation_degrees",
]

#: Counter-clockwise rotations by multiples of 90 degrees.
ROTATE_OPS: tuple[str, ...] = ("rotate_90", "rotate_180", "rotate_270")
#: Mirrors: ``flip_horizontal`` swaps left and right, ``flip_vertical`` swaps top and bottom.
FLIP_OPS: tuple[str, ...] = ("flip_horizontal", "flip_vertical")
#: The zoom op; as a transform it means "the answer needs a zoom into the item's bbox".
CROP = "crop"
#: Orientation ops (rotations and flips).
ORIENTATION_OPS: frozenset[str] = frozenset(ROTATE_OPS + FLIP_OPS)
#: Ops an item can require; every other traced op (contrast, sharpen, ...) is optional.
GEOMETRIC_OPS: frozenset[str] = ORIENTATION_OPS | {CROP}
#: Perturbations a dataset ``transform`` list may name, in a fixed order (crop, rotations, flips).
TRANSFORM_NAMES: tuple[str, ...] = (CROP, *ROTATE_OPS, *FLIP_OPS)

# Names spelled like a geometric op are held to the vocabulary (``rotate_45`` is a mistake, not a
# photometric perturbation); anything else in a transform list (``noise``, ``jpeg``) needs no geometric op.
_GEOMETRIC_PREFIXES = ("rotate", "flip", CROP)


def rotation_degrees(op: str) -> int | None:
    """Counter-clockwise degrees of a rotation op, ``None`` for any other op.

    Example:
        >>> rotation_degrees("rotate_270"), rotation_degrees("flip_vertical")
        (270, None)
    """
    return int(op.removeprefix("rotate_")) if op in ROTATE_OPS else None


def _inverse(op: str) -> str:
    if op in ROTATE_OPS:
        return f"rotate_{360 - int(op.removeprefix('rotate_'))}"
    if op in GEOMETRIC_OPS:
        return op  # flips undo themselves; a crop is still needed after the fix
    raise ValueError(
        f"unknown geometric transform {op!r} in transform; use one of {', '.join(TRANSFORM_NAMES)}"
    )


def corrective_ops(transform: Sequence[str]) -> list[str]:
    """The ops that undo ``transform``, in the order they should run.

    ``rotate_d`` is undone by ``rotate_{360-d}`` (counter-clockwise); flips undo themselves and ``crop``
    stays ``crop`` (the zoom is still needed). Perturbations are undone last-first, so the list is the
    reverse of ``transform``. Names that are not spelled like a geometric op (``noise``, ``jpeg``,
    ``blur``: photometric perturbations) need no op; a name spelled like one that is not in
    :data:`TRANSFORM_NAMES` (``rotate_45``, ``flip``) raises ``ValueError``.

    Example:
        >>> corrective_ops(["crop", "rotate_90"])
        ['rotate_270', 'crop']
        >>> corrective_ops(["rotate_90", "flip_horizontal", "noise"])
        ['flip_horizontal', 'rotate_270']
    """
    if isinstance(transform, str):
        raise ValueError(f"transform must be a list of names, got the string {transform!r}")
    return [_inverse(t) for t in reversed(transform) if t.startswith(_GEOMETRIC_PREFIXES)]


#: An orientation: the 2x2 integer matrix ``(a, b, c, d)`` that maps a pixel offset ``(x, y)`` from the image
#: centre (``y`` pointing down) to ``(a*x + b*y, c*x + d*y)``: one of the 8 rotations/flips of a rectangle.
Orientation = tuple[int, int, int, int]
#: The orientation of an image nothing was done to.
IDENTITY_ORIENTATION: Orientation = (1, 0, 0, 1)
# Each op's matrix. Rotations are counter-clockwise on screen (y down): the right edge moves to the top.
_ORIENTATION_MATRIX: dict[str, Orientation] = {
    "rotate_90": (0, 1, -1, 0),
    "rotate_180": (-1, 0, 0, -1),
    "rotate_270": (0, -1, 1, 0),
    "flip_horizontal": (-1, 0, 0, 1),
    "flip_vertical": (1, 0, 0, -1),
    "transpose": (0, 1, 1, 0),  # PIL's Transpose.TRANSPOSE, numpy/cv2 transpose: swap x and y
    "transverse": (0, -1, -1, 0),
}


def orientation_of(ops: Sequence[str], start: Orientation = IDENTITY_ORIENTATION) -> Orientation:
    """The net rotation/flip of running ``ops`` in order (after ``start``); other ops (crop, contrast, ...)
    do not change an orientation.

    Two op lists that leave an image the same way up compare equal, whatever ops they spell it with, so
    "did the model undo the transform" is ``orientation_of(model_ops) == orientation_of(corrective_ops(t))``.

    Example:
        >>> orientation_of(["flip_horizontal", "flip_vertical"]) == orientation_of(["rotate_180"])
        True
        >>> orientation_of(["rotate_90", "crop", "rotate_270"]) == IDENTITY_ORIENTATION
        True
    """
    a, b, c, d = start
    for op in ops:
        m = _ORIENTATION_MATRIX.get(op)
        if m is None:
            continue
        p, q, r, s = m
        # Applying m after the current map: m @ current.
        a, b, c, d = p * a + q * c, p * b + q * d, r * a + s * c, r * b + s * d
    return (a, b, c, d)
