"""The five trajectory kinds of the paper, each a scripted plan executed step by step in the sandbox.

``single_tool`` (one orientation fix or one zoom), ``multi_tool`` (fix then zoom, or two orientation fixes),
``multi_crop`` (coarse then fine zoom), ``error_recovery`` (a call that really fails, then the corrected call)
and ``no_tool`` (the image is readable as given). A builder is ``(conversation_factory, rng, index, seed) ->
(item, conversation)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from cv_protocol import corrective_ops, rotation_degrees

from cv_data import expert as ex
from cv_data._images import same_pixels
from cv_data.item import Item
from cv_data.rl import ORIENTATION_TRANSFORMS
from cv_data.sources import SOURCES
from cv_data.transforms import transform_item

from .conversation import Conversation, TrajectoryError
from .planning import box_through, crop_step, int_box, orient_fix, target_name

__all__ = ["BUILDERS", "SFT_KINDS", "KindBuilder", "failing_code"]

#: Trajectory kinds.
SFT_KINDS: tuple[str, ...] = ("single_tool", "multi_tool", "multi_crop", "error_recovery", "no_tool")

#: ``(conversation_factory, rng, index, seed) -> (item, conversation)``.
KindBuilder = Callable[
    [Callable[[Item], Conversation], np.random.Generator, int, int], tuple[Item, Conversation]
]


def orientation_item(
    rng: np.random.Generator, i: int, seed: int, ops: list[str], sources: list[str]
) -> tuple[Item, Item]:
    base = SOURCES[str(ex.pick(rng, sources))](i, seed, "train")
    return base, transform_item(base, ops)


def single_tool(conv_factory, rng, i, seed):
    if rng.random() < 0.35:
        base = SOURCES["scene"](i, seed, "train")
        item = base
        conv = conv_factory(item)
        res, ib, scale = crop_step(conv, item.bbox, 0, rng, target_name(item))
    else:
        op = str(ex.pick(rng, ORIENTATION_TRANSFORMS))
        base, item = orientation_item(rng, i, seed, [op], ["document", "chart"])
        conv = conv_factory(item)
        fix = corrective_ops(item.transform)[0]
        res = orient_fix(conv, fix, rng, 0)
        if not same_pixels(res.image, base.images[0]):
            raise TrajectoryError(f"{fix} did not restore the upright image")
    conv.answer(ex.answer_think(item.answer, rng, after_tool=True), item.answer)
    return item, conv


def multi_tool(conv_factory, rng, i, seed):
    if rng.random() < 0.6:
        op = str(ex.pick(rng, ORIENTATION_TRANSFORMS))
        base = SOURCES["scene"](i, seed, "train")
        item = transform_item(base, [op])
        conv = conv_factory(item)
        fixes = [o for o in corrective_ops(item.transform) if o != "crop"]
        res = orient_fix(conv, fixes[0], rng, 0)
        if not same_pixels(res.image, base.images[0]):
            raise TrajectoryError("orientation fix did not restore the upright scene")
        box = box_through(fixes, item.bbox, item.images[0].size)
        crop_step(
            conv,
            box,
            1,
            rng,
            target_name(item),
            think_prefix="The scene is upright now, but the text I need is tiny. ",
        )
    else:
        ops = [str(ex.pick(rng, ORIENTATION_TRANSFORMS[:3])), str(ex.pick(rng, ORIENTATION_TRANSFORMS[3:]))]
        base, item = orientation_item(rng, i, seed, ops, ["document", "chart"])
        conv = conv_factory(item)
        fixes = corrective_ops(item.transform)
        orient_fix(
            conv,
            fixes[0],
            rng,
            0,
            think=f"The image is both mirrored and turned. First I undo the mirroring. {ex.orient_think(fixes[0], rng)}",
        )
        res = orient_fix(
            conv,
            fixes[1],
            rng,
            1,
            think=f"The glyphs now read correctly but the page is still not upright. {ex.orient_think(fixes[1], rng)}",
        )
        if not same_pixels(res.image, base.images[0]):
            raise TrajectoryError("orientation fixes did not restore the upright image")
    conv.answer(ex.answer_think(item.answer, rng, after_tool=True), item.answer)
    return item, conv


def multi_crop(conv_factory, rng, i, seed):
    item = SOURCES["scene"](i, seed, "train")
    conv = conv_factory(item)
    target = target_name(item)
    _, ib, _ = crop_step(conv, item.bbox, 0, rng, target, coarse=True)
    box1 = [item.bbox[0] - ib[0], item.bbox[1] - ib[1], item.bbox[2] - ib[0], item.bbox[3] - ib[1]]
    crop_step(
        conv, box1, 1, rng, target, think_prefix="Image 1 shows the right area, but the text is still small. "
    )
    conv.answer(ex.answer_think(item.answer, rng, after_tool=True), item.answer)
    return item, conv


ERRORS = ("no_result", "cv2_on_pil", "bad_name", "reversed_crop", "bad_method")


def failing_code(kind: str, op: str, box: tuple[int, int, int, int] | None) -> tuple[str, str]:
    """(code that really fails in the sandbox, how the expert explains the error)."""
    deg = rotation_degrees(op)
    if kind == "reversed_crop" and box is not None:
        x1, y1, x2, y2 = box
        return (
            f"result = image.crop(({x2}, {y1}, {x1}, {y2}))",
            "I swapped the left and right coordinates of the crop box; the box must be (left, top, right, bottom).",
        )
    if kind == "no_result":
        body = (
            f"image.rotate({deg}, expand=True)"
            if deg
            else ("ImageOps.mirror(image)" if op == "flip_horizontal" else "ImageOps.flip(image)")
        )
        return f"fixed = {body}", "I forgot to assign the output to `result`."
    if kind == "cv2_on_pil":
        flag = {
            "rotate_90": "cv2.ROTATE_90_COUNTERCLOCKWISE",
            "rotate_180": "cv2.ROTATE_180",
            "rotate_270": "cv2.ROTATE_90_CLOCKWISE",
        }.get(op)
        body = (
            f"cv2.rotate(image, {flag})"
            if flag
            else f"cv2.flip(image, {1 if op == 'flip_horizontal' else 0})"
        )
        return (
            f"result = Image.fromarray({body})",
            "OpenCV needs a NumPy array, not a PIL image; I must convert with np.array first.",
        )
    if kind == "bad_name":
        body = (
            f"im.rotate({deg}, expand=True)"
            if deg
            else "ImageOps.mirror(im)"
            if op == "flip_horizontal"
            else "ImageOps.flip(im)"
        )
        return f"result = {body}", "The variable is called `image` (or `img`), not `im`."
    return (
        "result = image.rotate_image(90)" if deg else "result = image.mirror()",
        "PIL images have no such method; I should use Image.rotate / ImageOps instead.",
    )


def error_recovery(conv_factory, rng, i, seed):
    if rng.random() < 0.3:
        item = SOURCES["scene"](i, seed, "train")
        conv = conv_factory(item)
        ib = int_box(item.bbox, float(rng.integers(6, 30)), item.images[0].size)
        kind = "reversed_crop"
        code, why = failing_code(kind, "crop", ib)
        conv.call(
            ex.crop_think(target_name(item), ib, rng), code, "Crop the answer region.", 0, expect_ok=False
        )
        crop_step(conv, item.bbox, 0, rng, target_name(item), think=f"The call failed. {why} Let me fix it.")
    else:
        op = str(ex.pick(rng, ORIENTATION_TRANSFORMS))
        base, item = orientation_item(rng, i, seed, [op], ["document", "chart"])
        conv = conv_factory(item)
        fix = corrective_ops(item.transform)[0]
        kind = str(ex.pick(rng, [k for k in ERRORS if k != "reversed_crop"]))
        code, why = failing_code(kind, fix, None)
        conv.call(ex.orient_think(fix, rng), code, ex.orient_desc(fix), 0, expect_ok=False)
        res = orient_fix(
            conv, fix, rng, 0, think=f"The tool returned an error. {why} Retrying with corrected code."
        )
        if not same_pixels(res.image, base.images[0]):
            raise TrajectoryError("recovery call did not restore the upright image")
    conv.answer(ex.answer_think(item.answer, rng, after_tool=True), item.answer)
    return item, conv


def no_tool(conv_factory, rng, i, seed):
    item = SOURCES[str(ex.pick(rng, ["document", "chart"]))](i, seed, "train")
    conv = conv_factory(item)
    conv.answer(ex.answer_think(item.answer, rng, after_tool=False), item.answer)
    return item, conv


BUILDERS: dict[str, KindBuilder] = {
    "single_tool": single_tool,
    "multi_tool": multi_tool,
    "multi_crop": multi_crop,
    "error_recovery": error_recovery,
    "no_tool": no_tool,
}
