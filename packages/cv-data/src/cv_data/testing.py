"""Tiny, fast fakes for downstream tests (cv-agent, cv-bench, cv-train): small images, exact boxes."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ._vocab import font_paths, load_font
from .item import Item
from .rl import sample_transform
from .transforms import transform_item


def tiny_item(
    index: int = 0, seed: int = 0, *, transform: list[str] | None = None, size: tuple[int, int] = (96, 64)
) -> Item:
    """A small image with one short word whose box is exact; optional transforms applied.

    Example:
        >>> it = tiny_item(0, transform=["rotate_90"])
        >>> it.images[0].size, it.transform
        ((64, 96), ['rotate_90'])
    """
    rng = np.random.default_rng([seed, index, 42])
    word = "".join(chr(ord("A") + int(c)) for c in rng.integers(0, 26, size=3))
    im = Image.new("RGB", size, tuple(int(c) for c in rng.integers(200, 256, size=3)))
    draw = ImageDraw.Draw(im)
    font = load_font(font_paths("sans_bold")[0], 14)
    x, y = int(rng.integers(2, size[0] - 40)), int(rng.integers(2, size[1] - 20))
    draw.text((x, y), word, font=font, fill=(20, 20, 20))
    box = [float(v) for v in draw.textbbox((x, y), word, font=font)]
    item = Item(
        id=f"tiny-s{seed}-{index:04d}",
        images=[im],
        question="Which word is written in the image?",
        answer=word,
        bbox=box,
        data_source="synthetic/tiny",
        split="test",
        task_type="ocr",
        meta={"index": index},
    )
    return transform_item(item, transform) if transform else item


def tiny_items(num: int = 4, seed: int = 0, *, perturb: bool = True) -> list[Item]:
    """``num`` tiny items; with ``perturb`` each gets a sampled orientation transform (deterministic).

    Example:
        >>> len(tiny_items(3))
        3
    """
    out = []
    for i in range(num):
        ops = sample_transform(np.random.default_rng([seed, i, 43])) if perturb else []
        out.append(tiny_item(i, seed, transform=ops))
    return out


def tiny_sft_records(num: int = 2, seed: int = 0, sandbox: Any = None) -> list[dict[str, Any]]:
    """Single-tool SFT records on tiny images, executed for real in cv-sandbox (same layout as build_sft).

    Example:
        >>> recs = tiny_sft_records(1)
        >>> [m["role"] for m in recs[0]["messages"]]
        ['system', 'user', 'assistant', 'tool', 'assistant']
    """
    from cv_protocol import FLIP_OPS, ROTATE_OPS, corrective_ops
    from cv_sandbox import Sandbox, SandboxConfig

    from . import expert as ex
    from .sft import Conversation

    own = sandbox is None
    sb = sandbox or Sandbox(SandboxConfig(workers=1))
    out = []
    try:
        for i in range(num):
            rng = np.random.default_rng([seed, i, 44])
            item = tiny_item(
                i,
                seed,
                transform=[str(ex.pick(rng, [*ROTATE_OPS, FLIP_OPS[0]]))],
            )
            fix = corrective_ops(item.transform)[0]
            conv = Conversation(sb, item.images[0], item.question)
            conv.call(
                ex.orient_think(fix, rng),
                ex.orientation_code(fix, ex.pick(rng, ex.STYLES)),
                ex.orient_desc(fix),
                0,
            )
            conv.answer(ex.answer_think(item.answer, rng, after_tool=True), item.answer)
            out.append(
                conv.record(
                    id=f"tiny-sft-s{seed}-{i:04d}",
                    kind="single_tool",
                    data_source=item.data_source,
                    item_id=item.id,
                    answer=item.answer,
                    transform=item.transform,
                )
            )
    finally:
        if own:
            sb.close()
    return out
