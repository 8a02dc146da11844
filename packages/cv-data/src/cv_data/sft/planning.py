"""Planning helpers of the scripted expert: boxes, targets, and the orientation-fix and crop steps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from cv_protocol import rotation_degrees
from cv_sandbox import ToolOutcome

from cv_data import expert as ex
from cv_data.item import Item
from cv_data.transforms import map_bbox

from .conversation import Conversation

__all__ = ["box_through", "crop_step", "int_box", "orient_fix", "target_name"]


def int_box(box: Sequence[float], margin: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` pixels, rounded outwards and clipped to an image of ``size``.

    Example:
        >>> int_box([10.5, 10, 20, 20.2], 5, (22, 40))
        (5, 5, 22, 26)
    """
    w, h = size
    return (
        max(0, int(box[0] - margin)),
        max(0, int(box[1] - margin)),
        min(w, int(np.ceil(box[2] + margin))),
        min(h, int(np.ceil(box[3] + margin))),
    )


def target_name(item: Item) -> str:
    """How the expert's thinking names what it looks for (a scene's price tag or note, else "the relevant text")."""
    t = item.meta.get("target")
    if item.data_source.endswith("scene") and t:
        if item.meta.get("scene") == "shelf":
            return f'the price tag below "{t}"'
        return f'the small writing on the note "{t}"'
    return "the relevant text"


def orient_fix(
    conv: Conversation, op: str, rng: np.random.Generator, idx: int, *, think: str | None = None
) -> ToolOutcome:
    """Execute orientation op ``op`` on image ``idx`` in a random code style (thinking from the expert)."""
    style = ex.pick(rng, ex.STYLES)
    return conv.call(
        think or ex.orient_think(op, rng), ex.orientation_code(op, style), ex.orient_desc(op), idx
    )


def crop_step(
    conv: Conversation,
    box: Sequence[float],
    idx: int,
    rng: np.random.Generator,
    target: str,
    *,
    coarse: bool = False,
    think: str | None = None,
    think_prefix: str = "",
) -> tuple[ToolOutcome, tuple[int, int, int, int], int]:
    """Crop ``box`` (pixels of image ``idx``) with a margin and zoom in; ``coarse``: a wide first crop.

    Returns:
        The call's outcome, the integer box cropped and the zoom factor.
    """
    size = conv.images[idx].size
    bw, bh = box[2] - box[0], box[3] - box[1]
    if coarse:
        margin = max(bw, bh) * rng.uniform(1.5, 3.0) + 40
    else:
        margin = float(rng.integers(6, 30))
    ib = int_box(box, margin, size)
    side = max(ib[2] - ib[0], ib[3] - ib[1])
    scale = 1 if coarse or side > 500 else (3 if side < 120 else 2)
    enhance = None if coarse else ex.pick(rng, [None, None, None, "contrast", "sharpen"])
    code = ex.crop_code(ib, ex.pick(rng, ex.STYLES), scale, enhance)
    desc = (
        "Crop the area around the target and zoom in."
        if coarse
        else "Crop the answer region and enlarge it to read the small text."
    )
    text = think or (think_prefix + ex.crop_think(target, ib, rng, coarse=coarse))
    res = conv.call(text, code, desc, idx)
    return res, ib, scale


def box_through(ops: Sequence[str], box: Sequence[float], size: tuple[int, int]) -> list[float]:
    """``box`` in an image of ``size`` carried through the orientation ops ``ops``, in order.

    Example:
        >>> box_through(["rotate_90"], [0, 0, 10, 5], (100, 50))
        [0.0, 90.0, 5.0, 100.0]
    """
    b = list(box)
    w, h = size
    for op in ops:
        b = map_bbox(op, b, (w, h))
        if rotation_degrees(op) in (90, 270):  # a quarter turn swaps width and height
            w, h = h, w
    return b
