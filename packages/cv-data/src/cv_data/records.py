"""Item rows: our flat layout (``items``), verl's RL layout (``verl``, also MVToolBench's and the CodeVision
release's), and JSONL + image files; each written with one fixed Arrow schema and read back row by row.

A *layout* is the schema, the per-item row writer and the row reader of one table shape; the streaming
builders (:mod:`cv_data.shards`) write any layout in shards. Other tables (a user's parquet/JSONL/TSV,
Hugging Face datasets) are read by :mod:`cv_data.tables`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cv_protocol import DEFAULT_PRESET, IMAGE_TOKEN, TOOL_NAME, TRANSFORM_NAMES, Preset
from PIL import Image

from ._images import decode, to_struct
from .item import Item
from .report import BuildReport

# ------------------------------------------------------------------ parquet helpers


def _hf_feature(t: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return {"feature": _hf_feature(t.value_type), "_type": "List"}
    if pa.types.is_struct(t):
        return {t.field(i).name: _hf_feature(t.field(i).type) for i in range(t.num_fields)}
    names = {
        pa.string(): "string",
        pa.large_string(): "large_string",
        pa.int64(): "int64",
        pa.int32(): "int32",
        pa.float64(): "float64",
        pa.float32(): "float32",
        pa.bool_(): "bool",
        pa.binary(): "binary",
        pa.null(): "null",
    }
    return {"dtype": names.get(t, str(t)), "_type": "Value"}


def _concrete(t: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_null(t):
        return pa.string()
    if pa.types.is_list(t):
        return pa.list_(_concrete(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(t.field(i).name, _concrete(t.field(i).type)) for i in range(t.num_fields)])
    return t


def with_hf_features(schema: Any, image_columns: Iterable[str] = ()) -> Any:
    """``schema`` carrying the Hugging Face ``datasets`` features, ``image_columns`` (lists of
    ``{"bytes", "path"}``) tagged so that ``datasets.load_dataset("parquet", ...)`` decodes them as
    ``List(Image())``."""
    feats = {f.name: _hf_feature(f.type) for f in schema}
    for col in image_columns:
        if col in feats:
            feats[col] = {"feature": {"_type": "Image"}, "_type": "List"}
    return schema.with_metadata({b"huggingface": json.dumps({"info": {"features": feats}}).encode()})


def write_parquet(
    rows: list[dict[str, Any]],
    path: str | Path,
    image_columns: Iterable[str] = (),
    *,
    schema: Any = None,
) -> Path:
    """Write rows with pyarrow (one file), with ``schema`` or the inferred one, tagged for ``datasets``
    (:func:`with_hf_features`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if schema is None:
        table = pa.Table.from_pylist(rows)
        # All-None columns infer as `null`; give them concrete types so every reader (and datasets' Image
        # feature, which needs struct<bytes: binary, path: string>) accepts the schema.
        schema = pa.schema([pa.field(f.name, _concrete(f.type)) for f in table.schema])
        table = table.cast(schema)
    else:
        table = pa.Table.from_pylist(rows, schema=schema)
    table = table.replace_schema_metadata(with_hf_features(table.schema, image_columns).metadata)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, p)
    return p


def parquet_files(path: Path) -> list[Path]:
    """The parquet files behind ``path``: the file, or a folder's shards (``data/*.parquet`` of a dataset
    written by the builders, else the folder's own ``*.parquet``), in name order."""
    if not path.is_dir():
        return [path]
    data = sorted((path / "data").glob("*.parquet")) if (path / "data").is_dir() else []
    return data or sorted(path.glob("*.parquet"))


def iter_parquet_rows(path: Path, batch_size: int = 16) -> Iterator[dict[str, Any]]:
    """The rows of a parquet file, or of every parquet shard of a folder, one at a time (a few batches in
    memory, however large the files)."""
    import pyarrow.parquet as pq

    for f in parquet_files(path):
        pf = pq.ParquetFile(f)
        for batch in pf.iter_batches(batch_size=batch_size):
            yield from batch.to_pylist()


def parquet_range(files: list[Path], start: int, stop: int, batch_size: int = 16) -> Iterator[dict[str, Any]]:
    """Rows ``start .. stop-1`` of parquet ``files`` read as one table; row groups before ``start`` are
    skipped from the footers, and rows are decoded a batch at a time."""
    import pyarrow.parquet as pq

    pos = 0
    for f in files:
        pf = pq.ParquetFile(f)
        for g in range(pf.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            if pos + n <= start:
                pos += n
                continue
            for batch in pf.iter_batches(batch_size=batch_size, row_groups=[g]):
                for row in batch.to_pylist():
                    if pos >= stop:
                        return
                    if pos >= start:
                        yield row
                    pos += 1
            if pos >= stop:
                return


def read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a parquet file, or of every parquet shard of a folder, as dicts."""
    return list(iter_parquet_rows(path))


def count_parquet_rows(path: Path) -> int:
    """Rows in a parquet file or folder, from the footers (nothing is decoded)."""
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(f).num_rows for f in parquet_files(path))


def parquet_columns(path: Path) -> list[str]:
    """Column names of the first parquet file behind ``path``."""
    import pyarrow.parquet as pq

    files = parquet_files(path)
    return list(pq.read_schema(files[0]).names) if files else []


def image_struct_type() -> Any:
    """Arrow type of one stored image: ``struct<bytes: binary, path: string>`` (``datasets.Image``)."""
    import pyarrow as pa

    return pa.struct([("bytes", pa.binary()), ("path", pa.string())])


# --------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Layout:
    """One table shape the builders write.

    Attributes:
        name: ``"verl"``, ``"items"`` or ``"sft"``.
        columns: Column name -> what it holds (the dataset card's schema table).
        arrow_schema: Module-level function returning the Arrow schema (called lazily: pyarrow is imported
            where tables are written).
        image_columns: Columns holding lists of ``{"bytes", "path"}`` images.
    """

    name: str
    columns: dict[str, str]
    arrow_schema: Callable[[], Any]
    image_columns: tuple[str, ...] = ("images",)

    def schema(self) -> Any:
        """The layout's Arrow schema, tagged with the ``datasets`` features."""
        return with_hf_features(self.arrow_schema(), self.image_columns)


def _items_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("question", pa.string()),
            ("answer", pa.string()),
            ("transform", pa.list_(pa.string())),
            ("bbox", pa.list_(pa.float64())),
            ("data_source", pa.string()),
            ("split", pa.string()),
            ("task_type", pa.string()),
            ("choices", pa.list_(pa.string())),
            ("meta", pa.string()),
            ("images", pa.list_(image_struct_type())),
        ]
    )


def _verl_schema() -> Any:
    import pyarrow as pa

    s = pa.string()
    tools_kwargs = pa.struct([(TOOL_NAME, pa.struct([("create_kwargs", pa.struct([("item_id", s)]))]))])
    return pa.schema(
        [
            ("data_source", s),
            ("prompt", pa.list_(pa.struct([("role", s), ("content", s)]))),
            ("images", pa.list_(image_struct_type())),
            ("ability", s),
            ("reward_model", pa.struct([("style", s), ("ground_truth", s)])),
            (
                "extra_info",
                pa.struct(
                    [
                        ("id", s),
                        ("split", s),
                        ("index", pa.int64()),
                        ("question", s),
                        ("answer", s),
                        ("transform", pa.list_(s)),
                        ("bbox", pa.list_(pa.float64())),
                        ("choices", pa.list_(s)),
                        ("task_type", s),
                        ("meta", s),
                        ("need_tools_kwargs", pa.bool_()),
                        ("tools_kwargs", tools_kwargs),
                    ]
                ),
            ),
            ("agent_name", s),
        ]
    )


#: Our flat item layout (``--format items``).
ITEMS_LAYOUT = Layout(
    "items",
    {
        "id": "unique item id",
        "question": "question shown to the model",
        "answer": "ground-truth answer",
        "transform": "perturbations applied, in order (`crop` = the answer needs a zoom into `bbox`)",
        "bbox": "answer region [x1, y1, x2, y2] in pixels of images[0] as stored (null: none)",
        "data_source": "where the item came from",
        "split": "train / val / test",
        "task_type": "ocr / chart / math / general (selects cv-rewards' matching rules)",
        "choices": "multiple-choice options (answer is then the letter), or null",
        "meta": "JSON object: question kind, variant, base id, ...",
        "images": "the images (PNG bytes); images[0] is the input",
    },
    _items_schema,
)

#: verl's RL layout (``--format verl``, the default): what verl's ``RLHFDataset`` and agent loop read.
VERL_LAYOUT = Layout(
    "verl",
    {
        "data_source": "where the item came from (verl picks the reward function by it)",
        "prompt": "chat messages: the system prompt of the prompt preset, then the user turn "
        "(one `<image>` per image, then the question)",
        "images": "the images (PNG bytes), in `<image>` order; images[0] is the input",
        "ability": "task type: ocr / chart / math / general",
        "reward_model": "{style: rule, ground_truth: answer}",
        "extra_info": "id, split, index, question, answer, transform, bbox (pixels of images[0]), choices, "
        f"task_type, meta (JSON), need_tools_kwargs, tools_kwargs ({{{TOOL_NAME}: {{create_kwargs: "
        "{item_id}}}) for verl's tool agent loop",
        "agent_name": "`tool_agent`: verl's multi-turn tool agent loop",
    },
    _verl_schema,
)

LAYOUTS: dict[str, Layout] = {"verl": VERL_LAYOUT, "items": ITEMS_LAYOUT}


# ------------------------------------------------------------------- item -> row


def item_row(item: Item, index: int | None = None) -> dict[str, Any]:
    """``item`` as a row of the ``items`` layout (images PNG-encoded)."""
    d = item.to_dict()
    d["meta"] = json.dumps(d["meta"], ensure_ascii=False)
    d["images"] = [to_struct(im) for im in item.images]
    return d


def verl_row(item: Item, index: int, preset: Preset = DEFAULT_PRESET) -> dict[str, Any]:
    """``item`` as a row of verl's RL layout, with ``preset``'s system prompt (images PNG-encoded).

    Example:
        >>> from cv_data.testing import tiny_item
        >>> row = verl_row(tiny_item(0), 7)
        >>> [m["role"] for m in row["prompt"]], row["extra_info"]["index"], row["agent_name"]
        (['system', 'user'], 7, 'tool_agent')
    """
    return {
        "data_source": item.data_source,
        "prompt": [
            {"role": "system", "content": preset.system_prompt},
            {"role": "user", "content": IMAGE_TOKEN * len(item.images) + item.question},
        ],
        "images": [to_struct(im) for im in item.images],
        "ability": item.task_type,
        "reward_model": {"style": "rule", "ground_truth": item.answer},
        "extra_info": {
            "id": item.id,
            "split": item.split,
            "index": index,
            "question": item.question,
            "answer": item.answer,
            "transform": list(item.transform),
            "bbox": list(item.bbox) if item.bbox is not None else None,
            "choices": list(item.choices) if item.choices is not None else None,
            "task_type": item.task_type,
            "meta": json.dumps(item.meta, ensure_ascii=False),
            "need_tools_kwargs": True,
            "tools_kwargs": {TOOL_NAME: {"create_kwargs": {"item_id": item.id}}},
        },
        "agent_name": "tool_agent",
    }


def layout_row(layout: str, item: Item, index: int, preset: Preset = DEFAULT_PRESET) -> dict[str, Any]:
    """``item`` as a row of the named layout (``"verl"`` or ``"items"``)."""
    if layout == "verl":
        return verl_row(item, index, preset)
    if layout == "items":
        return item_row(item)
    raise ValueError(f"unknown layout {layout!r}; use one of {sorted(LAYOUTS)}")


# ------------------------------------------------------------------- row -> item


def is_verl_row(row: dict[str, Any]) -> bool:
    """Whether ``row`` has verl's layout (``prompt`` and ``reward_model`` columns)."""
    return "prompt" in row and "reward_model" in row


def _plain(v: Any) -> Any:
    """numpy arrays (pandas-written parquet) as lists, recursively."""
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def item_from_row(row: dict[str, Any], base_dir: str | Path | None = None) -> Item:
    """An item from a row of the ``items`` layout (parquet, or JSONL with image paths under ``base_dir``).

    Raises:
        KeyError: A required column is missing.
        ValueError: A value is invalid (corrupt image, box outside the image, unknown transform).
    """
    meta = row.get("meta") or {}
    if isinstance(meta, str):
        meta = json.loads(meta)
    imgs = [decode(v, base_dir) for v in (row.get("images") or [])]
    return Item(
        id=row["id"],
        images=imgs,
        question=row["question"],
        answer=row["answer"],
        transform=list(row.get("transform") or []),
        bbox=row.get("bbox"),
        data_source=row.get("data_source") or "",
        split=row.get("split") or "test",
        task_type=row.get("task_type") or "general",
        choices=row.get("choices"),
        meta=meta,
    )


def _user_text(prompt: Any) -> str:
    users = [m for m in _plain(prompt) or [] if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise ValueError("prompt has no user turn")
    content = users[-1].get("content")
    if isinstance(content, list):  # parts
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return str(content or "").replace(IMAGE_TOKEN, "").strip()


def _transform_names(v: Any) -> list[str]:
    """A transform list as the release and peers store it: a list, one name, or a dict keyed by name."""
    v = _plain(v)
    if v is None:
        return []
    if isinstance(v, str):
        v = [v] if v.strip() else []
    elif isinstance(v, dict):  # parquet stores a dict as a struct of every row's keys: unset ones are null
        v = [k for k, x in v.items() if x is not None]
    names = [str(t) for t in v]
    bad = [t for t in names if t not in TRANSFORM_NAMES]
    if bad:
        raise ValueError(f"unknown transform(s) {bad}; allowed {list(TRANSFORM_NAMES)}")
    return names


def _box(v: Any) -> tuple[list[float] | None, list[list[float]] | None]:
    """One ``[x1, y1, x2, y2]`` box, or the union of a list of boxes (which are returned too)."""
    v = _plain(v)
    if v is None or (isinstance(v, list) and not v):
        return None, None
    if isinstance(v, list) and all(isinstance(b, list) for b in v):
        boxes = [[float(x) for x in b] for b in v]
        if any(len(b) != 4 for b in boxes):
            raise ValueError(f"bbox {v!r}: every box needs 4 numbers [x1, y1, x2, y2]")
        union = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes)]
        return [*union, max(b[3] for b in boxes)], boxes
    if not isinstance(v, list) or len(v) != 4:
        raise ValueError(f"bbox {v!r} must be [x1, y1, x2, y2]")
    return [float(x) for x in v], None


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


_SCALARS = (str, int, float, bool)


def verl_item(row: dict[str, Any], index: int = 0, *, default_source: str = "verl") -> Item:
    """An item from a row of verl's RL layout: ours, the CodeVision release's (``bbox_2d``, ``transform``
    as a list, a name or a dict), MVToolBench's, or any verl dataset with ``prompt`` / ``reward_model``.

    The question is ``extra_info.question`` or the last user turn without its ``<image>`` tokens; the box
    is ``extra_info.bbox`` / ``bbox_2d`` (or top-level columns of those names); a list of boxes becomes
    their union (all kept in ``meta["boxes"]``). Other scalar ``extra_info`` fields are kept in
    ``meta["extra_info"]``.

    Raises:
        KeyError: ``prompt`` or ``reward_model`` is missing.
        ValueError: No user turn, no ground truth, an unreadable image, a bad box or transform.

    Example:
        >>> from cv_data.testing import tiny_item
        >>> verl_item(verl_row(tiny_item(0), 0)).id
        'tiny-s0-0000'
    """
    for col in ("prompt", "reward_model"):
        if col not in row:
            raise KeyError(col)
    extra = row.get("extra_info") or {}
    rid = str(
        _first(extra.get("id"), row.get("id")) or f"{row.get('data_source') or default_source}-{index:06d}"
    )
    question = extra.get("question") or _user_text(row["prompt"])
    question = str(question).replace(IMAGE_TOKEN, "").strip()
    gt = _plain(_first((row["reward_model"] or {}).get("ground_truth"), extra.get("answer")))
    if gt is None or (isinstance(gt, list) and not gt):
        raise ValueError("reward_model.ground_truth is missing")
    meta = extra.get("meta") or {}
    if isinstance(meta, str):
        meta = json.loads(meta) if meta.strip() else {}
    meta = dict(meta)
    if isinstance(gt, list):
        meta["answers"] = [str(a) for a in gt]
        gt = gt[0]
    bbox, boxes = _box(_first(extra.get("bbox"), extra.get("bbox_2d"), row.get("bbox"), row.get("bbox_2d")))
    if boxes is not None:
        meta["boxes"] = boxes
    known = {"id", "split", "index", "question", "answer", "transform", "bbox", "bbox_2d", "choices"}
    known |= {"task_type", "meta", "need_tools_kwargs", "tools_kwargs", "interaction_kwargs"}
    kept = {k: v for k, v in extra.items() if k not in known and isinstance(v, _SCALARS)}
    kept = {k: v for k, v in kept.items() if not (isinstance(v, str) and len(v) > 1000)}
    if kept:
        meta["extra_info"] = kept
    images = [decode(v) for v in _plain(row.get("images")) or []]
    choices = _plain(extra.get("choices"))
    return Item(
        id=rid,
        images=images,
        question=question,
        answer=str(gt),
        transform=_transform_names(_first(extra.get("transform"), row.get("transform"))),
        bbox=bbox,
        data_source=row.get("data_source") or default_source,
        split=extra.get("split") or "train",
        task_type=extra.get("task_type") or _ability_to_task(row.get("ability")),
        choices=[str(c) for c in choices] if choices else None,
        meta=meta,
    )


def _ability_to_task(ability: str | None) -> str:
    return ability if ability in ("ocr", "chart", "math", "general") else "general"


def row_stage(e: Exception) -> str:
    """The report stage of an error raised while reading a row."""
    if isinstance(e, KeyError):
        return "columns"
    msg = str(e)
    for stage in ("bbox", "transform", "image"):
        if stage in msg:
            return stage
    return "load"


def row_message(e: Exception) -> str:
    """A row error in words: ``missing column 'x'`` for a KeyError, the message otherwise."""
    if isinstance(e, KeyError):
        return f"missing column {e.args[0]!r}"
    return str(e)


# --------------------------------------------------------------------- our layout


def write_items(items: Iterable[Item], path: str | Path) -> Path:
    """Write items as one parquet file (``path`` ends in ``.parquet``) or as a folder with ``items.jsonl``
    + ``images/``. For large sets use the streaming builders (``cv-data build-rl``), which shard.

    Example:
        >>> from cv_data.sources import make_chart_items
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> write_items(make_chart_items(1), os.path.join(d, "x.parquet")).name
        'x.parquet'
    """
    p = Path(path)
    if p.suffix == ".parquet":
        rows = [item_row(it) for it in items]
        return write_parquet(rows, p, ITEMS_LAYOUT.image_columns, schema=ITEMS_LAYOUT.schema())
    (p / "images").mkdir(parents=True, exist_ok=True)
    with open(p / "items.jsonl", "w") as f:
        for it in items:
            f.write(json.dumps(jsonl_row(it, p), ensure_ascii=False) + "\n")
    return p


def jsonl_row(item: Item, root: Path, image_dir: str = "images") -> dict[str, Any]:
    """``item`` as a JSONL row; its images are saved as PNG files under ``root/image_dir`` and the row
    holds their paths relative to ``root``."""
    names = []
    for k, im in enumerate(item.images):
        name = f"{image_dir}/{item.id.replace('/', '__')}_{k}.png"
        im.save(root / name, compress_level=1)
        names.append(name)
    row = item.to_dict()
    row["images"] = names
    return row


def read_items(path: str | Path, *, report: BuildReport | None = None) -> list[Item]:
    """Read items: a parquet file, a folder of parquet shards (a dataset written by ``cv-data build-rl`` /
    ``build-bench``: ``data/*.parquet``), a JSONL folder/file; in our ``items`` layout or verl's (detected
    by its ``prompt`` / ``reward_model`` columns, e.g. the CodeVision release's RL parquet).

    Bad rows are recorded in ``report`` (if given) and skipped; good rows are all returned.

    Example:
        >>> from cv_data.sources import make_chart_items
        >>> import tempfile, os
        >>> p = write_items(make_chart_items(2), os.path.join(tempfile.mkdtemp(), "x.parquet"))
        >>> len(read_items(p))
        2
    """
    p = Path(path)
    report = report if report is not None else BuildReport()
    return list(iter_items(p, report=report))


def iter_items(path: str | Path, *, report: BuildReport | None = None) -> Iterator[Item]:
    """:func:`read_items` one item at a time (bounded memory)."""
    p = Path(path)
    report = report if report is not None else BuildReport()
    if not p.exists():
        raise FileNotFoundError(f"no such file or folder: {p}")
    if p.suffix == ".parquet" or (p.is_dir() and parquet_files(p)):
        rows: Iterable[dict[str, Any]] = iter_parquet_rows(p)
        base = None
    else:
        jl = _jsonl_file(p)
        rows, base = read_jsonl_rows(jl, report), jl.parent
    for i, row in enumerate(rows):
        report.total += 1
        rid = _row_id(row)
        try:
            item = verl_item(row, i) if is_verl_row(row) else item_from_row(row, base)
        except (KeyError, ValueError, TypeError) as e:
            report.add_error(i, rid, row_stage(e), row_message(e))
            continue
        report.ok += 1
        yield item


def _row_id(row: Any) -> str | None:
    if not isinstance(row, dict):
        return None
    extra = row.get("extra_info")
    rid = row.get("id") or (extra.get("id") if isinstance(extra, dict) else None)
    return str(rid) if rid is not None else None


def _jsonl_file(p: Path) -> Path:
    if not p.is_dir():
        return p
    for cand in (p / "items.jsonl", *sorted(p.glob("*.jsonl")), *sorted((p / "data").glob("*.jsonl"))):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"{p} holds no parquet or .jsonl items")


def read_jsonl_rows(path: Path, report: BuildReport) -> list[dict[str, Any]]:
    """The rows of a JSONL file; a line that is not valid JSON is recorded in ``report`` and skipped."""
    rows: list[dict[str, Any]] = []
    with open(path) as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                report.total += 1
                report.add_error(i, None, "load", f"line {i + 1} is not valid JSON: {e}")
    return rows


# ---------------------------------------------------------------- verl / MVToolBench


def write_verl(
    items: Iterable[Item],
    path: str | Path,
    *,
    preset: Preset = DEFAULT_PRESET,
    system_prompt: str | None = None,
    ability: str | None = None,
) -> Path:
    """Write items as one parquet file in verl's RL layout (also MVToolBench's and the release's).

    One row per item (:func:`verl_row`): ``data_source``, ``prompt`` (``preset``'s system prompt, then the
    user turn: one ``<image>`` token per image before the question), ``images``, ``ability``,
    ``reward_model = {"style": "rule", "ground_truth": answer}``, ``extra_info`` (``id``, ``split``,
    ``index``, ``question``, ``answer``, ``transform``, ``bbox``, ``choices``, ``task_type``, ``meta``,
    ``need_tools_kwargs``, ``tools_kwargs``) and ``agent_name = "tool_agent"``. ``system_prompt`` and
    ``ability`` override the preset's prompt and the items' task types.
    """
    rows = []
    for idx, it in enumerate(items):
        row = verl_row(it, idx, preset)
        if system_prompt is not None:
            row["prompt"][0]["content"] = system_prompt
        if ability is not None:
            row["ability"] = ability
        rows.append(row)
    return write_parquet(rows, path, VERL_LAYOUT.image_columns, schema=VERL_LAYOUT.schema())


def read_verl(path: str | Path, *, report: BuildReport | None = None) -> list[Item]:
    """Read a verl / MVToolBench / CodeVision-release parquet file (or folder) as items (:func:`verl_item`).

    Bad rows are recorded in ``report`` and skipped.
    """
    report = report if report is not None else BuildReport()
    out = []
    for i, row in enumerate(iter_parquet_rows(Path(path))):
        report.total += 1
        try:
            out.append(verl_item(row, i))
            report.ok += 1
        except (KeyError, ValueError, TypeError) as e:
            report.add_error(i, _row_id(row), row_stage(e), row_message(e))
    return out


def iter_images(items: Iterable[Item]) -> Iterator[Image.Image]:
    """All images of ``items`` in order (handy for benchmarks)."""
    for it in items:
        yield from it.images
