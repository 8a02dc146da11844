"""Built-in synthetic sources with exact ground truth and answer boxes: documents, charts, dense scenes.

Everything is rendered locally with fonts that ship with matplotlib (DejaVu, STIX), so no downloads are
needed. Each generator is deterministic in ``(seed, index)``: item ``i`` is the same whatever ``num`` or
``start`` is, which makes parallel generation reproducible.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ._charts import FAMILIES, ChartSpec, draw_chart
from ._vocab import (
    CATEGORIES,
    CHART_TOPICS,
    COMPANIES,
    COMPANY_SUFFIX,
    FIRST_NAMES,
    LAST_NAMES,
    NOTE_TITLES,
    PRODUCTS,
    WORDS,
    font_paths,
    load_font,
)
from .item import Item
from .toy import make_toy_item

Box = list[float]


def item_rng(seed: int, index: int, tag: str) -> np.random.Generator:
    """The generator for item ``index`` of source ``tag`` under ``seed`` (independent of batch layout)."""
    return np.random.default_rng([seed, index, sum(map(ord, tag))])


def _union(boxes: list[Box]) -> Box:
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def _pad(box: Box, p: float, size: tuple[int, int]) -> Box:
    w, h = size
    return [max(0.0, box[0] - p), max(0.0, box[1] - p), min(float(w), box[2] + p), min(float(h), box[3] + p)]


def _pick(rng: np.random.Generator, seq: list[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


def _font(rng: np.random.Generator, style: str, size: int):
    return load_font(_pick(rng, list(font_paths(style))), int(size))


def _paper(
    rng: np.random.Generator, w: int, h: int, base: tuple[int, int, int], grain: float | None = None
) -> Image.Image:
    """Paper-like background: a soft lighting gradient plus fine grain (standard deviation ``grain``,
    default 1-3.5), so pages do not look flat."""
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    k = np.float32(rng.uniform(0.03, 0.12))
    sigma = np.float32(rng.uniform(1.0, 3.5) if grain is None else grain)
    # The gradient is separable: two 1-D falloffs broadcast into the image (no full-size coordinate grids).
    fx = ((np.arange(w, dtype=np.float32) - np.float32(cx)) / np.float32(w)) ** 2
    fy = ((np.arange(h, dtype=np.float32) - np.float32(cy)) / np.float32(h)) ** 2
    light = np.float32(1.0) - k * (fy[:, None] + fx[None, :])
    noise = _grain(rng, w, h) * sigma
    out = np.empty((h, w, 3), dtype=np.uint8)
    chan = np.empty((h, w), dtype=np.float32)
    for c in range(3):  # one channel at a time: a third of the float temporaries
        np.multiply(light, np.float32(base[c]), out=chan)
        chan += noise
        np.clip(chan, 0, 255, out=chan)
        out[..., c] = chan
    return Image.fromarray(out, "RGB")


_GRAIN_TILE = 1024


@functools.cache
def _grain_tile() -> np.ndarray:
    return np.random.default_rng(20240611).standard_normal((_GRAIN_TILE, _GRAIN_TILE), dtype=np.float32)


def _grain(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Unit Gaussian grain of size ``h x w``: a fixed 1024-pixel tile at an offset drawn from ``rng`` (drawing
    millions of fresh normals per image cost more than the rest of the page; a 1024-pixel period is
    invisible in grain this fine)."""
    oy, ox = (int(v) for v in rng.integers(0, _GRAIN_TILE, size=2))
    tile = np.roll(_grain_tile(), (oy, ox), axis=(0, 1))
    reps = (h // _GRAIN_TILE + 1, w // _GRAIN_TILE + 1)
    return np.tile(tile, reps)[:h, :w]


def _blur(img: Image.Image, radius: float) -> Image.Image:
    """Gaussian blur of standard deviation ``radius`` (OpenCV: several times faster than Pillow's on the
    multi-megapixel scenes)."""
    if radius <= 0.05:
        return img
    import cv2

    arr = cv2.GaussianBlur(np.asarray(img), (0, 0), sigmaX=float(radius), borderType=cv2.BORDER_REFLECT)
    return Image.fromarray(arr, img.mode)


def _ink(rng: np.random.Generator) -> tuple[int, int, int]:
    return _pick(rng, [(20, 20, 20), (35, 35, 50), (15, 30, 70), (60, 40, 30), (40, 40, 40)])


def _sentence_words(rng: np.random.Generator, n: int) -> list[str]:
    return [str(_pick(rng, WORDS)) for _ in range(n)]


# ------------------------------------------------------------------ documents


def make_document_item(index: int, seed: int = 0, split: str = "train") -> Item:
    """One rendered document page (invoice/letter style) with an OCR question and exact answer box.

    Example:
        >>> it = make_document_item(0, seed=1)
        >>> it.task_type in ("ocr", "math") and it.bbox is not None
        True
    """
    rng = item_rng(seed, index, "document")
    w = int(rng.integers(620, 1100))
    h = int(w * rng.uniform(1.15, 1.45))
    paper = _pick(rng, [(250, 249, 244), (244, 240, 228), (236, 236, 236), (252, 252, 252), (240, 244, 248)])
    img = _paper(rng, w, h, paper)
    draw = ImageDraw.Draw(img)
    ink = _ink(rng)
    accent = _pick(rng, [(30, 70, 140), (140, 30, 40), (20, 110, 80), (90, 60, 140), ink])
    body_style = _pick(rng, ["sans", "serif", "condensed", "mono"])
    margin = int(w * rng.uniform(0.06, 0.12))
    y = int(h * rng.uniform(0.04, 0.08))

    company = f"{_pick(rng, COMPANIES)} {_pick(rng, COMPANY_SUFFIX)}"
    title_font = _font(rng, _pick(rng, ["sans_bold", "serif_bold"]), int(w * rng.uniform(0.035, 0.05)))
    draw.text((margin, y), company, font=title_font, fill=accent)
    y = draw.textbbox((margin, y), company, font=title_font)[3] + int(h * 0.02)
    if rng.random() < 0.7:
        draw.line([(margin, y), (w - margin, y)], fill=accent, width=int(rng.integers(1, 4)))
        y += int(h * 0.02)

    # Key-value fields: exact values to read.
    fsize = int(w * rng.uniform(0.018, 0.026))
    key_font = _font(rng, _pick(rng, ["sans_bold", "serif_bold", "mono_bold"]), fsize)
    val_font = _font(rng, body_style, fsize)
    doc_no = f"{_pick(rng, ['INV', 'PO', 'REF', 'ORD'])}-{int(rng.integers(10000, 99999))}"
    day = f"{int(rng.integers(2015, 2026))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
    subtotal = round(float(rng.integers(1000, 500000)) / 100, 2)
    tax = round(subtotal * float(_pick(rng, [0.05, 0.07, 0.08, 0.1, 0.2])), 2)
    fields = [
        ("Document No.", doc_no),
        ("Date", day),
        ("Customer", f"{_pick(rng, FIRST_NAMES)} {_pick(rng, LAST_NAMES)}"),
        ("Subtotal", f"{subtotal:.2f}"),
        ("Tax", f"{tax:.2f}"),
        (
            "Phone",
            f"+{int(rng.integers(1, 99))} {int(rng.integers(100, 999))} {int(rng.integers(1000, 9999))}",
        ),
    ]
    order = rng.permutation(len(fields))
    fields = [fields[i] for i in order]
    key_w = max(draw.textbbox((0, 0), k + ":", font=key_font)[2] for k, _ in fields) + fsize
    field_boxes: dict[str, tuple[str, Box]] = {}
    for key, val in fields:
        draw.text((margin, y), key + ":", font=key_font, fill=ink)
        vb = draw.textbbox((margin + key_w, y), val, font=val_font)
        draw.text((margin + key_w, y), val, font=val_font, fill=ink)
        field_boxes[key] = (val, [float(v) for v in vb])
        y = max(vb[3], draw.textbbox((margin, y), key, font=key_font)[3]) + int(fsize * 0.6)
    y += int(h * 0.02)

    # Body text lines.
    bsize = int(w * rng.uniform(0.017, 0.028))
    bfont = _font(rng, body_style, bsize)
    lines: list[tuple[str, Box, list[tuple[str, Box]]]] = []
    line_gap = int(bsize * rng.uniform(0.35, 0.8))
    while y + bsize * 2 < h - margin:
        words: list[str] = []
        x_end = margin
        while True:
            cand = str(_pick(rng, WORDS))
            trial = " ".join([*words, cand])
            if draw.textlength(trial, font=bfont) > w - 2 * margin:
                break
            words.append(cand)
            x_end = margin + draw.textlength(trial, font=bfont)
        if not words:
            break
        if not lines or rng.random() < 0.15:
            words[0] = words[0].capitalize()
        text = " ".join(words)
        draw.text((margin, y), text, font=bfont, fill=ink)
        lb = [float(v) for v in draw.textbbox((margin, y), text, font=bfont)]
        wboxes: list[tuple[str, Box]] = []
        for k, word in enumerate(words):
            x0 = margin + (draw.textlength(" ".join(words[:k]) + " ", font=bfont) if k else 0)
            wboxes.append((word, [float(v) for v in draw.textbbox((x0, y), word, font=bfont)]))
        lines.append((text, lb, wboxes))
        y = int(lb[3]) + line_gap
        if rng.random() < 0.12:
            y += bsize  # paragraph break
        del x_end

    kind = _pick(rng, ["field", "field", "line", "count", "locate", "sum"])
    meta: dict[str, Any] = {"question_kind": kind, "source_seed": seed, "index": index}
    task = "ocr"
    counts: dict[str, list[Box]] = {}
    for _, _, wb in lines:
        for word, b in wb:
            counts.setdefault(word.lower(), []).append(b)
    if kind == "count":
        cands = sorted(k for k, v in counts.items() if 2 <= len(v) <= 5)
        if not cands:
            kind = "field"
        else:
            word = str(_pick(rng, cands))
            question = f'How many times does the word "{word}" appear in the body text (ignore case)?'
            answer, bbox = str(len(counts[word])), None
    if kind in ("line", "locate"):
        firsts: dict[str, int] = {}
        for i, (text, _, _) in enumerate(lines):
            key = " ".join(text.split()[:3])
            firsts[key] = -1 if key in firsts else i
        uniq = [i for i in firsts.values() if i >= 0]
        uniq_words = sorted(k for k, v in counts.items() if len(v) == 1 and len(k) > 3)
        if kind == "line" and uniq:
            i = int(_pick(rng, uniq))
            text, lb, _ = lines[i]
            question = (
                f'Transcribe the complete line of body text that begins with "{" ".join(text.split()[:3])}".'
            )
            answer, bbox = text, lb
        elif kind == "locate" and uniq_words:
            word = str(_pick(rng, uniq_words))
            li = next(i for i, (_, _, wb) in enumerate(lines) if any(x.lower() == word for x, _ in wb))
            question = (
                f"Counting the body-text lines from 1 at the top, on which line does the word "
                f'"{word}" appear? Answer with the number.'
            )
            answer, bbox = str(li + 1), lines[li][1]
        else:
            kind = "field"
    if kind == "sum":
        task = "math"
        total = round(subtotal + tax, 2)
        question = (
            "What is the Subtotal plus the Tax shown on this document? Give the number with two decimals."
        )
        answer = f"{total:.2f}"
        bbox = _union([field_boxes["Subtotal"][1], field_boxes["Tax"][1]])
    if kind == "field":
        key = str(_pick(rng, [k for k, _ in fields]))
        question = f"What is the {key} written on this document?"
        answer, bbox = field_boxes[key]
    meta["question_kind"] = kind
    if bbox is not None:
        bbox = _pad(bbox, 2, img.size)
    return Item(
        id=f"doc-s{seed}-{index:06d}",
        images=[img],
        question=question,
        answer=answer,
        transform=[],
        bbox=bbox,
        data_source="synthetic/document",
        split=split,
        task_type=task,
        meta=meta,
    )


# --------------------------------------------------------------------- charts


def _fmt(v: float, decimals: int) -> str:
    return f"{v:.{decimals}f}"


def make_chart_item(index: int, seed: int = 0, split: str = "train") -> Item:
    """One chart (bar, horizontal bar or line) with labelled values and a question about them.

    Drawn with Pillow in matplotlib's style (:mod:`cv_data._charts`), which is ~20x faster than
    matplotlib and gives every value's exact pixel box.

    Example:
        >>> it = make_chart_item(0, seed=1)
        >>> it.data_source
        'synthetic/chart'
    """
    rng = item_rng(seed, index, "chart")
    group = str(_pick(rng, sorted(CATEGORIES)))
    pool = CATEGORIES[group]
    n = int(rng.integers(4, min(9, len(pool)) + 1))
    start = int(rng.integers(0, len(pool) - n + 1))
    cats = (
        pool[start : start + n]
        if group in ("months", "years")
        else [pool[i] for i in sorted(rng.choice(len(pool), n, replace=False))]
    )
    decimals = int(_pick(rng, [0, 0, 1]))
    scale = float(_pick(rng, [10, 50, 100, 1000]))
    vals = [round(float(v), decimals) for v in rng.uniform(0.1, 1.0, size=n) * scale]
    # Distinct values keep "which is highest" questions unambiguous.
    while len(set(vals)) < n:
        vals = [round(float(v), decimals) for v in rng.uniform(0.1, 1.0, size=n) * scale]
    chart = str(_pick(rng, ["bar", "barh", "line"] if group in ("months", "years") else ["bar", "barh"]))
    dpi = int(rng.integers(80, 131))
    size = (round(float(rng.uniform(5.0, 9.0)) * dpi), round(float(rng.uniform(3.6, 6.0)) * dpi))
    bg = _pick(rng, ["white", "#fbfbf8", "#f4f6fa", "#fffdf5"])
    face = _pick(rng, [bg, "white", "#f0f0f0"])
    palette = [
        "#4C72B0",
        "#DD8452",
        "#55A868",
        "#C44E52",
        "#8172B3",
        "#937860",
        "#DA8BC3",
        "#2a9d8f",
        "#e76f51",
    ]
    color = _pick(rng, palette)
    family = _pick(rng, list(FAMILIES))
    fs = float(rng.uniform(7.5, 11.0))
    labels = [_fmt(v, decimals) for v in vals]
    colors = (color,) if chart != "bar" or rng.random() < 0.6 else tuple(palette[:n])
    topic = str(_pick(rng, CHART_TOPICS[group]))
    spec = ChartSpec(
        kind=chart,
        categories=list(cats),
        values=vals,
        labels=labels,
        size=size,
        dpi=dpi,
        font_pt=fs,
        family=family,
        title=topic,
        title_loc=_pick(rng, ["center", "left"]),
        background=bg,
        face=face,
        colors=colors,
        bar_width=float(rng.uniform(0.5, 0.85)),
        line_width=float(rng.uniform(1.2, 2.6)),
        marker=_pick(rng, ["o", "s", "D", "^"]),
        grid=bool(rng.random() < 0.5),
        spines=bool(rng.random() < 0.3),
        rotate_labels=n > 6 and chart == "bar",
    )
    img, boxes = draw_chart(spec)

    def box_of(i: int) -> Box:
        return boxes[i]

    kind = str(_pick(rng, ["value", "value", "max", "min", "diff"]))
    task, choices, bbox = "chart", None, None
    if kind == "value":
        i = int(rng.integers(n))
        question = f'In the chart "{topic}", what is the value shown for {cats[i]}?'
        answer, bbox = labels[i], box_of(i)
    elif kind in ("max", "min"):
        i = int(np.argmax(vals) if kind == "max" else np.argmin(vals))
        word = "highest" if kind == "max" else "lowest"
        question = f'Which category has the {word} value in the chart "{topic}"?'
        answer, bbox = cats[i], box_of(i)
        if rng.random() < 0.5:
            others = [c for c in cats if c != cats[i]]
            opts = [
                cats[i],
                *[others[j] for j in rng.choice(len(others), min(3, len(others)), replace=False)],
            ]
            opts = [opts[j] for j in rng.permutation(len(opts))]
            choices = opts
            letter = "ABCD"[opts.index(cats[i])]
            question += "\n" + "\n".join(f"{'ABCD'[j]}. {o}" for j, o in enumerate(opts))
            answer = letter
    else:
        i, j = (int(v) for v in rng.choice(n, 2, replace=False))
        task = "math"
        question = f'In the chart "{topic}", what is the difference between {cats[i]} and {cats[j]} (larger minus smaller)?'
        answer = _fmt(abs(vals[i] - vals[j]), decimals)
        bbox = _union([box_of(i), box_of(j)])
    meta = {
        "question_kind": kind,
        "chart": chart,
        "values": dict(zip(cats, labels, strict=True)),
        "source_seed": seed,
        "index": index,
    }
    return Item(
        id=f"chart-s{seed}-{index:06d}",
        images=[img],
        question=question,
        answer=answer,
        transform=[],
        bbox=bbox,
        data_source="synthetic/chart",
        split=split,
        task_type=task,
        choices=choices,
        meta=meta,
    )


# --------------------------------------------------------------------- scenes


def _wall(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    base = _pick(rng, [(196, 180, 160), (170, 186, 196), (214, 206, 190), (150, 160, 150), (205, 190, 200)])
    return _blur(_paper(rng, w, h, base), 0.6)


def _scene_shelf(rng: np.random.Generator, w: int, h: int):
    img = _wall(rng, w, h)
    draw = ImageDraw.Draw(img)
    rows = int(rng.integers(3, 6))
    row_h = h / rows
    names = [PRODUCTS[i] for i in rng.permutation(len(PRODUCTS))]
    targets = []
    k = 0
    wood = _pick(rng, [(120, 84, 52), (150, 110, 70), (90, 70, 55), (180, 180, 185)])
    tag_size = int(rng.integers(10, 14))
    for r in range(rows):
        shelf_y = int((r + 1) * row_h - row_h * 0.12)
        draw.rectangle([0, shelf_y, w, shelf_y + int(row_h * 0.06)], fill=wood)
        draw.rectangle(
            [0, shelf_y + int(row_h * 0.06), w, shelf_y + int(row_h * 0.08)],
            fill=tuple(max(0, c - 40) for c in wood),
        )
        x = int(rng.integers(10, 40))
        while k < len(names):
            pw = int(rng.uniform(0.07, 0.13) * w)
            ph = int(rng.uniform(0.45, 0.75) * row_h)
            if x + pw > w - 10:
                break
            col = tuple(int(c) for c in rng.integers(30, 230, size=3))
            top = shelf_y - ph
            if rng.random() < 0.5:
                draw.rounded_rectangle(
                    [x, top, x + pw, shelf_y],
                    radius=int(pw * 0.15),
                    fill=col,
                    outline=tuple(max(0, c - 50) for c in col),
                    width=2,
                )
            else:
                draw.rectangle(
                    [x, top, x + pw, shelf_y], fill=col, outline=tuple(max(0, c - 50) for c in col), width=2
                )
            light = sum(col) > 380
            name = names[k]
            nfont = _font(
                rng,
                _pick(rng, ["sans_bold", "condensed", "serif_bold"]),
                max(11, int(pw / max(6, len(name)) * 1.35)),
            )
            band_y = top + int(ph * rng.uniform(0.25, 0.5))
            draw.rectangle(
                [x + 3, band_y - 2, x + pw - 3, band_y + nfont.size + 6],
                fill=(245, 245, 240) if not light else (40, 40, 40),
            )
            draw.text((x + 6, band_y), name, font=nfont, fill=(20, 20, 20) if not light else (240, 240, 240))
            # The price tag on the shelf edge: small text, the reason a zoom is needed.
            price = f"${int(rng.integers(0, 20))}.{int(rng.integers(0, 100)):02d}"
            tfont = _font(rng, _pick(rng, ["sans", "mono", "condensed"]), tag_size)
            tb = draw.textbbox((0, 0), price, font=tfont)
            tx, ty = x + int((pw - (tb[2] - tb[0])) / 2), shelf_y + 2
            draw.rectangle(
                [tx - 3, ty - 1, tx + tb[2] - tb[0] + 3, ty + tb[3] + 1],
                fill=_pick(rng, [(255, 250, 210), (255, 255, 255), (255, 230, 120)]),
            )
            pb = [float(v) for v in draw.textbbox((tx, ty), price, font=tfont)]
            draw.text((tx, ty), price, font=tfont, fill=(10, 10, 10))
            targets.append(
                {
                    "question": f'What price is shown on the shelf tag below the "{name}" product?',
                    "answer": price,
                    "bbox": pb,
                    "name": name,
                }
            )
            x += pw + int(rng.integers(8, 40))
            k += 1
    return img, targets


def _scene_board(rng: np.random.Generator, w: int, h: int):
    base = _pick(rng, [(176, 134, 92), (160, 120, 80), (200, 200, 198), (60, 80, 70)])
    img = _blur(_paper(rng, w, h, base, grain=10.0), 0.8)  # coarse grain: cork texture
    draw = ImageDraw.Draw(img)
    titles = [NOTE_TITLES[i] for i in rng.permutation(len(NOTE_TITLES))]
    targets = []
    cols = int(rng.integers(4, 7))
    rows = int(rng.integers(3, 5))
    cw, ch = w / cols, h / rows
    k = 0
    small = int(rng.integers(9, 13))
    for r in range(rows):
        for c in range(cols):
            if k >= len(titles) or rng.random() < 0.15:
                continue
            nw, nh = int(cw * rng.uniform(0.6, 0.85)), int(ch * rng.uniform(0.55, 0.8))
            x = int(c * cw + rng.uniform(0.03, 0.97) * (cw - nw))
            y = int(r * ch + rng.uniform(0.03, 0.97) * (ch - nh))
            col = _pick(
                rng,
                [
                    (255, 240, 120),
                    (255, 190, 200),
                    (180, 230, 255),
                    (190, 250, 180),
                    (255, 210, 150),
                    (250, 250, 250),
                ],
            )
            draw.rectangle([x + 4, y + 5, x + nw + 4, y + nh + 5], fill=(50, 40, 30))  # shadow
            draw.rectangle([x, y, x + nw, y + nh], fill=col)
            draw.ellipse(
                [x + nw // 2 - 6, y + 2, x + nw // 2 + 6, y + 14],
                fill=_pick(rng, [(200, 30, 30), (30, 60, 200), (30, 150, 60)]),
            )
            title = titles[k]
            tfont = _font(
                rng,
                _pick(rng, ["sans_bold", "serif_bold", "condensed"]),
                max(12, min(22, int(nw / max(8, len(title)) * 1.6))),
            )
            draw.text((x + 8, y + 18), title, font=tfont, fill=(30, 30, 40))
            when = f"{_pick(rng, ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'])} {int(rng.integers(7, 20)):02d}:{_pick(rng, ['00', '15', '30', '45'])}"
            room = f"Room {int(rng.integers(1, 9))}{_pick(rng, list('ABCDEF'))}"
            sfont = _font(rng, _pick(rng, ["sans", "mono", "serif_italic"]), small)
            ly = y + 18 + tfont.size + 10
            wb = [float(v) for v in draw.textbbox((x + 8, ly), when, font=sfont)]
            draw.text((x + 8, ly), when, font=sfont, fill=(40, 40, 60))
            ly2 = int(wb[3]) + 4
            rb = [float(v) for v in draw.textbbox((x + 8, ly2), room, font=sfont)]
            draw.text((x + 8, ly2), room, font=sfont, fill=(40, 40, 60))
            for _ in range(int(rng.integers(0, 3))):  # scribbled filler words
                ly2 += small + 6
                if ly2 + small > y + nh - 4:
                    break
                draw.text((x + 8, ly2), " ".join(_sentence_words(rng, 2)), font=sfont, fill=(90, 90, 100))
            if rb[2] > x + nw or rb[3] > y + nh:
                continue
            targets.append(
                {
                    "question": f'On the note titled "{title}", what day and time are written?',
                    "answer": when,
                    "bbox": wb,
                    "name": title,
                }
            )
            targets.append(
                {
                    "question": f'Which room is written on the note titled "{title}"?',
                    "answer": room,
                    "bbox": rb,
                    "name": title,
                }
            )
            k += 1
    return img, targets


def make_scene_item(index: int, seed: int = 0, split: str = "train") -> Item:
    """One large, dense scene (store shelf or notice board) whose answer is small text: needs a crop.

    The item's ``transform`` is ``["crop"]`` and ``bbox`` is the small answer text.

    Example:
        >>> it = make_scene_item(0, seed=1)
        >>> it.transform
        ['crop']
    """
    rng = item_rng(seed, index, "scene")
    w = int(rng.integers(1400, 2200))
    h = int(w * rng.uniform(0.6, 0.8))
    style = str(_pick(rng, ["shelf", "board"]))
    img, targets = (_scene_shelf if style == "shelf" else _scene_board)(rng, w, h)
    img = _blur(img, float(rng.uniform(0.0, 0.5)))
    t = targets[int(rng.integers(len(targets)))]
    bbox = _pad(t["bbox"], 2, img.size)
    meta = {
        "question_kind": "small_text",
        "scene": style,
        "target": t["name"],
        "source_seed": seed,
        "index": index,
    }
    return Item(
        id=f"scene-s{seed}-{index:06d}",
        images=[img],
        question=t["question"],
        answer=t["answer"],
        transform=["crop"],
        bbox=bbox,
        data_source="synthetic/scene",
        split=split,
        task_type="ocr",
        meta=meta,
    )


def _many(fn: Callable[[int, int, str], Item]) -> Callable[..., list[Item]]:
    def make(num: int, seed: int = 0, *, start: int = 0, split: str = "train") -> list[Item]:
        if num < 0:
            raise ValueError(f"num must be >= 0, got {num}")
        return [fn(i, seed, split) for i in range(start, start + num)]

    make.__name__ = fn.__name__.replace("_item", "_items")
    make.__doc__ = f"``num`` items from :func:`{fn.__name__}` (indices ``start .. start+num-1``)."
    return make


make_document_items = _many(make_document_item)
make_chart_items = _many(make_chart_item)
make_scene_items = _many(make_scene_item)

#: Synthetic sources by name: ``name -> (index, seed, split) -> Item``.
SOURCES: dict[str, Callable[[int, int, str], Item]] = {
    "document": make_document_item,
    "chart": make_chart_item,
    "scene": make_scene_item,
    "toy": make_toy_item,
}
