"""Bar, horizontal-bar and line charts drawn directly with Pillow, with the exact pixel box of every value.

matplotlib spent about 90 ms per chart (a figure, axes and tick machinery built for each one, and a
tight-layout pass that draws everything twice) on images that take 4 ms to encode; drawing the few
elements a chart question needs (axes, ticks, grid, bars or a line, value labels, title) takes a few ms.
The look follows matplotlib's defaults (tick and label sizes in points at the figure's dpi).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw

from ._vocab import font_paths, load_font

Box = list[float]

#: Chart font families: name -> (style, file-name prefix).
FAMILIES: dict[str, tuple[str, str]] = {
    "DejaVu Sans": ("sans", "DejaVuSans"),
    "DejaVu Serif": ("serif", "DejaVuSerif"),
    "STIXGeneral": ("serif", "STIXGeneral"),
    "DejaVu Sans Mono": ("mono", "DejaVuSansMono"),
}


@dataclass
class ChartSpec:
    """What to draw.

    Attributes:
        kind: ``"bar"``, ``"barh"`` or ``"line"``.
        categories: Category names (x axis; y axis for ``barh``, first at the bottom).
        values: One value per category (non-negative).
        labels: The value label drawn at each bar / point.
        size: Canvas ``(width, height)`` in pixels.
        dpi: Pixels per inch (font sizes are in points).
        font_pt: Tick and label font size in points; the title is 1.3 times larger.
        family: A key of :data:`FAMILIES`.
        title: Chart title; ``title_loc`` ``"center"`` or ``"left"``.
        background: Figure colour; ``face``: the axes' colour.
        colors: One bar colour per category (``bar``), or the single colour at ``colors[0]``.
        bar_width: Bar width as a fraction of a category slot.
        line_width: Line width in points (``line``); ``marker``: ``o``, ``s``, ``D`` or ``^``.
        grid: Draw grid lines along the value axis.
        spines: Draw the top and right spines too.
        rotate_labels: Rotate the category labels by 30 degrees (many bars).
    """

    kind: str
    categories: list[str]
    values: list[float]
    labels: list[str]
    size: tuple[int, int]
    dpi: int
    font_pt: float
    family: str
    title: str
    title_loc: str = "center"
    background: str = "white"
    face: str = "white"
    colors: tuple[str, ...] = ("#4C72B0",)
    bar_width: float = 0.8
    line_width: float = 1.5
    marker: str = "o"
    grid: bool = False
    spines: bool = False
    rotate_labels: bool = False


def _rgb(color: str) -> tuple[int, int, int]:
    if color == "white":
        return (255, 255, 255)
    c = color.lstrip("#")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16))


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], alpha: float) -> tuple[int, int, int]:
    return tuple(round(x * alpha + y * (1 - alpha)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _font(family: str, px: int):
    style, prefix = FAMILIES[family]
    path = next(
        (p for p in font_paths(style) if p.rsplit("/", 1)[-1].startswith(prefix)), font_paths(style)[0]
    )
    return load_font(path, max(6, px))


def nice_ticks(vmax: float, target: int = 5) -> list[float]:
    """Round tick values from 0 up to ``vmax`` (steps of 1, 2, 2.5 or 5 times a power of ten).

    Example:
        >>> nice_ticks(115.0)
        [0.0, 25.0, 50.0, 75.0, 100.0]
    """
    raw = vmax / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [round(k * step, 10) for k in range(int(vmax / step + 1e-9) + 1)]


def _tick_text(v: float, ticks: list[float]) -> str:
    if all(float(t).is_integer() for t in ticks):
        return str(int(v))
    return f"{v:.1f}"


def draw_chart(spec: ChartSpec) -> tuple[Image.Image, list[Box]]:
    """Draw the chart; return the image and, per category, the box of its value label and bar (or point).

    Example:
        >>> spec = ChartSpec("bar", ["a", "b"], [1.0, 2.0], ["1", "2"], (320, 240), 80, 10, "DejaVu Sans", "t")
        >>> img, boxes = draw_chart(spec)
        >>> img.size, len(boxes)
        ((320, 240), 2)
    """
    w, h = spec.size
    px = spec.dpi / 72.0
    bg, face = _rgb(spec.background), _rgb(spec.face)
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    font = _font(spec.family, round(spec.font_pt * px))
    tfont = _font(spec.family, round(spec.font_pt * 1.3 * px))
    pad, tick, gap = round(6 * px), round(3.5 * px), round(3.5 * px)
    n = len(spec.categories)
    horizontal = spec.kind == "barh"
    headroom = {"bar": 1.15, "barh": 1.18, "line": 1.2}[spec.kind]
    vmax = max(spec.values) * headroom
    ticks = [t for t in nice_ticks(vmax) if t <= vmax]
    tick_texts = [_tick_text(t, ticks) for t in ticks]
    text_h = font.getbbox("0Ay")[3]

    # Axes rectangle: leave room for the title, the tick labels and the category labels.
    top = pad + tfont.getbbox(spec.title)[3] + round(6 * px)
    right = w - pad
    if horizontal:
        left = pad + max(font.getlength(c) for c in spec.categories) + tick + gap
        bottom = h - pad - text_h - tick - gap
    else:
        left = pad + max(font.getlength(t) for t in tick_texts) + tick + gap
        if spec.rotate_labels:
            longest = max(font.getlength(c) for c in spec.categories)
            label_h = longest * math.sin(math.radians(30)) + text_h * math.cos(math.radians(30))
        else:
            label_h = text_h
        bottom = h - pad - label_h - tick - gap
    left, bottom = round(left), round(bottom)
    d.rectangle([left, top, right, bottom], fill=face)

    def vpos(v: float) -> float:  # value -> pixel along the value axis
        if horizontal:
            return left + v / vmax * (right - left)
        return bottom - v / vmax * (bottom - top)

    slot = ((bottom - top) if horizontal else (right - left)) / n

    def cpos(k: int) -> float:  # category -> pixel centre along the category axis
        return bottom - (k + 0.5) * slot if horizontal else left + (k + 0.5) * slot

    ink, grid = (38, 38, 38), _blend((176, 176, 176), face, 0.3)
    for t, text in zip(ticks, tick_texts, strict=True):
        p = vpos(t)
        if horizontal:
            if spec.grid:
                d.line([(p, top), (p, bottom)], fill=grid, width=max(1, round(0.8 * px)))
            d.line([(p, bottom), (p, bottom + tick)], fill=ink, width=1)
            d.text((p, bottom + tick + gap), text, font=font, fill=ink, anchor="mt")
        else:
            if spec.grid:
                d.line([(left, p), (right, p)], fill=grid, width=max(1, round(0.8 * px)))
            d.line([(left - tick, p), (left, p)], fill=ink, width=1)
            d.text((left - tick - gap, p), text, font=font, fill=ink, anchor="rm")

    marks = _draw_values(spec, d, vpos, cpos, slot, px, bottom, left)
    for k, cat in enumerate(spec.categories):
        c = cpos(k)
        if horizontal:
            d.line([(left - tick, c), (left, c)], fill=ink, width=1)
            d.text((left - tick - gap, c), cat, font=font, fill=ink, anchor="rm")
        else:
            d.line([(c, bottom), (c, bottom + tick)], fill=ink, width=1)
            if spec.rotate_labels:
                _rotated_text(img, (c, bottom + tick + gap), cat, font, ink)
            else:
                d.text((c, bottom + tick + gap), cat, font=font, fill=ink, anchor="mt")

    spine = max(1, round(0.8 * px))
    d.line([(left, top), (left, bottom)], fill=ink, width=spine)
    d.line([(left, bottom), (right, bottom)], fill=ink, width=spine)
    if spec.spines:
        d.line([(left, top), (right, top)], fill=ink, width=spine)
        d.line([(right, top), (right, bottom)], fill=ink, width=spine)
    tx = (left + right) / 2 if spec.title_loc == "center" else left
    d.text(
        (tx, pad), spec.title, font=tfont, fill=(0, 0, 0), anchor="mt" if spec.title_loc == "center" else "lt"
    )

    boxes = []
    for k, label in enumerate(spec.labels):
        lx, ly, anchor = _label_at(spec, k, vpos, cpos, px)
        lb = d.textbbox((lx, ly), label, font=font, anchor=anchor)
        d.text((lx, ly), label, font=font, fill=(0, 0, 0), anchor=anchor)
        mark = marks[k]
        box = [min(lb[0], mark[0]), min(lb[1], mark[1]), max(lb[2], mark[2]), max(lb[3], mark[3])]
        boxes.append(
            [max(0.0, box[0] - 2), max(0.0, box[1] - 2), min(float(w), box[2] + 2), min(float(h), box[3] + 2)]
        )
    return img, boxes


def _draw_values(spec: ChartSpec, d, vpos, cpos, slot: float, px: float, bottom: int, left: int) -> list[Box]:
    """Draw the bars or the line; return each category's mark box (bar, or marker)."""
    marks: list[Box] = []
    colors = [_rgb(c) for c in spec.colors]
    if spec.kind == "line":
        pts = [(cpos(k), vpos(v)) for k, v in enumerate(spec.values)]
        lw = max(1, round(spec.line_width * px))
        d.line(pts, fill=colors[0], width=lw, joint="curve")
        r = max(2, round(3 * px))
        for x, y in pts:
            box = [x - r, y - r, x + r, y + r]
            if spec.marker == "o":
                d.ellipse(box, fill=colors[0])
            elif spec.marker == "s":
                d.rectangle(box, fill=colors[0])
            elif spec.marker == "D":
                d.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=colors[0])
            else:
                d.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=colors[0])
            marks.append([float(v) for v in box])
        return marks
    half = slot * spec.bar_width / 2
    for k, v in enumerate(spec.values):
        c, p = cpos(k), vpos(v)
        color = colors[k % len(colors)]
        box = [left, c - half, p, c + half] if spec.kind == "barh" else [c - half, p, c + half, bottom]
        d.rectangle([round(x) for x in box], fill=color)
        marks.append([float(x) for x in box])
    return marks


def _label_at(spec: ChartSpec, k: int, vpos, cpos, px: float) -> tuple[float, float, str]:
    v = spec.values[k]
    if spec.kind == "barh":
        return vpos(v) + 3 * px, cpos(k), "lm"
    if spec.kind == "line":
        return cpos(k), vpos(v + max(spec.values) * 0.04), "mb"
    return cpos(k), vpos(v) - 2 * px, "mb"


def _rotated_text(
    img: Image.Image, at: tuple[float, float], text: str, font, ink: tuple[int, int, int]
) -> None:
    """Paste ``text`` rotated by 30 degrees, its top centred on ``at`` (matplotlib's centred rotation)."""
    x0, y0, x1, y1 = font.getbbox(text)
    mask = Image.new("L", (x1 - x0 + 2, y1 - y0 + 2), 0)
    ImageDraw.Draw(mask).text((1 - x0, 1 - y0), text, font=font, fill=255)
    mask = mask.rotate(30, expand=True, resample=Image.Resampling.BICUBIC)
    x = round(at[0] - mask.width / 2)
    img.paste(Image.new("RGB", mask.size, ink), (x, round(at[1])), mask)
