"""Built-in synthetic data for the default CPU runs: tiny glyph images, real sandbox-executed tool turns.

Deliberately small and dependency-free (cv-data builds the real corpora): an image shows one big letter on a
tinted background, possibly rotated or flipped; the question asks which letter it is. SFT trajectories are
produced by really executing the corrective code in cv-sandbox, so tool images are genuine.
"""

from __future__ import annotations

import random
from typing import Any

from PIL import Image, ImageDraw, ImageFont

LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
#: transform applied to the image -> code that undoes it (SPEC: the corrective op of rotate_d is rotate_(360-d)).
_CORRECTIONS: dict[str, str] = {
    "rotate_90": "result = image.rotate(270, expand=True)",
    "rotate_180": "result = image.rotate(180, expand=True)",
    "rotate_270": "result = image.rotate(90, expand=True)",
    "flip_horizontal": "result = image.transpose(Image.FLIP_LEFT_RIGHT)",
    "flip_vertical": "result = image.transpose(Image.FLIP_TOP_BOTTOM)",
}
_APPLY: dict[str, Any] = {
    "rotate_90": lambda im: im.rotate(90, expand=True),
    "rotate_180": lambda im: im.rotate(180, expand=True),
    "rotate_270": lambda im: im.rotate(270, expand=True),
    "flip_horizontal": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "flip_vertical": lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
}


def glyph_image(letter: str, rng: random.Random, size: tuple[int, int] = (96, 64)) -> tuple[Image.Image, list[float]]:
    """An RGB image with ``letter`` drawn large; returns the image and the letter's bbox."""
    bg = tuple(rng.randint(170, 255) for _ in range(3))
    im = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=40)
    x, y = rng.randint(8, size[0] - 40), rng.randint(4, size[1] - 48)
    draw.text((x, y), letter, fill=(rng.randint(0, 60),) * 3, font=font)
    box = draw.textbbox((x, y), letter, font=font)
    return im, [float(v) for v in box]


def _transform_bbox(bbox: list[float], size: tuple[int, int], op: str) -> list[float]:
    w, h = size
    x1, y1, x2, y2 = bbox
    if op == "rotate_90":  # counter-clockwise: (x, y) -> (y, w - x)
        return [y1, w - x2, y2, w - x1]
    if op == "rotate_180":
        return [w - x2, h - y2, w - x1, h - y1]
    if op == "rotate_270":
        return [h - y2, x1, h - y1, x2]
    if op == "flip_horizontal":
        return [w - x2, y1, w - x1, y2]
    if op == "flip_vertical":
        return [x1, h - y2, x2, h - y1]
    return bbox


def synthetic_rl_items(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` RL items as plain dicts (cv-data ``Item`` fields) with one orientation perturbation each.

    Example:
        >>> item = synthetic_rl_items(1)[0]
        >>> sorted(item)[:4], item["answer"] in LETTERS
        (['answer', 'bbox', 'choices', 'data_source'], True)
    """
    rng = random.Random(seed)
    ops = [*_CORRECTIONS, None]
    items = []
    for i in range(n):
        letter = rng.choice(LETTERS)
        image, bbox = glyph_image(letter, rng)
        op = ops[i % len(ops)]
        transform: list[str] = []
        if op is not None:
            bbox = _transform_bbox(bbox, image.size, op)
            image = _APPLY[op](image)
            transform = [op]
        items.append({
            "id": f"glyph-{seed}-{i}", "images": [image], "question": "Which capital letter is shown in the image?",
            "answer": letter, "transform": transform, "bbox": bbox, "data_source": "cv_train.synthetic",
            "task_type": "ocr", "choices": None,
        })
    return items


def _assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def synthetic_sft_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` SFT trajectories in cv-data's record format, tool outputs produced by the real sandbox.

    Kinds cycle through single-tool, no-tool and error-handling.

    Example:
        >>> rec = synthetic_sft_records(1)[0]
        >>> [m["role"] for m in rec["messages"]]
        ['system', 'user', 'assistant', 'tool', 'assistant']
    """
    from cv_sandbox import SYSTEM_PROMPT, Sandbox, render_tool_call, tool_response_text

    records = []
    items = [it for it in synthetic_rl_items(n * 2, seed) if it["transform"]][:n]
    with Sandbox() as sandbox:
        for i, item in enumerate(items):
            kind = ("single-tool", "no-tool", "error-handling")[i % 3]
            images = list(item["images"])
            messages: list[dict[str, Any]] = [
                {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item["question"]}]},
            ]
            op = item["transform"][0]
            if kind == "error-handling":
                bad = "result = image.rotate(angle, expand=True)"
                res = sandbox.run(bad, images, 0)
                messages.append(_assistant(
                    "<think>The image looks transformed; let me fix it.</think>\n"
                    + render_tool_call(bad, "Undo the perturbation.", 0)))
                messages.append({"role": "tool", "content": [{"type": "text", "text": tool_response_text(res, None)}]})
            if kind != "no-tool":
                code = _CORRECTIONS[op]
                res = sandbox.run(code, images, 0)
                if not res.ok or res.image is None:
                    raise RuntimeError(f"synthetic correction failed: {res.error}")
                images.append(res.image)
                messages.append(_assistant(
                    f"<think>The image has a {op} perturbation; undo it before reading.</think>\n"
                    + render_tool_call(code, f"Undo {op}.", 0)))
                messages.append({"role": "tool", "content": [
                    {"type": "image"}, {"type": "text", "text": tool_response_text(res, len(images) - 1)}]})
            messages.append(_assistant(f"<think>The letter is readable now.</think>\n<answer>{item['answer']}</answer>"))
            records.append({"id": f"sft-{item['id']}", "kind": kind, "data_source": "cv_train.synthetic",
                            "messages": messages, "images": images})
    return records

