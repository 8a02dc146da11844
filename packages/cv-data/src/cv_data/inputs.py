"""Records a builder reads instead of making synthetic ones, streamed: the rows of a range are read when
that range is built, and each row becomes an :class:`~cv_data.Item` in the worker that builds it.

Formats: ``items`` (our parquet / JSONL items, or verl's layout, detected per row), ``verl`` (verl's RL
parquet: ours, the CodeVision release's, MVToolBench's), ``table`` (any parquet / JSONL / JSON / TSV
table through a :class:`~cv_data.ColumnMap`), ``hf`` (a Hugging Face dataset, through ``datasets``), and
the published layouts of :data:`cv_data.importers.IMPORTERS` (``vstar``, ``hrbench``, ``deepeyes``, ...).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from cv_protocol import Preset

from .importers import IMPORTERS, SFT_IMPORTERS, text_rows
from .item import Item
from .records import (
    count_parquet_rows,
    is_verl_row,
    item_from_row,
    parquet_files,
    parquet_range,
    row_message,
    row_stage,
    verl_item,
)
from .report import BuildReport
from .shards import RecordRows
from .tables import ColumnMap, find_table, row_item, row_item_stage

#: Input formats of :class:`InputSpec`: the generic ones, then every importer (:data:`IMPORTERS`).
INPUT_FORMATS: tuple[str, ...] = (
    "items",
    "verl",
    "table",
    "hf",
    *(n for n in IMPORTERS if n not in SFT_IMPORTERS),
)


class _BadLine(ValueError):
    """A JSONL line that is not valid JSON (reported when its record is built)."""


@dataclass(frozen=True)
class InputSpec:
    """Where a builder's records come from (read lazily, a range at a time).

    Attributes:
        path: File or folder (``items``, ``verl``, ``table``), or a Hugging Face dataset name or local
            path (``hf``).
        format: One of :data:`INPUT_FORMATS`.
        columns: Column map for ``table`` / ``hf`` (default: :class:`ColumnMap`'s defaults).
        split: Split to load for ``hf``; recorded on ``table`` / ``hf`` items.
        data_source: Recorded on ``table`` / ``hf`` items (default: the file stem or dataset name).
    """

    path: str
    format: str = "items"
    columns: ColumnMap | None = None
    split: str = "test"
    data_source: str | None = None

    def __post_init__(self) -> None:
        if self.format not in INPUT_FORMATS:
            raise ValueError(f"input format must be one of {INPUT_FORMATS}, got {self.format!r}")
        if self.format != "hf" and not Path(self.path).expanduser().exists():
            raise FileNotFoundError(f"no such file or folder: {self.path}")

    # ------------------------------------------------------------------ main process

    def files(self) -> list[Path]:
        """The files read, in order (none for ``hf``)."""
        if self.format == "hf":
            return []
        p = Path(self.path).expanduser()
        if self.format in IMPORTERS:
            return IMPORTERS[self.format].files(p)
        if self.format == "table":
            return find_table(p)
        if p.suffix == ".parquet" or (p.is_dir() and parquet_files(p)):
            return parquet_files(p)
        return _jsonl_files(p)

    def identity(self) -> dict[str, Any]:
        """What identifies the input in a build's settings: names and sizes of its files (the same copy on
        another machine gives the same identity), the format and the column map."""
        files = [[f.name, f.stat().st_size] for f in self.files()]
        return {
            "input": self.path if self.format == "hf" else Path(self.path).name,
            "format": self.format,
            "files": files,
            "columns": repr(self.columns) if self.columns else None,
            "split": self.split,
        }

    def count(self) -> int:
        """Number of input rows (footers for parquet; one pass over text files)."""
        if self.format == "hf":
            return len(self._hf())
        if self.format in IMPORTERS:
            return IMPORTERS[self.format].count(Path(self.path).expanduser())
        files = self.files()
        if files and files[0].suffix == ".parquet":
            return count_parquet_rows(Path(self.path).expanduser())
        return sum(1 for _ in text_rows(files))

    def rows(self, start: int, stop: int) -> Iterator[Any]:
        """The raw rows ``start .. stop-1`` (a parquet file's row groups before ``start`` are skipped)."""
        if self.format == "hf":
            ds = self._hf()
            for i in range(start, min(stop, len(ds))):
                yield ds[i]
            return
        if self.format in IMPORTERS:
            yield from IMPORTERS[self.format].rows(Path(self.path).expanduser(), start, stop)
            return
        files = self.files()
        if files and files[0].suffix == ".parquet":
            yield from parquet_range(files, start, stop)
            return
        for i, row in enumerate(text_rows(files)):
            if i >= stop:
                return
            if i >= start:
                yield row

    def _hf(self) -> Any:
        try:
            import datasets
        except ImportError as e:  # pragma: no cover - exercised only without the extra
            raise ImportError(
                "--input-format hf needs the `datasets` package: pip install cv-data[hf]"
            ) from e
        return datasets.load_dataset(self.path, split=self.split)

    # ------------------------------------------------------------------ worker

    def item(self, row: Any, index: int) -> Item:
        """The item of input row ``index`` (runs in the worker that builds it).

        Raises:
            KeyError: A required column is missing.
            ValueError: A bad value (invalid JSON line, unreadable image, bad box or transform).
        """
        if self.format in IMPORTERS:
            return IMPORTERS[self.format].item(row, index, Path(self.path).expanduser())
        if isinstance(row, str):  # a JSONL line
            try:
                row = json.loads(row)
            except json.JSONDecodeError as e:
                raise _BadLine(f"input row {index} is not valid JSON: {e}") from None
        if self.format in ("table", "hf"):
            p = Path(self.path).expanduser()
            name = self.data_source or (
                p.stem if self.format == "table" else self.path.rstrip("/").split("/")[-1]
            )
            image_dir = None if self.format == "hf" else (p if p.is_dir() else p.parent)
            return row_item(row, index, self.columns or ColumnMap(), name, self.split, image_dir)
        if self.format == "verl" or is_verl_row(row):
            return verl_item(row, index)
        base = self.files()[0].parent if self.files() and self.files()[0].suffix == ".jsonl" else None
        return item_from_row(row, base)

    def read(self, *, report: BuildReport | None = None, limit: int | None = None) -> list[Item]:
        """Every item (or the first ``limit``) in memory; bad rows go to ``report``.

        Example:
            >>> import tempfile, pathlib
            >>> from cv_data.testing import tiny_items
            >>> from cv_data.records import write_verl
            >>> p = write_verl(tiny_items(2), pathlib.Path(tempfile.mkdtemp()) / "v.parquet")
            >>> [it.id for it in InputSpec(str(p), "verl").read()]
            ['tiny-s0-0000', 'tiny-s0-0001']
        """
        report = report if report is not None else BuildReport()
        out = []
        stop = limit if limit is not None else 1 << 62
        for i, row in enumerate(self.rows(0, stop)):
            report.total += 1
            try:
                out.append(self.item(row, i))
                report.ok += 1
            except (KeyError, ValueError, TypeError) as e:
                stage, rid, msg = self.error(row, e)
                report.add_error(i, rid, stage, msg)
        return out

    def error(self, row: Any, e: Exception) -> tuple[str, str | None, str]:
        """``(stage, id, message)`` of a row that :meth:`item` rejected."""
        rid = None
        if isinstance(row, dict):
            extra = row.get("extra_info")
            rid = row.get("id") or (extra.get("id") if isinstance(extra, dict) else None)
        if self.format in ("table", "hf") and not isinstance(e, _BadLine):
            stage = row_item_stage(e)
            return stage, rid and str(rid), str(e.args[0]) if isinstance(e, KeyError) else str(e)
        return row_stage(e), rid and str(rid), row_message(e)


def _jsonl_files(p: Path) -> list[Path]:
    if not p.is_dir():
        return [p]
    for found in (sorted((p / "data").glob("*.jsonl")), [p / "items.jsonl"], sorted(p.glob("*.jsonl"))):
        found = [f for f in found if f.is_file()]
        if found:
            return found
    raise FileNotFoundError(f"{p} holds no parquet or .jsonl records")


_C = TypeVar("_C")


@dataclass(frozen=True)
class ItemTask(Generic[_C]):
    """One record of an item build (RL items, benchmark suites): its index, the build's settings, and the
    input row it is made from (none for a synthetic item). Crosses to worker processes, so it is plain."""

    index: int
    cfg: _C
    layout: str
    preset: Preset
    source: InputSpec | None = None
    row: Any = None

    def input_item(self) -> Item | RecordRows | None:
        """The input row as an item (None for a synthetic record), or the failed record saying why."""
        if self.source is None:
            return None
        try:
            return self.source.item(self.row, self.index)
        except (KeyError, ValueError, TypeError) as e:
            return RecordRows(error=self.source.error(self.row, e))


def item_tasks(
    cfg: _C, layout: str, preset: Preset, source: InputSpec | None
) -> Callable[[int, int], Iterator[ItemTask[_C]]]:
    """A build's ``tasks(start, stop)``: synthetic records by index, or the rows of ``source`` read a range
    at a time."""

    def tasks(start: int, stop: int) -> Iterator[ItemTask[_C]]:
        if source is None:
            for i in range(start, stop):
                yield ItemTask(i, cfg, layout, preset)
        else:
            for i, row in enumerate(source.rows(start, stop), start):
                yield ItemTask(i, cfg, layout, preset, source, row)

    return tasks
