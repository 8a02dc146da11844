"""The scripted expert: code in varied spellings (PIL, NumPy, OpenCV) and thinking text for each step.

cv-data's SFT kinds write their calls with it, and cv-bench's reference policy takes its orientation code
(:func:`orientation_code`) from here, so both spell a fix the same way.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "STYLES",
    "answer_think",
    "crop_code",
    "crop_think",
    "orient_desc",
    "orient_think",
    "orientation_code",
    "pick",
]

STYLES = ("pil", "pil_alt", "numpy", "cv2")

_ORIENT_CODE: dict[str, dict[str, str]] = {
    "rotate_90": {
        "pil": "result = image.rotate(90, expand=True)",
        "pil_alt": "result = image.transpose(Image.Transpose.ROTATE_90)",
        "numpy": "arr = np.array(image)\nresult = Image.fromarray(np.rot90(arr, k=1))",
        "cv2": "arr = np.array(image)\nresult = Image.fromarray(cv2.rotate(arr, cv2.ROTATE_90_COUNTERCLOCKWISE))",
    },
    "rotate_180": {
        "pil": "result = image.rotate(180, expand=True)",
        "pil_alt": "result = image.transpose(Image.Transpose.ROTATE_180)",
        "numpy": "arr = np.array(image)\nresult = Image.fromarray(np.rot90(arr, k=2))",
        "cv2": "arr = np.array(image)\nresult = Image.fromarray(cv2.rotate(arr, cv2.ROTATE_180))",
    },
    "rotate_270": {
        "pil": "result = image.rotate(270, expand=True)",
        "pil_alt": "result = image.transpose(Image.Transpose.ROTATE_270)",
        "numpy": "arr = np.array(image)\nresult = Image.fromarray(np.rot90(arr, k=-1))",
        "cv2": "arr = np.array(image)\nresult = Image.fromarray(cv2.rotate(arr, cv2.ROTATE_90_CLOCKWISE))",
    },
    "flip_horizontal": {
        "pil": "result = ImageOps.mirror(image)",
        "pil_alt": "result = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)",
        "numpy": "arr = np.array(image)\nresult = Image.fromarray(np.fliplr(arr).copy())",
        "cv2": "arr = np.array(image)\nresult = Image.fromarray(cv2.flip(arr, 1))",
    },
    "flip_vertical": {
        "pil": "result = ImageOps.flip(image)",
        "pil_alt": "result = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)",
        "numpy": "arr = np.array(image)\nresult = Image.fromarray(np.flipud(arr).copy())",
        "cv2": "arr = np.array(image)\nresult = Image.fromarray(cv2.flip(arr, 0))",
    },
}

_ORIENT_DESC = {
    "rotate_90": "Rotate the image 90 degrees counter-clockwise so the content is upright.",
    "rotate_180": "Rotate the image 180 degrees; it is upside down.",
    "rotate_270": "Rotate the image 90 degrees clockwise so the content is upright.",
    "flip_horizontal": "Mirror the image left-to-right to undo the horizontal flip.",
    "flip_vertical": "Flip the image top-to-bottom to undo the vertical flip.",
}

_ORIENT_SEEN = {
    "rotate_90": [
        "The text lines run vertically from top to bottom, so the image is turned 90° clockwise.",
        "Everything is lying on its side: the tops of the letters point to the right, i.e. a clockwise quarter turn.",
    ],
    "rotate_270": [
        "The text runs from bottom to top; the image has been rotated 90° counter-clockwise.",
        "The letters are on their side with their tops pointing left, so the picture was turned counter-clockwise by 90°.",
    ],
    "rotate_180": [
        "The content is upside down: the text reads right-to-left with inverted letters.",
        "Everything appears rotated by 180 degrees; the title is at the bottom and upside down.",
    ],
    "flip_horizontal": [
        "The letters are mirrored left-to-right, as if seen in a mirror.",
        "The text reads backwards with mirrored glyphs, so the image was flipped horizontally.",
    ],
    "flip_vertical": [
        "The text is upside down but not reversed left-to-right, so the image was flipped vertically.",
        "The glyphs are mirrored top-to-bottom; it is a vertical flip rather than a rotation.",
    ],
}

_FIX_SAY = {
    "rotate_90": "I'll rotate it 90° counter-clockwise.",
    "rotate_270": "I'll rotate it 90° clockwise (270° counter-clockwise).",
    "rotate_180": "A 180° rotation will fix it.",
    "flip_horizontal": "Mirroring it left-to-right will restore it.",
    "flip_vertical": "Flipping it top-to-bottom will restore it.",
}


def pick(rng: np.random.Generator, seq: list | tuple):
    """One element of ``seq`` drawn with ``rng``.

    Example:
        >>> pick(np.random.default_rng(0), ["a", "b", "c"]) in ("a", "b", "c")
        True
    """
    return seq[int(rng.integers(len(seq)))]


def orientation_code(op: str, style: str = "pil") -> str:
    """Tool code that performs orientation op ``op`` (a canonical sandbox op name) in one of :data:`STYLES`.

    Example:
        >>> orientation_code("rotate_270")
        'result = image.rotate(270, expand=True)'
    """
    if op not in _ORIENT_CODE or style not in STYLES:
        raise ValueError(
            f"no code for op {op!r} in style {style!r}; ops: {list(_ORIENT_CODE)}, styles: {STYLES}"
        )
    return _ORIENT_CODE[op][style]


def orient_desc(op: str) -> str:
    """The call description of orientation op ``op``.

    Example:
        >>> orient_desc("rotate_180")
        'Rotate the image 180 degrees; it is upside down.'
    """
    return _ORIENT_DESC[op]


def orient_think(op: str, rng: np.random.Generator) -> str:
    """Thinking that sees the orientation problem ``op`` undoes and says how to fix it (drawn with ``rng``)."""
    return f"{pick(rng, _ORIENT_SEEN[op])} {_FIX_SAY[op]}"


def crop_code(box: tuple[int, int, int, int], style: str, scale: int, enhance: str | None) -> str:
    """Tool code that crops ``box``, zooms by ``scale`` and optionally enhances (``contrast``/``sharpen``).

    Example:
        >>> print(crop_code((1, 2, 5, 6), "pil", 2, None))
        region = image.crop((1, 2, 5, 6))
        region = region.resize((8, 8), Image.Resampling.LANCZOS)
        result = region
    """
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    lines: list[str]
    if style in ("pil", "pil_alt"):
        lines = [f"region = image.crop(({x1}, {y1}, {x2}, {y2}))"]
        if scale > 1:
            lines.append(f"region = region.resize(({w * scale}, {h * scale}), Image.Resampling.LANCZOS)")
        last = "region"
    elif style == "numpy":
        lines = ["arr = np.array(image)", f"region = Image.fromarray(arr[{y1}:{y2}, {x1}:{x2}])"]
        if scale > 1:
            lines.append(f"region = region.resize(({w * scale}, {h * scale}), Image.Resampling.BICUBIC)")
        last = "region"
    else:
        lines = ["arr = np.array(image)", f"patch = arr[{y1}:{y2}, {x1}:{x2}]"]
        if scale > 1:
            lines.append(
                f"patch = cv2.resize(patch, None, fx={scale}, fy={scale}, interpolation=cv2.INTER_CUBIC)"
            )
        lines.append("region = Image.fromarray(patch)")
        last = "region"
    if enhance == "contrast":
        lines.append(f"{last} = ImageEnhance.Contrast({last}).enhance(1.4)")
    elif enhance == "sharpen":
        lines.append(f"{last} = {last}.filter(ImageFilter.SHARPEN)")
    lines.append(f"result = {last}")
    return "\n".join(lines)


def crop_think(
    target: str, box: tuple[int, int, int, int], rng: np.random.Generator, *, coarse: bool = False
) -> str:
    """Thinking before a crop of ``box`` to read ``target`` (``coarse``: a first, wide crop)."""
    x1, y1, x2, y2 = box
    if coarse:
        return pick(
            rng,
            [
                f"The image is large and the detail I need ({target}) is tiny. I'll first zoom into the area around it, roughly ({x1}, {y1}) to ({x2}, {y2}).",
                f"I can't read {target} at this scale. Let me crop the neighbourhood ({x1}, {y1}, {x2}, {y2}) first and look closer.",
            ],
        )
    return pick(
        rng,
        [
            f"The text I need ({target}) is too small to read reliably. I'll crop the box ({x1}, {y1}, {x2}, {y2}) and enlarge it.",
            f"{target[0].upper() + target[1:]} is tiny in this view. Zooming into ({x1}, {y1}, {x2}, {y2}) should make it legible.",
            f"To read {target} I need a closer look: crop ({x1}, {y1})-({x2}, {y2}) and upscale.",
        ],
    )


def answer_think(answer: str, rng: np.random.Generator, *, after_tool: bool) -> str:
    """Thinking before the final answer, after tool calls or without any."""
    if not after_tool:
        return pick(
            rng,
            [
                f"The image is upright and the relevant text is legible, so no tool is needed. The answer is {answer}.",
                f"The image is clear and correctly oriented; I can read it directly. The answer is {answer}.",
            ],
        )
    return pick(
        rng,
        [
            f"Now the content is clear. The answer is {answer}.",
            f"The processed image is easy to read: it shows {answer}.",
            f"After the correction I can read it directly; the answer is {answer}.",
        ],
    )
