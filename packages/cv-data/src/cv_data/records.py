"""Reading and writing items in our parquet / JSONL+images layout and in the verl / MVToolBench parquet
schema. Other tables (a user's parquet/JSONL/TSV, Hugging Face datasets) are read by :mod:`cv_data.tables`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

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


def write_parquet(rows: list[dict[str, Any]], path: str | Path, image_columns: Iterable[str] = ()) -> Path:
    """Write rows with pyarrow, tagging ``image_columns`` (lists of ``{"bytes","path"}``) so that
    ``datasets.load_dataset("parquet", ...)`` decodes them as ``List(Image())``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    # All-None columns infer as `null`; give them concrete types so every reader (and datasets' Image
    # feature, which needs struct<bytes: binary, path: string>) accepts the schema.
    table = table.cast(pa.schema([pa.field(f.name, _concrete(f.type)) for f in table.schema]))
    feats = {f.name: _hf_feature(f.type) for f in table.schema}
    for col in image_columns:
        if col in feats:
            feats[col] = {"feature": {"_type": "Image"}, "_type": "List"}
    meta = {b"huggingface": json.dumps({"info": {"features": feats}}).encode()}
    table = table.replace_schema_metadata(meta)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, p)
    return p


def read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a parquet file, or of every parquet shard of a folder, as dicts."""
    import pyarrow.parquet as pq

    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    rows: list[dict[str, Any]] = []
    for f in files:
        rows.extend(pq.read_table(f).to_pylist())
    return rows


# --------------------------------------------------------------------- our layout


def _item_row(item: Item, images: list[dict[str, Any]]) -> dict[str, Any]:
    d = item.to_dict()
    d["meta"] = json.dumps(d["meta"], ensure_ascii=False)
    d["images"] = images
    return d


def write_items(items: Iterable[Item], path: str | Path) -> Path:
    """Write items as parquet (``path`` ends in ``.parquet``) or as a folder with ``items.jsonl`` + ``images/``.

    Example:
        >>> from cv_data.sources import make_chart_items
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> write_items(make_chart_items(1), os.path.join(d, "x.parquet")).name
        'x.parquet'
    """
    p = Path(path)
    if p.suffix == ".parquet":
        rows = [_item_row(it, [to_struct(im) for im in it.images]) for it in items]
        return write_parquet(rows, p, image_columns=["images"])
    (p / "images").mkdir(parents=True, exist_ok=True)
    with open(p / "items.jsonl", "w") as f:
        for it in items:
            names = []
            for k, im in enumerate(it.images):
                name = f"images/{it.id.replace('/', '__')}_{k}.png"
                im.save(p / name, compress_level=1)
                names.append(name)
            row = it.to_dict()
            row["images"] = names
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return p


def read_items(path: str | Path, *, report: BuildReport | None = None) -> list[Item]:
    """Read items written by :func:`write_items` (parquet file/folder or JSONL folder/file).

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
    if p.suffix == ".parquet" or (p.is_dir() and any(p.glob("*.parquet"))):
        rows, base = read_parquet_rows(p), None
    else:
        jl = p / "items.jsonl" if p.is_dir() else p
        rows, base = read_jsonl_rows(jl, report), jl.parent
    out = []
    for i, row in enumerate(rows):
        report.total += 1
        try:
            meta = row.get("meta") or {}
            if isinstance(meta, str):
                meta = json.loads(meta)
            imgs = [decode(v, base) for v in (row.get("images") or [])]
            out.append(
                Item(
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
            )
            report.ok += 1
        except (KeyError, ValueError, TypeError) as e:
            report.add_error(i, row.get("id") if isinstance(row, dict) else None, "load", _msg(e))
    return out


def _msg(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"missing column {e.args[0]!r}"
    return str(e)


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
    items: Iterable[Item], path: str | Path, *, system_prompt: str | None = None, ability: str | None = None
) -> Path:
    """Write items in verl's multimodal RL parquet layout (also MVToolBench's).

    One row per item: ``data_source``, ``prompt`` (chat messages; the user turn holds one ``<image>``
    token per image before the question), ``images`` (``[{"bytes","path"}]``), ``ability``,
    ``reward_model = {"style": "rule", "ground_truth": answer}`` and ``extra_info`` with ``id``, ``split``,
    ``index``, ``question``, ``answer``, ``transform``, ``bbox``, ``choices``, ``task_type``, ``meta``.
    """
    rows = []
    for idx, it in enumerate(items):
        prompt = [{"role": "system", "content": system_prompt}] if system_prompt else []
        prompt.append({"role": "user", "content": "<image>" * len(it.images) + it.question})
        rows.append(
            {
                "data_source": it.data_source,
                "prompt": prompt,
                "images": [to_struct(im) for im in it.images],
                "ability": ability or it.task_type,
                "reward_model": {"style": "rule", "ground_truth": it.answer},
                "extra_info": {
                    "id": it.id,
                    "split": it.split,
                    "index": idx,
                    "question": it.question,
                    "answer": it.answer,
                    "transform": list(it.transform),
                    "bbox": list(it.bbox) if it.bbox is not None else None,
                    "choices": list(it.choices) if it.choices is not None else None,
                    "task_type": it.task_type,
                    "meta": json.dumps(it.meta, ensure_ascii=False),
                },
            }
        )
    return write_parquet(rows, path, image_columns=["images"])


def read_verl(path: str | Path, *, report: BuildReport | None = None) -> list[Item]:
    """Read a verl / MVToolBench parquet file (or folder) as items.

    ``transform``/``bbox`` are taken from ``extra_info`` or top-level columns when present; the question is
    ``extra_info.question`` or the last user prompt turn with ``<image>`` tokens removed.
    """
    report = report if report is not None else BuildReport()
    out = []
    for i, row in enumerate(read_parquet_rows(Path(path))):
        report.total += 1
        extra = row.get("extra_info") or {}
        rid = str(extra.get("id") or row.get("id") or f"{row.get('data_source', 'verl')}-{i:06d}")
        try:
            if "prompt" not in row or "reward_model" not in row:
                raise KeyError("prompt" if "prompt" not in row else "reward_model")
            question = extra.get("question")
            if not question:
                users = [m for m in row["prompt"] if m.get("role") == "user"]
                if not users:
                    raise ValueError("prompt has no user turn")
                question = str(users[-1]["content"]).replace("<image>", "").strip()
            gt = (row["reward_model"] or {}).get("ground_truth")
            if gt is None:
                raise ValueError("reward_model.ground_truth is missing")
            try:
                imgs = [decode(v) for v in (row.get("images") or [])]
            except ValueError as e:
                report.add_error(i, rid, "image", str(e))
                continue
            meta = extra.get("meta") or {}
            if isinstance(meta, str):
                meta = json.loads(meta)
            out.append(
                Item(
                    id=rid,
                    images=imgs,
                    question=question,
                    answer=str(gt),
                    transform=list(extra.get("transform") or row.get("transform") or []),
                    bbox=extra.get("bbox") if extra.get("bbox") is not None else row.get("bbox"),
                    data_source=row.get("data_source") or "verl",
                    split=extra.get("split") or "train",
                    task_type=extra.get("task_type") or _ability_to_task(row.get("ability")),
                    choices=extra.get("choices"),
                    meta=meta,
                )
            )
            report.ok += 1
        except KeyError as e:
            report.add_error(i, rid, "columns", f"missing column {e.args[0]!r}")
        except (ValueError, TypeError) as e:
            report.add_error(i, rid, "bbox" if "bbox" in str(e) else "load", str(e))
    return out


def _ability_to_task(ability: str | None) -> str:
    return ability if ability in ("ocr", "chart", "math", "general") else "general"


def iter_images(items: Iterable[Item]) -> Iterator[Image.Image]:
    """All images of ``items`` in order (handy for benchmarks)."""
    for it in items:
        yield from it.images
