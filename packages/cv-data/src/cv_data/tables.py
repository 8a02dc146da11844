"""External tables as items: the one column mapping (:class:`ColumnMap`) and loader for a user's parquet,
JSONL, JSON or TSV file, a Hugging Face dataset, or a copy of a public benchmark (OCRBench, ChartQAPro,
MVToolBench, V*, HRBench; their maps live in the suite registry, :data:`cv_data.suites.SUITES`)."""

from __future__ import annotations

import ast
import base64
import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cv_protocol import TRANSFORM_NAMES

from ._images import decode
from .item import Item
from .records import read_jsonl_rows, read_parquet_rows
from .report import BuildReport

#: Table files :func:`read_rows` reads, in the order a folder is searched.
TABLE_SUFFIXES: tuple[str, ...] = (".parquet", ".jsonl", ".json", ".tsv")

# ColumnMap fields that name columns (each a tuple of alternatives).
_COLUMN_FIELDS = (
    "id",
    "image",
    "question",
    "answer",
    "choices",
    "option_columns",
    "transform",
    "bbox",
    "category",
    "task_type",
)


@dataclass(frozen=True)
class ColumnMap:
    """Where a table keeps each :class:`~cv_data.Item` field.

    Every column field lists alternative column names: the first one present in a row with a value (not
    ``None``, ``""`` or NaN) wins. A single name (``ColumnMap(image="img")``) or ``None`` (no such column)
    is accepted too. The defaults read OCRBench, ChartQAPro, MVToolBench, V* and HRBench copies and most
    tables as they are; :meth:`parse` reads the CLI form.

    Attributes:
        id: Item id columns; rows without one are numbered ``<prefix>-<row>``.
        image: Image column(s). A value is a path (relative to the image folder or an ``images/`` folder in
            it, or absolute), raw bytes, a base64 string (HRBench TSV), a ``{"bytes", "path"}`` dict
            (Hugging Face parquet), a PIL image, or a list of these (several images).
        question: Question column(s); a list value (multi-turn ChartQAPro) uses its last entry.
        answer: Answer column(s); for a list value see ``answer_first``.
        choices: One column holding the option list.
        option_columns: Separate option columns (HRBench ``A``..``D``), used when ``choices`` has no value.
        transform: Column with the applied transform list (MVToolBench), e.g. ``["crop", "rotate_90"]``.
        bbox: Column with the answer box ``[x1, y1, x2, y2]`` in pixels of the given image.
        category: Category column, kept in ``meta["category"]``.
        task_type: Task-type column (``ocr``, ``chart``, ``math``, ``general``); else ``default_task_type``.
        default_task_type: Task type of rows without a ``task_type`` value.
        answer_first: A list answer holds several acceptable answers (OCRBench): ``answer`` is the first,
            ``meta["answers"]`` all of them (cv-bench accepts any one). When the question is a list of the
            same length (a conversation), the last answer alone belongs to the last question. ``False``
            joins a list answer into one answer with `` | ``.

    Example:
        >>> ColumnMap(image="img", bbox=None).image, ColumnMap().question
        (('img',), ('question', 'Question', 'text', 'query'))
    """

    id: tuple[str, ...] = ("id", "question_id", "index", "qid")
    image: tuple[str, ...] = ("image", "images", "image_path", "img", "image_file")
    question: tuple[str, ...] = ("question", "Question", "text", "query")
    answer: tuple[str, ...] = ("answer", "answers", "Answer", "label", "gt")
    choices: tuple[str, ...] = ("choices", "options")
    option_columns: tuple[str, ...] = ()
    transform: tuple[str, ...] = ("transform",)
    bbox: tuple[str, ...] = ("bbox", "answer_bbox")
    category: tuple[str, ...] = ("category", "question_type", "Question Type", "type")
    task_type: tuple[str, ...] = ()
    default_task_type: str = "general"
    answer_first: bool = True

    def __post_init__(self) -> None:
        for name in _COLUMN_FIELDS:
            value = getattr(self, name)
            cols = () if value is None else (value,) if isinstance(value, str) else tuple(value)
            if not all(isinstance(c, str) and c for c in cols):
                raise ValueError(f"ColumnMap.{name} must be column names, got {value!r}")
            object.__setattr__(self, name, cols)
        for name in ("image", "question", "answer"):
            if not getattr(self, name):
                raise ValueError(f"ColumnMap.{name} must name at least one column")

    @classmethod
    def parse(cls, spec: str) -> ColumnMap:
        """From the CLI form ``"image=img,question=query,answer=answers|label,answer_first=false"``.

        ``|`` separates alternative columns of one field; fields not named keep their defaults.

        Example:
            >>> ColumnMap.parse("image=img,answer=answers|label").answer
            ('answers', 'label')
        """
        kw: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for part in filter(None, (s.strip() for s in spec.split(","))):
            k, _, v = part.partition("=")
            k = k.strip()
            if k not in names:
                raise ValueError(f"unknown ColumnMap field {k!r}; use one of {sorted(names)}")
            if k == "answer_first":
                kw[k] = v.strip().lower() in ("1", "true", "yes")
            elif k == "default_task_type":
                kw[k] = v.strip()
            else:
                kw[k] = tuple(c.strip() for c in v.split("|") if c.strip())
        return cls(**kw)


# ------------------------------------------------------------------ reading table files


def find_table(path: str | Path) -> list[Path]:
    """The table file(s) behind ``path``: the file itself, or in a folder every parquet shard, else its
    first ``.jsonl`` / ``.json`` / ``.tsv`` file.

    Raises:
        FileNotFoundError: ``path`` does not exist, or a folder holds no table.
    """
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"no such file or folder: {p}")
    for suffix in TABLE_SUFFIXES:
        found = sorted(p.glob(f"*{suffix}"))
        if found:
            return found if suffix == ".parquet" else found[:1]
    raise FileNotFoundError(f"{p} has no {'/'.join(TABLE_SUFFIXES)} file: point at the table itself")


def read_rows(path: str | Path, report: BuildReport | None = None) -> list[dict[str, Any]]:
    """The rows of a table file or folder (see :func:`find_table`); invalid JSON lines go to ``report``.

    Example:
        >>> import json, tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
        >>> _ = f.write_text(json.dumps({"question": "q"}) + "\\n")
        >>> read_rows(f)
        [{'question': 'q'}]
    """
    report = report if report is not None else BuildReport()
    rows: list[dict[str, Any]] = []
    for f in find_table(path):
        if f.suffix == ".parquet":
            rows.extend(read_parquet_rows(f))
        elif f.suffix == ".jsonl":
            rows.extend(read_jsonl_rows(f, report))
        elif f.suffix == ".json":
            data = json.loads(f.read_text(encoding="utf-8"))
            rows.extend(data if isinstance(data, list) else list(data.values()))
        elif f.suffix == ".tsv":
            csv.field_size_limit(1 << 30)  # HRBench TSVs inline whole images as base64
            with open(f, encoding="utf-8", newline="") as fh:
                rows.extend(csv.DictReader(fh, delimiter="\t"))
        else:
            raise ValueError(f"cannot read {f.name}: tables are {'/'.join(TABLE_SUFFIXES)} files")
    return rows


# ------------------------------------------------------------------ rows -> items


def _pick(row: dict[str, Any], cols: Sequence[str]) -> Any:
    for c in cols:
        v = row.get(c)
        if (
            v is not None
            and not (isinstance(v, str) and v == "")
            and not (isinstance(v, float) and math.isnan(v))
        ):
            return v
    return None


def _as_list(v: Any) -> list[Any] | None:
    """``v`` as a list when it is one, or a string holding one (``"['a', 'b']"`` in TSV/CSV exports)."""
    if isinstance(v, list | tuple):
        return list(v)
    if isinstance(v, str) and v.strip().startswith("[") and v.strip().endswith("]"):
        try:
            parsed = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError):
            return None
        return list(parsed) if isinstance(parsed, list | tuple) else None
    return None


class _ImageError(ValueError):
    """An image value that could not be read (reported at stage ``image``)."""


def _decode(value: Any) -> Any:
    try:
        return decode(value)
    except ValueError as e:
        raise _ImageError(str(e)) from e


def _image(value: Any, image_dir: Path | None) -> Any:
    """Decode one image value; paths are looked up in ``image_dir`` and its ``images/`` folder."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str):
        return _decode(value)
    # Longer strings cannot be paths (OS limit), and stat() on them raises.
    if len(value) < 1024:
        roots = [image_dir, image_dir / "images"] if image_dir is not None else []
        for cand in (*(r / value for r in roots), Path(value).expanduser()):
            if cand.is_file():
                return _decode(str(cand))
    if len(value) > 256:  # HRBench-style TSVs inline the image as base64
        try:
            data = base64.b64decode(value, validate=True)
        except ValueError:
            data = None
        if data is not None:
            return _decode(data)
    where = f" under {image_dir} or {image_dir / 'images'}" if image_dir is not None else ""
    raise _ImageError(f"image file not found: {value[:80]!r}{where}")


def _answers(columns: ColumnMap, question: Any, answer: Any) -> list[str]:
    al = _as_list(answer)
    if not al:
        return [str(answer)]
    if not columns.answer_first:
        return [" | ".join(map(str, al))]
    ql = _as_list(question)
    if ql and len(ql) == len(al):  # a conversation: the last answer belongs to the last question
        return [str(al[-1])]
    return [str(a) for a in al]


def _row_item(
    row: dict[str, Any],
    index: int,
    rid: str,
    columns: ColumnMap,
    data_source: str,
    split: str,
    image_dir: Path | None,
) -> Item:
    """One row as an item; raises KeyError (missing columns) or ValueError (bad values)."""
    img, q, a = _pick(row, columns.image), _pick(row, columns.question), _pick(row, columns.answer)
    missing = [n for n, v in (("image", img), ("question", q), ("answer", a)) if v is None]
    if missing:
        need = "; ".join(f"{n}: one of {list(getattr(columns, n))}" for n in missing)
        raise KeyError(f"lacks {', '.join(missing)}; columns present {sorted(row)}; expected {need}")
    imgs = _as_list(img) if not isinstance(img, str | bytes | bytearray | dict) else None
    images = [_image(v, image_dir) for v in (imgs or [img])]
    ql = _as_list(q)
    answers = _answers(columns, q, a)
    choices = _as_list(_pick(row, columns.choices))
    if choices is None and columns.option_columns:
        choices = [str(row[c]) for c in columns.option_columns if _pick(row, [c]) is not None] or None
    bbox = _as_list(_pick(row, columns.bbox))
    transform = [str(t) for t in (_as_list(_pick(row, columns.transform)) or [])]
    bad = [t for t in transform if t not in TRANSFORM_NAMES]
    if bad:
        raise ValueError(f"unknown transform(s) {bad}; allowed {list(TRANSFORM_NAMES)}")
    category = _pick(row, columns.category)
    meta: dict[str, Any] = {"row": index}
    if len(answers) > 1:
        meta["answers"] = answers
    if category is not None:
        meta["category"] = str(category)
    return Item(
        id=rid,
        images=images,
        question=str(ql[-1] if ql else q),
        answer=answers[0],
        transform=transform,
        bbox=[float(v) for v in bbox] if bbox else None,
        data_source=data_source,
        split=split,
        task_type=str(_pick(row, columns.task_type) or columns.default_task_type),
        choices=[str(c) for c in choices] if choices else None,
        meta=meta,
    )


def row_item_stage(e: Exception) -> str:
    """The report stage of an error :func:`row_item` raised."""
    if isinstance(e, KeyError):
        return "columns"
    if isinstance(e, _ImageError):
        return "image"
    return "bbox" if "bbox" in str(e) else "load"


def row_item(
    row: dict[str, Any],
    index: int,
    columns: ColumnMap,
    data_source: str,
    split: str = "test",
    image_dir: str | Path | None = None,
    id_prefix: str | None = None,
) -> Item:
    """Row ``index`` of a table as an item (see :func:`rows_to_items`).

    Raises:
        KeyError: A required column is missing (the message lists the columns tried).
        ValueError: An unreadable image, unknown transform or a box outside the image.
    """
    rid = _pick(row, columns.id)
    rid = str(rid) if rid is not None else f"{id_prefix or data_source}-{index:06d}"
    root = Path(image_dir).expanduser() if image_dir is not None else None
    return _row_item(row, index, rid, columns, data_source, split, root)


def rows_to_items(
    rows: Iterable[dict[str, Any]],
    columns: ColumnMap | None = None,
    *,
    data_source: str,
    split: str = "test",
    image_dir: str | Path | None = None,
    id_prefix: str | None = None,
    report: BuildReport | None = None,
) -> list[Item]:
    """Map raw rows to items with ``columns``.

    Bad rows (missing column, unreadable image, unknown transform, box outside the image) go to ``report``
    with their row number and a message naming the columns tried; the rest are kept.

    Args:
        rows: Table rows (dicts).
        columns: Column mapping (default: :class:`ColumnMap`'s defaults).
        data_source: Recorded on every item.
        split: Recorded on every item.
        image_dir: Folder that relative image paths are resolved against (also its ``images/`` folder).
        id_prefix: Ids of rows without an id column are ``<id_prefix>-<row>`` (default: ``data_source``).
        report: Collects per-record errors.

    Example:
        >>> from PIL import Image
        >>> rows = [{"img": Image.new("RGB", (8, 8)), "query": "q?", "answers": ["a", "A"]}]
        >>> it = rows_to_items(rows, ColumnMap.parse("image=img,question=query"), data_source="demo")[0]
        >>> it.id, it.answer, it.meta["answers"]
        ('demo-000000', 'a', ['a', 'A'])
    """
    columns = columns or ColumnMap()
    report = report if report is not None else BuildReport()
    root = Path(image_dir).expanduser() if image_dir is not None else None
    out: list[Item] = []
    for i, row in enumerate(rows):
        report.total += 1
        rid = _pick(row, columns.id)
        rid = str(rid) if rid is not None else f"{id_prefix or data_source}-{i:06d}"
        try:
            out.append(_row_item(row, i, rid, columns, data_source, split, root))
            report.ok += 1
        except (KeyError, ValueError, TypeError) as e:
            report.add_error(i, rid, row_item_stage(e), str(e.args[0]) if isinstance(e, KeyError) else str(e))
    return out


def load_table(
    path: str | Path,
    columns: ColumnMap | None = None,
    *,
    data_source: str | None = None,
    split: str = "test",
    image_dir: str | Path | None = None,
    id_prefix: str | None = None,
    limit: int | None = None,
    report: BuildReport | None = None,
) -> list[Item]:
    """Load a user's table (e.g. an OCRBench or ChartQA copy) as items.

    Args:
        path: A ``.parquet`` / ``.jsonl`` / ``.json`` / ``.tsv`` file, or a folder holding one (every
            parquet shard of a folder is read).
        columns: Column mapping (default: :class:`ColumnMap`'s defaults).
        data_source: Name recorded on each item (default: the file stem).
        split: Split recorded on each item.
        image_dir: Folder that relative image paths are resolved against (default: the table's folder).
        id_prefix: Prefix of numbered ids (default: ``data_source``).
        limit: Read at most this many rows.
        report: Collects per-record errors (bad rows never abort the load).

    Example:
        >>> load_table("ocrbench.jsonl", ColumnMap(image="image_path", answer="answers"))  # doctest: +SKIP
    """
    report = report if report is not None else BuildReport()
    rows = read_rows(path, report)
    if limit is not None:
        rows = rows[:limit]
    p = Path(path).expanduser()
    return rows_to_items(
        rows,
        columns,
        data_source=data_source or p.stem,
        split=split,
        image_dir=image_dir if image_dir is not None else (p if p.is_dir() else p.parent),
        id_prefix=id_prefix,
        report=report,
    )


def load_hf(
    name: str,
    split: str = "test",
    columns: ColumnMap | None = None,
    *,
    data_source: str | None = None,
    limit: int | None = None,
    report: BuildReport | None = None,
    **load_kwargs: Any,
) -> list[Item]:
    """Load a Hugging Face dataset (hub name or local path) through ``datasets.load_dataset``.

    Needs the ``hf`` extra (``pip install cv-data[hf]``).

    Example:
        >>> load_hf("echo840/OCRBench", "test", ColumnMap(answer="answer"))  # doctest: +SKIP
    """
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("load_hf needs the `datasets` package: pip install cv-data[hf]") from e
    ds = datasets.load_dataset(name, split=split, **load_kwargs)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return rows_to_items(
        iter(ds),
        columns,
        data_source=data_source or name.rstrip("/").split("/")[-1],
        split=split,
        report=report,
    )
