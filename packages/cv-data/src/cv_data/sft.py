"""SFT trajectories whose every tool output was produced by really executing the code in cv-sandbox.

Five kinds (paper): ``single_tool``, ``multi_tool``, ``multi_crop``, ``error_recovery`` and ``no_tool``.
A scripted expert writes the thinking and the code; each call runs in :class:`cv_sandbox.Sandbox` and the
real output image (or the real error text) becomes the tool message.

Record layout (TRL ``SFTTrainer`` conversational VLM format, one record per trajectory)::

    {"messages": [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<think>..</think>\\n<tool_call>..</tool_call>"}]},
        {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": tool_response_text(...)}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<think>..</think>\\n<answer>..</answer>"}]}],
     "images": [PIL, ...],   # in the order of the {"type": "image"} placeholders
     "id": ..., "kind": ..., "data_source": ..., "item_id": ..., "answer": ..., "transform": [...],
     "tool_ops": [[...], ...]}   # per tool call: op names from the sandbox trace (empty for failed calls)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cv_protocol import (
    IMAGE_TOKEN,
    SYSTEM_PROMPT,
    ParsedCall,
    content_text,
    corrective_ops,
    parse_error_text,
    parse_tool_calls,
    render_tool_call,
    rotation_degrees,
    tool_response_text,
)
from cv_sandbox import Sandbox, SandboxConfig
from PIL import Image

from . import _expert as ex
from ._images import decode, to_struct
from ._parallel import pmap
from .item import Item
from .report import BuildReport
from .rl import ORIENTATION_TRANSFORMS
from .sources import SOURCES
from .transforms import map_bbox, transform_item

#: Trajectory kinds.
SFT_KINDS: tuple[str, ...] = ("single_tool", "multi_tool", "multi_crop", "error_recovery", "no_tool")


@dataclass
class SFTBuildConfig:
    """How to build SFT trajectories.

    Attributes:
        num: Number of trajectories.
        seed: Seed; identical output for the same seed whatever ``num_proc`` is.
        kinds: Mixture ``{kind: weight}`` over :data:`SFT_KINDS`.
        num_proc: Worker processes (each opens its own sandbox).
        progress: Show a progress bar.
        sandbox: Configuration of the sandbox that executes every call (one per worker process; calls
            within a trajectory are sequential, so one warm sandbox worker is enough).
    """

    num: int = 100
    seed: int = 0
    kinds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SFT_KINDS, 1.0))
    num_proc: int = 1
    progress: bool = True
    sandbox: SandboxConfig = field(default_factory=lambda: SandboxConfig(workers=1))

    def __post_init__(self) -> None:
        if self.num < 0:
            raise ValueError(f"num must be >= 0, got {self.num}")
        bad = set(self.kinds) - set(SFT_KINDS)
        if bad:
            raise ValueError(f"unknown SFT kinds {sorted(bad)}; set kinds to names in {SFT_KINDS}")
        if not self.kinds or sum(self.kinds.values()) <= 0 or min(self.kinds.values()) < 0:
            raise ValueError("kinds needs at least one positive weight, e.g. {'single_tool': 1.0}")
        if self.num_proc < 1:
            raise ValueError(f"num_proc must be >= 1, got {self.num_proc}")


class TrajectoryError(RuntimeError):
    """A scripted step did not behave as planned in the sandbox (the trajectory is reported, not kept)."""


# ------------------------------------------------------------------ conversation writer


def _text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


class _Conversation:
    """Builds the messages while executing each tool call for real."""

    def __init__(self, sandbox: Sandbox, image: Image.Image, question: str) -> None:
        self.sandbox = sandbox
        self.images: list[Image.Image] = [image]
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": [_text(SYSTEM_PROMPT)]},
            {"role": "user", "content": [{"type": "image"}, _text(question)]},
        ]
        self.ops: list[list[str]] = []

    def call(self, think: str, code: str, description: str, image_index: int, *, expect_ok: bool = True):
        self.messages.append(
            {
                "role": "assistant",
                "content": [
                    _text(f"<think>{think}</think>\n{render_tool_call(code, description, image_index)}")
                ],
            }
        )
        res = self.sandbox.run(code, self.images, image_index=image_index)
        for _ in range(2):
            # Infrastructure failures (a worker killed or starved on a loaded machine) say nothing about the
            # code; run it again rather than writing a spurious error into the trajectory.
            if res.ok or res.error_kind not in ("timeout", "crash"):
                break
            res = self.sandbox.run(code, self.images, image_index=image_index)
        if res.ok != expect_ok:
            raise TrajectoryError(
                f"planned {'success' if expect_ok else 'failure'} but sandbox gave "
                f"ok={res.ok} ({res.error_kind}: {res.error}) for code:\n{code}"
            )
        if res.ok:
            assert res.image is not None
            img = res.image if res.image.mode in ("RGB", "L") else res.image.convert("RGB")
            self.images.append(img)
            new_index = len(self.images) - 1
            self.messages.append(
                {"role": "tool", "content": [{"type": "image"}, _text(tool_response_text(res, new_index))]}
            )
        else:
            self.messages.append({"role": "tool", "content": [_text(tool_response_text(res, None))]})
        self.ops.append(list(res.ops))
        return res

    def answer(self, think: str, answer: str) -> None:
        self.messages.append(
            {"role": "assistant", "content": [_text(f"<think>{think}</think>\n<answer>{answer}</answer>")]}
        )


# ------------------------------------------------------------------ planning helpers


def _same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))


def _int_box(box: Sequence[float], margin: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    w, h = size
    return (
        max(0, int(box[0] - margin)),
        max(0, int(box[1] - margin)),
        min(w, int(np.ceil(box[2] + margin))),
        min(h, int(np.ceil(box[3] + margin))),
    )


def _target_name(item: Item) -> str:
    t = item.meta.get("target")
    if item.data_source.endswith("scene") and t:
        if item.meta.get("scene") == "shelf":
            return f'the price tag below "{t}"'
        return f'the small writing on the note "{t}"'
    return "the relevant text"


def _orient_fix(
    conv: _Conversation, op: str, rng: np.random.Generator, idx: int, *, think: str | None = None
):
    style = ex.pick(rng, ex.STYLES)
    return conv.call(
        think or ex.orient_think(op, rng), ex.orientation_code(op, style), ex.orient_desc(op), idx
    )


def _crop(
    conv: _Conversation,
    box: Sequence[float],
    idx: int,
    rng: np.random.Generator,
    target: str,
    *,
    coarse: bool = False,
    think: str | None = None,
    think_prefix: str = "",
):
    size = conv.images[idx].size
    bw, bh = box[2] - box[0], box[3] - box[1]
    if coarse:
        margin = max(bw, bh) * rng.uniform(1.5, 3.0) + 40
    else:
        margin = float(rng.integers(6, 30))
    ib = _int_box(box, margin, size)
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


def _box_through(ops: Sequence[str], box: Sequence[float], size: tuple[int, int]) -> list[float]:
    b = list(box)
    w, h = size
    for op in ops:
        b = map_bbox(op, b, (w, h))
        if rotation_degrees(op) in (90, 270):  # a quarter turn swaps width and height
            w, h = h, w
    return b


# ------------------------------------------------------------------ the five kinds


def _orientation_item(
    rng: np.random.Generator, i: int, seed: int, ops: list[str], sources: list[str]
) -> tuple[Item, Item]:
    base = SOURCES[str(ex.pick(rng, sources))](i, seed, "train")
    return base, transform_item(base, ops)


def _single_tool(conv_factory, rng, i, seed):
    if rng.random() < 0.35:
        base = SOURCES["scene"](i, seed, "train")
        item = base
        conv = conv_factory(item)
        res, ib, scale = _crop(conv, item.bbox, 0, rng, _target_name(item))
    else:
        op = str(ex.pick(rng, ORIENTATION_TRANSFORMS))
        base, item = _orientation_item(rng, i, seed, [op], ["document", "chart"])
        conv = conv_factory(item)
        fix = corrective_ops(item.transform)[0]
        res = _orient_fix(conv, fix, rng, 0)
        if not _same(res.image, base.images[0]):
            raise TrajectoryError(f"{fix} did not restore the upright image")
    conv.answer(ex.answer_think(item.answer, rng, after_tool=True), item.answer)
    return item, conv


def _multi_tool(conv_factory, rng, i, seed):
    if rng.random() < 0.6:
        op = str(ex.pick(rng, ORIENTATION_TRANSFORMS))
        base = SOURCES["scene"](i, seed, "train")
        item = transform_item(base, [op])
        conv = conv_factory(item)
        fixes = [o for o in corrective_ops(item.transform) if o != "crop"]
        res = _orient_fix(conv, fixes[0], rng, 0)
        if not _same(res.image, base.images[0]):
            raise TrajectoryError("orientation fix did not restore the upright scene")
        box = _box_through(fixes, item.bbox, item.images[0].size)
        _crop(
            conv,
            box,
            1,
            rng,
            _target_name(item),
            think_prefix="The scene is upright now, but the text I need is tiny. ",
        )
    else:
        ops = [str(ex.pick(rng, ORIENTATION_TRANSFORMS[:3])), str(ex.pick(rng, ORIENTATION_TRANSFORMS[3:]))]
        base, item = _orientation_item(rng, i, seed, ops, ["document", "chart"])
        conv = conv_factory(item)
        fixes = corrective_ops(item.transform)
        _orient_fix(
            conv,
            fixes[0],
            rng,
            0,
            think=f"The image is both mirrored and turned. First I undo the mirroring. {ex.orient_think(fixes[0], rng)}",
        )
        res = _orient_fix(
            conv,
            fixes[1],
            rng,
            1,
            think=f"The glyphs now read correctly but the page is still not upright. {ex.orient_think(fixes[1], rng)}",
        )
        if not _same(res.image, base.images[0]):
            raise TrajectoryError("orientation fixes did not restore the upright image")
    conv.answer(ex.answer_think(item.answer, rng, after_tool=True), item.answer)
    return item, conv


def _multi_crop(conv_factory, rng, i, seed):
    item = SOURCES["scene"](i, seed, "train")
    conv = conv_factory(item)
    target = _target_name(item)
    _, ib, _ = _crop(conv, item.bbox, 0, rng, target, coarse=True)
    box1 = [item.bbox[0] - ib[0], item.bbox[1] - ib[1], item.bbox[2] - ib[0], item.bbox[3] - ib[1]]
    _crop(
        conv, box1, 1, rng, target, think_prefix="Image 1 shows the right area, but the text is still small. "
    )
    conv.answer(ex.answer_think(item.answer, rng, after_tool=True), item.answer)
    return item, conv


_ERRORS = ("no_result", "cv2_on_pil", "bad_name", "reversed_crop", "bad_method")


def _failing_code(kind: str, op: str, box: tuple[int, int, int, int] | None) -> tuple[str, str]:
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


def _error_recovery(conv_factory, rng, i, seed):
    if rng.random() < 0.3:
        item = SOURCES["scene"](i, seed, "train")
        conv = conv_factory(item)
        ib = _int_box(item.bbox, float(rng.integers(6, 30)), item.images[0].size)
        kind = "reversed_crop"
        code, why = _failing_code(kind, "crop", ib)
        conv.call(
            ex.crop_think(_target_name(item), ib, rng), code, "Crop the answer region.", 0, expect_ok=False
        )
        _crop(conv, item.bbox, 0, rng, _target_name(item), think=f"The call failed. {why} Let me fix it.")
    else:
        op = str(ex.pick(rng, ORIENTATION_TRANSFORMS))
        base, item = _orientation_item(rng, i, seed, [op], ["document", "chart"])
        conv = conv_factory(item)
        fix = corrective_ops(item.transform)[0]
        kind = str(ex.pick(rng, [k for k in _ERRORS if k != "reversed_crop"]))
        code, why = _failing_code(kind, fix, None)
        conv.call(ex.orient_think(fix, rng), code, ex.orient_desc(fix), 0, expect_ok=False)
        res = _orient_fix(
            conv, fix, rng, 0, think=f"The tool returned an error. {why} Retrying with corrected code."
        )
        if not _same(res.image, base.images[0]):
            raise TrajectoryError("recovery call did not restore the upright image")
    conv.answer(ex.answer_think(item.answer, rng, after_tool=True), item.answer)
    return item, conv


def _no_tool(conv_factory, rng, i, seed):
    item = SOURCES[str(ex.pick(rng, ["document", "chart"]))](i, seed, "train")
    conv = conv_factory(item)
    conv.answer(ex.answer_think(item.answer, rng, after_tool=False), item.answer)
    return item, conv


_BUILDERS = {
    "single_tool": _single_tool,
    "multi_tool": _multi_tool,
    "multi_crop": _multi_crop,
    "error_recovery": _error_recovery,
    "no_tool": _no_tool,
}

_SANDBOXES: dict[str, Sandbox] = {}


def _sandbox(cfg: SandboxConfig) -> Sandbox:
    # One sandbox per worker process, reused across trajectories (starting one can be costly).
    key = repr(cfg)
    if key not in _SANDBOXES:
        _SANDBOXES[key] = Sandbox(cfg)
    return _SANDBOXES[key]


def make_trajectory(index: int, kind: str, seed: int = 0, sandbox: Sandbox | None = None) -> dict[str, Any]:
    """Build and execute one trajectory of ``kind`` (deterministic in ``(seed, index, kind)``).

    Example:
        >>> rec = make_trajectory(0, "single_tool", seed=1)
        >>> [m["role"] for m in rec["messages"]]
        ['system', 'user', 'assistant', 'tool', 'assistant']
    """
    if kind not in _BUILDERS:
        raise ValueError(f"unknown kind {kind!r}; choose from {SFT_KINDS}")
    sb = sandbox or _sandbox(SandboxConfig())
    rng = np.random.default_rng([seed, index, SFT_KINDS.index(kind), 5])
    item, conv = _BUILDERS[kind](lambda it: _Conversation(sb, it.images[0], it.question), rng, index, seed)
    n_img = sum(1 for m in conv.messages for p in m["content"] if p["type"] == "image")
    if n_img != len(conv.images):
        raise TrajectoryError(f"{n_img} image placeholders but {len(conv.images)} images")
    return {
        "messages": conv.messages,
        "images": conv.images,
        "id": f"sft-{kind}-s{seed}-{index:06d}",
        "kind": kind,
        "data_source": item.data_source,
        "item_id": item.id,
        "answer": item.answer,
        "transform": list(item.transform),
        "tool_ops": conv.ops,
    }


def _sft_one(args: tuple[int, str, int, SandboxConfig]) -> dict[str, Any]:
    i, kind, seed, sbcfg = args
    return make_trajectory(i, kind, seed, _sandbox(sbcfg))


def build_sft(
    config: SFTBuildConfig | None = None, *, report: BuildReport | None = None
) -> list[dict[str, Any]]:
    """Build executed SFT trajectories with the scripted expert.

    Failed trajectories (a step that did not behave as planned) are recorded in ``report``; the rest is kept.

    Example:
        >>> recs = build_sft(SFTBuildConfig(num=2, seed=0, progress=False))
        >>> sorted(recs[0]) [:3]
        ['answer', 'data_source', 'id']
    """
    cfg = config or SFTBuildConfig()
    report = report if report is not None else BuildReport()
    names = [k for k in SFT_KINDS if cfg.kinds.get(k, 0) > 0]
    w = np.array([cfg.kinds[k] for k in names], dtype=float)
    rng = np.random.default_rng([cfg.seed, 99])
    plan = [str(names[j]) for j in rng.choice(len(names), size=cfg.num, p=w / w.sum())]
    args = [(i, plan[i], cfg.seed, cfg.sandbox) for i in range(cfg.num)]
    out: list[dict[str, Any]] = []
    for (i, kind, _, _), (res, err) in zip(
        args,
        pmap(_sft_one, args, num_proc=cfg.num_proc, desc="build-sft", total=cfg.num, progress=cfg.progress),
        strict=True,
    ):
        report.total += 1
        if err is not None:
            report.add_error(i, f"sft-{kind}-s{cfg.seed}-{i:06d}", "execute", err)
            continue
        out.append(res)
        report.ok += 1
        report.stats[f"kind:{kind}"] = report.stats.get(f"kind:{kind}", 0) + 1
    return out


# ------------------------------------------------------------------ replay / verification


def replay_trajectory(record: dict[str, Any], sandbox: Sandbox | None = None) -> list[str]:
    """Re-execute every tool call of ``record`` and compare with its stored tool messages.

    Calls are read with :func:`cv_protocol.parse_tool_calls`, as the teacher and the agent read them.

    Returns:
        A list of mismatch descriptions; empty when every output image (pixels) and error text match.

    Example:
        >>> rec = make_trajectory(0, "single_tool", seed=1)
        >>> replay_trajectory(rec)
        []
    """
    sb = sandbox or _sandbox(SandboxConfig())
    msgs = record["messages"]
    stored = record["images"]
    images: list[Image.Image] = [stored[0]]
    problems: list[str] = []
    for j, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        text = content_text(m["content"])
        call = parse_tool_calls(text)
        tool = msgs[j + 1] if j + 1 < len(msgs) else None
        if not isinstance(call, ParsedCall):
            # A call the parser could not read (teacher records) must be answered with its error message.
            if tool is not None and tool["role"] == "tool":
                ttext = content_text(tool["content"])
                if (
                    call.kind == "no_call"
                    or ttext != parse_error_text(call)
                    or any(p["type"] == "image" for p in tool["content"])
                ):
                    problems.append(
                        f"message {j}: tool message does not answer an unreadable call ({call.kind})"
                    )
            continue
        res = sb.run(call.code, images, image_index=call.image_index)
        if tool is None or tool["role"] != "tool":
            problems.append(f"message {j}: tool call without a tool message")
            continue
        has_img = any(p["type"] == "image" for p in tool["content"])
        ttext = content_text(tool["content"])
        if res.ok != has_img:
            problems.append(f"message {j}: replay ok={res.ok} but stored tool message has_image={has_img}")
            continue
        new_index = len(images) if res.ok else None
        if tool_response_text(res, new_index) != ttext:
            problems.append(
                f"message {j}: tool text differs: {tool_response_text(res, new_index)!r} != {ttext!r}"
            )
        if res.ok:
            assert res.image is not None
            if len(stored) <= len(images):
                problems.append(f"message {j}: record has no stored image {len(images)}")
                continue
            if not _same(res.image, stored[len(images)]):
                problems.append(f"message {j}: replayed image {len(images)} differs in pixels")
            images.append(stored[len(images)])
    if len(images) != len(stored):
        problems.append(f"{len(stored)} stored images but {len(images)} produced by replay")
    return problems


# ------------------------------------------------------------------ saving / loading


def _parquet_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"role": m["role"], "content": [{"type": p["type"], "text": p.get("text")} for p in m["content"]]}
        for m in messages
    ]


def save_sft(
    records: Iterable[dict[str, Any]],
    out_dir: str | Path,
    *,
    formats: Sequence[str] = ("parquet", "sharegpt"),
    report: BuildReport | None = None,
) -> dict[str, Path]:
    """Save trajectories as parquet (``sft.parquet``, datasets-readable images) and/or ShareGPT JSON for
    LLaMA-Factory (``sharegpt.json`` + ``images/`` + ``dataset_info.json``); the report goes to ``report.json``.

    Example:
        >>> import tempfile
        >>> paths = save_sft(build_sft(SFTBuildConfig(num=1, progress=False)), tempfile.mkdtemp())
        >>> sorted(paths)
        ['parquet', 'report', 'sharegpt']
    """
    from .records import write_parquet

    bad = set(formats) - {"parquet", "sharegpt"}
    if bad:
        raise ValueError(f"unknown formats {sorted(bad)}; use 'parquet' and/or 'sharegpt'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = list(records)
    paths: dict[str, Path] = {}
    if "parquet" in formats:
        rows = []
        for r in records:
            row = {k: v for k, v in r.items() if k not in ("messages", "images")}
            row["messages"] = _parquet_messages(r["messages"])
            row["images"] = [to_struct(im) for im in r["images"]]
            rows.append(row)
        paths["parquet"] = write_parquet(rows, out / "sft.parquet", image_columns=["images"])
    if "sharegpt" in formats:
        (out / "images").mkdir(exist_ok=True)
        conv = []
        for r in records:
            names = []
            for k, im in enumerate(r["images"]):
                name = f"images/{r['id']}_{k}.png"
                im.save(out / name, compress_level=1)
                names.append(name)
            msgs = []
            for m in r["messages"]:
                msgs.append({"role": m["role"], "content": content_text(m["content"], IMAGE_TOKEN)})
            conv.append({"messages": msgs, "images": names, "id": r["id"], "kind": r.get("kind")})
        (out / "sharegpt.json").write_text(json.dumps(conv, ensure_ascii=False, indent=1))
        info = {
            "codevision_sft": {
                "file_name": "sharegpt.json",
                "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images"},
                "tags": {
                    "role_tag": "role",
                    "content_tag": "content",
                    "user_tag": "user",
                    "assistant_tag": "assistant",
                    "observation_tag": "tool",
                    "system_tag": "system",
                },
            }
        }
        (out / "dataset_info.json").write_text(json.dumps(info, indent=2))
        paths["sharegpt"] = out / "sharegpt.json"
    rep = report if report is not None else BuildReport(total=len(records), ok=len(records))
    paths["report"] = rep.write(out / "report.json")
    return paths


def load_sft(path: str | Path) -> list[dict[str, Any]]:
    """Load trajectories saved by :func:`save_sft` (``sft.parquet`` or a folder holding it, or
    ``sharegpt.json``) with images decoded to PIL and image parts as ``{"type": "image"}``.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> _ = save_sft(build_sft(SFTBuildConfig(num=1, progress=False)), d)
        >>> load_sft(d)[0]["messages"][1]["content"][0]
        {'type': 'image'}
    """
    p = Path(path)
    if p.is_dir():
        p = p / "sft.parquet" if (p / "sft.parquet").exists() else p / "sharegpt.json"
    if not p.is_file():
        raise FileNotFoundError(
            f"no SFT data at {path}: expected sft.parquet or sharegpt.json written by save_sft"
        )
    if p.suffix == ".json":
        return _load_sharegpt(p)
    import pyarrow.parquet as pq

    out = []
    for row in pq.read_table(p).to_pylist():
        msgs = [
            {
                "role": m["role"],
                "content": [
                    {"type": "image"} if c["type"] == "image" else _text(c["text"] or "")
                    for c in m["content"]
                ],
            }
            for m in row["messages"]
        ]
        row["messages"] = msgs
        row["images"] = [decode(v) for v in row["images"]]
        out.append(row)
    return out


#: Alias of :func:`load_sft` (the name cv-train looks up).
read_sft = load_sft


def _load_sharegpt(p: Path) -> list[dict[str, Any]]:
    out = []
    for r in json.loads(p.read_text()):
        msgs = []
        for m in r["messages"]:
            parts: list[dict[str, Any]] = []
            chunks = m["content"].split("<image>")
            for k, chunk in enumerate(chunks):
                if k:
                    parts.append({"type": "image"})
                if chunk:
                    parts.append(_text(chunk))
            msgs.append({"role": m["role"], "content": parts})
        out.append(
            {
                **{k: v for k, v in r.items() if k not in ("messages", "images")},
                "messages": msgs,
                "images": [decode(n, p.parent) for n in r["images"]],
            }
        )
    return out
