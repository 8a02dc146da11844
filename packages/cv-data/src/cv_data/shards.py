"""Streaming, sharded, resumable dataset builds in the Hugging Face layout.

A build makes records ``0 .. num-1``, each independently from the build's settings and its index (so any
machine or worker makes the same bytes for it), into rows of one :class:`~cv_data.records.Layout`. Record
ranges map to file shards, written as they fill, so memory does not grow with ``num``::

    out/
      README.md                            dataset card: schema, build command, seed, counts
      report.json                          every record that failed, with the reason
      data/train-00000-of-00004.parquet    records [0, R), row groups of at most G rows / B bytes
      data/train-00001-of-00004.parquet    records [R, 2R) ...

A shard is complete or absent: it is written under a hidden temporary name and renamed when done, and its
footer carries the build's fingerprint, its record range, its row count and its failed records. A rerun of
the same build skips the complete shards (a killed build continues where it stopped; the result equals an
uninterrupted build), a different build into the same folder is refused. ``shard=(K, N)`` builds the
shards ``j`` with ``j % N == K``: N machines (a Slurm array, any job runner) build disjoint files whose
union is byte-identical to a one-machine build. The card and ``report.json`` are written from the shards'
footers once all shards are present (rerun the command after copying the shards together).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ._parallel import imap_ordered
from .records import Layout
from .report import BuildReport, RecordError

#: Footer key (parquet) under which a shard records its build metadata.
META_KEY = b"cv_data.shard"


@dataclass(frozen=True)
class ShardConfig:
    """How a build is split into files.

    Attributes:
        records_per_shard: Records per file shard (Hugging Face's datasets aim at files of a few hundred
            MB; 500 synthetic RL items are about 450 MB). Also the unit of resuming and of ``--shard``.
        row_group_rows: Most rows per parquet row group (``datasets`` uses 100 for image datasets).
        row_group_bytes: Most bytes per row group (images included); a group is closed at whichever
            bound comes first, so readers never load more than this at once.
        split: Split name in the file names (``data/<split>-00000-of-000NN.parquet``).
        file_format: ``"parquet"`` (images inside) or ``"jsonl"`` (one JSON line per row; the images as
            PNG files under ``data/images/``, referenced by paths relative to ``data/``).
    """

    records_per_shard: int = 500
    row_group_rows: int = 100
    row_group_bytes: int = 64 * 2**20
    split: str = "train"
    file_format: str = "parquet"

    def __post_init__(self) -> None:
        for name in ("records_per_shard", "row_group_rows", "row_group_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not re.fullmatch(r"\w+", self.split):
            raise ValueError(f"split must be a word such as 'train' or 'test', got {self.split!r}")
        if self.file_format not in ("parquet", "jsonl"):
            raise ValueError(f"file_format must be 'parquet' or 'jsonl', got {self.file_format!r}")


def parse_shard(spec: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)``: this machine builds the shards ``j`` with ``j % N == K``.

    Example:
        >>> parse_shard("2/8")
        (2, 8)
        >>> parse_shard("8/8")
        Traceback (most recent call last):
        ...
        ValueError: --shard 8/8: K must be in 0..N-1 (e.g. 0/8 .. 7/8 for 8 machines)
    """
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not m:
        raise ValueError(f"--shard {spec!r} must be K/N, e.g. 0/4 (this machine is K of N)")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {spec}: K must be in 0..N-1 (e.g. 0/{n} .. {n - 1}/{n} for {n} machines)")
    return k, n


@dataclass
class RecordRows:
    """What a build makes of one record: its rows, or why it failed.

    Attributes:
        rows: Rows of the build's layout (images already encoded).
        error: ``(stage, id, message)`` when the record failed (then ``rows`` is empty).
        stats: Counters merged into the report (e.g. ``{"transform:rotate_90": 1}``).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    error: tuple[str, str | None, str] | None = None
    stats: dict[str, int] = field(default_factory=dict)


@dataclass
class BuildSpec:
    """One dataset build.

    Attributes:
        builder: The command that builds it, e.g. ``"build-rl"``.
        num: Number of records.
        layout: The rows' layout.
        tasks: ``tasks(start, stop)`` yields the work item of each record in ``[start, stop)``, in order
            (runs in the main process; e.g. reads input rows).
        make: ``make(task) -> RecordRows``; a module-level function (it runs in worker processes).
        settings: Everything that decides the output (seed, sources, input file, ...): two builds with the
            same settings make the same bytes; a build with other settings is refused in the same folder.
        command: The command line that reproduces the build (shown in the card; ``--out OUT`` is shown
            with the folder's name).
        title: The card's title.
        description: The card's first paragraph.
        usage: Markdown telling how to load the dataset (``{out}`` is replaced by the folder name).
        extra_files: Further files written next to the card once the build is complete (name -> text),
            e.g. LLaMA-Factory's ``dataset_info.json``.
    """

    builder: str
    num: int
    layout: Layout
    tasks: Callable[[int, int], Iterable[Any]]
    make: Callable[[Any], RecordRows]
    settings: dict[str, Any]
    command: str
    title: str
    description: str = ""
    usage: str = ""
    extra_files: dict[str, str] = field(default_factory=dict)

    def fingerprint(self, cfg: ShardConfig) -> str:
        """Hash of what decides the bytes of every shard."""
        from . import __version__

        ident = {
            "builder": self.builder,
            "num": self.num,
            "layout": self.layout.name,
            "settings": self.settings,
            "shards": asdict(cfg),
            "cv_data": __version__,
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class BuildResult:
    """What a build (or a part of it, with ``shard``) did.

    Attributes:
        out: The dataset folder.
        files: Every shard file of the dataset (present or not yet).
        built: Shards built by this run.
        skipped: Shards this run found complete and kept.
        report: Records of this run's shards (built and kept): totals, failures, stats.
        complete: Every shard of the dataset is present.
        card: The dataset card, once complete.
    """

    out: Path
    files: list[Path]
    built: int
    skipped: int
    report: BuildReport
    complete: bool
    card: Path | None


# --------------------------------------------------------------------------------- files


def shard_paths(out: Path, n_shards: int, split: str, suffix: str = ".parquet") -> list[Path]:
    """``out/data/<split>-00000-of-000NN<suffix>`` ... (Hugging Face's naming)."""
    return [out / "data" / f"{split}-{j:05d}-of-{n_shards:05d}{suffix}" for j in range(n_shards)]


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.meta.json")


def read_shard_meta(path: Path) -> dict[str, Any] | None:
    """The build metadata a shard carries (a parquet footer, or a JSONL shard's hidden sidecar), or
    ``None`` (absent, not a cv-data shard, unreadable)."""
    import pyarrow.parquet as pq

    if path.suffix == ".jsonl":
        side = _sidecar(path)
        if not (path.is_file() and side.is_file()):
            return None
        try:
            return json.loads(side.read_text())
        except ValueError:
            return None
    try:
        kv = pq.read_metadata(path).metadata or {}
    except Exception:  # noqa: BLE001 - any unreadable file is "not a complete shard"
        return None
    raw = kv.get(META_KEY)
    return json.loads(raw) if raw else None


class _ShardWriter:
    """One parquet shard being written: rows are buffered into bounded row groups."""

    def __init__(self, tmp: Path, layout: Layout, cfg: ShardConfig) -> None:
        import pyarrow.parquet as pq

        self.tmp, self.cfg = tmp, cfg
        self.schema = layout.schema()
        leaves = _leaf_paths(self.schema)
        # Image bytes are PNG: compressing, dictionary-encoding or taking min/max statistics of them only
        # costs time and memory (the dictionary encoder would hash every image before giving up).
        images = {f"{c}.list.element.bytes" for c in layout.image_columns}
        plain = [p for p in leaves if p not in images]
        self.writer = pq.ParquetWriter(
            tmp,
            self.schema,
            use_dictionary=plain,
            write_statistics=plain,
            compression={p: ("NONE" if p in images else "SNAPPY") for p in leaves},
        )
        self.buf: list[dict[str, Any]] = []
        self.buf_bytes = 0
        self.rows = 0

    def finish(self, target: Path, meta: dict[str, Any]) -> None:
        self.close(meta)
        os.replace(self.tmp, target)

    def add(self, row: dict[str, Any]) -> None:
        self.buf.append(row)
        self.buf_bytes += _row_bytes(row)
        self.rows += 1
        if len(self.buf) >= self.cfg.row_group_rows or self.buf_bytes >= self.cfg.row_group_bytes:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.buf:
            self.writer.write_table(pa.Table.from_pylist(self.buf, schema=self.schema))
            self.buf, self.buf_bytes = [], 0
            # Arrow's allocator keeps freed pages for reuse; a row group of images is large and rare, so
            # hand them back, or the process keeps the high-water mark of every flush.
            pa.default_memory_pool().release_unused()

    def close(self, meta: dict[str, Any]) -> None:
        self.flush()
        self.writer.add_key_value_metadata({META_KEY: json.dumps(meta, sort_keys=True).encode()})
        self.writer.close()

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def _leaf_paths(schema: Any) -> list[str]:
    """Parquet column paths of every leaf (``images.list.element.bytes``, ``extra_info.index``, ...)."""
    import pyarrow as pa

    def walk(prefix: str, t: Any) -> Iterator[str]:
        if pa.types.is_list(t):
            yield from walk(f"{prefix}.list.element", t.value_type)
        elif pa.types.is_struct(t):
            for i in range(t.num_fields):
                yield from walk(f"{prefix}.{t.field(i).name}", t.field(i).type)
        else:
            yield prefix

    return [p for f in schema for p in walk(f.name, f.type)]


class _JsonlShardWriter:
    """One JSONL shard being written: image structs become PNG files under ``data/images/``."""

    def __init__(self, tmp: Path, layout: Layout, cfg: ShardConfig) -> None:
        self.tmp, self.layout = tmp, layout
        self.images = tmp.parent / "images"
        self.images.mkdir(exist_ok=True)
        self.fh = open(tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish/abort
        self.rows = 0

    def add(self, row: dict[str, Any]) -> None:
        row = dict(row)
        rid = str(row.get("id") or (row.get("extra_info") or {}).get("id") or self.rows)
        for col in self.layout.image_columns:
            paths = []
            for k, im in enumerate(row.get(col) or []):
                name = f"images/{rid.replace('/', '__')}_{k}.png"
                (self.tmp.parent / name).write_bytes(im["bytes"])
                paths.append(name)
            row[col] = paths
        self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.rows += 1

    def finish(self, target: Path, meta: dict[str, Any]) -> None:
        self.fh.close()
        os.replace(self.tmp, target)
        side = _sidecar(target)
        tmp_side = side.with_name(side.name + ".tmp")
        tmp_side.write_text(json.dumps(meta, sort_keys=True))
        os.replace(tmp_side, side)

    def abort(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


def _row_bytes(v: Any) -> int:
    if isinstance(v, bytes | str):
        return len(v)
    if isinstance(v, dict):
        return sum(_row_bytes(x) for x in v.values())
    if isinstance(v, list | tuple):
        return sum(_row_bytes(x) for x in v)
    return 8


# --------------------------------------------------------------------------------- build


def _record_range(j: int, num: int, per: int) -> tuple[int, int]:
    return j * per, min(num, (j + 1) * per)


def _claim(out: Path, fingerprint: str, files: list[Path], overwrite: bool) -> None:
    """Refuse (or, with ``overwrite``, clear) a folder that holds another build's shards."""
    data = out / "data"
    if not data.is_dir():
        return
    expected = set(files)
    foreign = []
    for f in sorted([*data.glob("*.parquet"), *data.glob("*.jsonl")]):
        meta = read_shard_meta(f)
        if f not in expected or meta is None or meta.get("fingerprint") != fingerprint:
            foreign.append((f, meta))
    if not foreign:
        return
    if not overwrite:
        f, meta = foreign[0]
        what = f"another build ({meta['build']['command']})" if meta else "files cv-data did not write"
        raise ValueError(
            f"{out} holds {len(foreign)} shard(s) of {what}, e.g. {f.name}: use a new --out, or --overwrite "
            "to replace them"
        )
    for f, _ in foreign:
        f.unlink()
        _sidecar(f).unlink(missing_ok=True)
    for extra in (out / "README.md", out / "report.json", out / "dataset_info.json"):
        extra.unlink(missing_ok=True)


def run_build(
    spec: BuildSpec,
    out: str | Path,
    *,
    config: ShardConfig | None = None,
    shard: tuple[int, int] = (0, 1),
    num_proc: int = 1,
    progress: bool = True,
    overwrite: bool = False,
) -> BuildResult:
    """Build ``spec`` into ``out`` (see the module docstring): stream the records through ``num_proc``
    workers into bounded row groups of hidden shard files, rename each shard when complete, skip the
    shards a previous run completed, and write the card and ``report.json`` once every shard exists.

    Raises:
        ValueError: ``out`` holds another build's shards (without ``overwrite``), bad ``shard``.
    """
    cfg = config or ShardConfig()
    k, n_machines = shard
    if n_machines < 1 or not 0 <= k < n_machines:
        raise ValueError(f"shard must be (K, N) with 0 <= K < N, got {shard}")
    out = Path(out)
    n_shards = max(1, math.ceil(spec.num / cfg.records_per_shard))
    files = shard_paths(out, n_shards, cfg.split, f".{cfg.file_format}")
    fp = spec.fingerprint(cfg)
    _claim(out, fp, files, overwrite)
    (out / "data").mkdir(parents=True, exist_ok=True)
    mine = [j for j in range(n_shards) if j % n_machines == k]
    for j in mine:  # a killed run's partial shards (only ours: other machines may share the folder)
        for stale in (out / "data").glob(f".{files[j].name}.*.tmp"):
            stale.unlink()
    done = [j for j in mine if (read_shard_meta(files[j]) or {}).get("fingerprint") == fp]
    todo = [j for j in mine if j not in done]
    per = cfg.records_per_shard

    def size(j: int) -> int:
        a, b = _record_range(j, spec.num, per)
        return b - a

    bar = tqdm(
        total=sum(size(j) for j in mine),
        initial=sum(size(j) for j in done),
        desc=spec.builder,
        unit="rec",
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        _build_shards(spec, cfg, fp, files, todo, num_proc, bar)
    finally:
        bar.close()
    report = BuildReport()
    for j in mine:
        _merge_shard_report(report, read_shard_meta(files[j]) or {})
    complete = all((read_shard_meta(f) or {}).get("fingerprint") == fp for f in files)
    card = write_card(out) if complete else None
    return BuildResult(out, files, len(todo), len(done), report, complete, card)


def _tasks(spec: BuildSpec, todo: list[int], per: int) -> Iterator[tuple[int, int, Any]]:
    """``(shard, record index, task)`` for every record of the shards to build, in order."""
    for j in todo:
        start, stop = _record_range(j, spec.num, per)
        for i, task in enumerate(spec.tasks(start, stop), start):
            if i >= stop:
                raise RuntimeError(f"{spec.builder}: tasks({start}, {stop}) yielded more than {stop - start}")
            yield j, i, task


def _call_make(arg: tuple[Callable[[Any], RecordRows], Any]) -> RecordRows:
    make, task = arg
    return make(task)


def _build_shards(
    spec: BuildSpec,
    cfg: ShardConfig,
    fp: str,
    files: list[Path],
    todo: list[int],
    num_proc: int,
    bar: Any,
) -> None:
    per = cfg.records_per_shard
    for j in todo:  # a shard without records (num = 0) is still written, so the build completes
        a, b = _record_range(j, spec.num, per)
        if a == b:
            _close_shard(spec, cfg, fp, files, _open_shard(spec, cfg, files, j))
    todo = [j for j in todo if _record_range(j, spec.num, per)[0] < _record_range(j, spec.num, per)[1]]
    if not todo:
        return
    order: list[tuple[int, int]] = []  # (shard, index) of each task handed out, consumed in order

    def work() -> Iterator[tuple[Callable[[Any], RecordRows], Any]]:
        for j, i, task in _tasks(spec, todo, per):
            order.append((j, i))
            yield spec.make, task

    current: dict[str, Any] = {}  # shard j, its writer, errors, stats, expected records, seen
    try:
        preload = [spec.make.__module__]
        for pos, (res, err) in enumerate(
            imap_ordered(_call_make, work(), num_proc=num_proc, preload=preload)
        ):
            j, i = order[pos]
            if current.get("j") != j:
                current = _open_shard(spec, cfg, files, j)
                bar.set_postfix_str(f"shard {j + 1}/{len(files)}")
            if err is not None:
                current["errors"].append(asdict(RecordError(i, None, "generate", err)))
            elif res is not None and res.error is not None:
                stage, rid, msg = res.error
                current["errors"].append(asdict(RecordError(i, rid, stage, msg)))
            elif res is not None:
                for row in res.rows:
                    current["writer"].add(row)
                for key, v in res.stats.items():
                    current["stats"][key] = current["stats"].get(key, 0) + v
            current["seen"] += 1
            bar.update(1)
            if current["seen"] == current["expected"]:
                _close_shard(spec, cfg, fp, files, current)
                current = {}
    finally:
        if current:
            current["writer"].abort()


def _open_shard(spec: BuildSpec, cfg: ShardConfig, files: list[Path], j: int) -> dict[str, Any]:
    start, stop = _record_range(j, spec.num, cfg.records_per_shard)
    tmp = files[j].with_name(f".{files[j].name}.{os.getpid()}.tmp")
    writer = (_ShardWriter if cfg.file_format == "parquet" else _JsonlShardWriter)(tmp, spec.layout, cfg)
    return {
        "j": j,
        "writer": writer,
        "errors": [],
        "stats": {},
        "expected": stop - start,
        "seen": 0,
        "range": [start, stop],
    }


def _close_shard(spec: BuildSpec, cfg: ShardConfig, fp: str, files: list[Path], cur: dict[str, Any]) -> None:
    writer = cur["writer"]
    meta = {
        "fingerprint": fp,
        "shard": cur["j"],
        "of": len(files),
        "records": cur["range"],
        "rows": writer.rows,
        "errors": cur["errors"],
        "stats": dict(sorted(cur["stats"].items())),
        "build": {
            "builder": spec.builder,
            "command": spec.command,
            "title": spec.title,
            "description": spec.description,
            "usage": spec.usage,
            "num": spec.num,
            "layout": spec.layout.name,
            "columns": [
                [f.name, _type_name(f.type), spec.layout.columns.get(f.name, "")]
                for f in spec.layout.schema()
            ],
            "settings": spec.settings,
            "split": cfg.split,
            "file_format": cfg.file_format,
            "extra_files": spec.extra_files,
        },
    }
    writer.finish(files[cur["j"]], meta)


def _merge_shard_report(report: BuildReport, meta: dict[str, Any]) -> None:
    if not meta:
        return
    a, b = meta["records"]
    report.total += b - a
    report.ok += b - a - len(meta["errors"])
    report.errors.extend(RecordError(**e) for e in meta["errors"])
    for key, v in meta["stats"].items():
        report.stats[key] = report.stats.get(key, 0) + v
    report.stats["rows"] = report.stats.get("rows", 0) + meta["rows"]


# --------------------------------------------------------------------------------- card


def _type_name(t: Any) -> str:
    import pyarrow as pa

    if pa.types.is_list(t):
        return f"list<{_type_name(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct"
    return str(t)


def write_card(out: str | Path) -> Path:
    """Write ``README.md`` (the dataset card) and ``report.json`` of a complete build, from the shards'
    footers alone: the same shards give the same bytes, whichever machines built them.

    Raises:
        FileNotFoundError: ``out/data`` holds no cv-data shards.
    """
    out = Path(out)
    files = sorted([*(out / "data").glob("*.parquet"), *(out / "data").glob("*.jsonl")])
    metas = [m for m in (read_shard_meta(f) for f in files) if m]
    if not metas:
        raise FileNotFoundError(f"{out}/data holds no shards written by cv-data")
    build = metas[0]["build"]
    report = BuildReport()
    for m in metas:
        _merge_shard_report(report, m)
    report.errors.sort(key=lambda e: e.index)
    report.write(out / "report.json")
    split, suffix = build["split"], files[0].suffix
    rows = report.stats.get("rows", 0)
    stats = {k: v for k, v in report.stats.items() if k != "rows"}
    from . import __version__

    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        f"  - split: {split}",
        f"    path: data/{split}-*",
        "dataset_info:",
        "  splits:",
        f"  - name: {split}",
        f"    num_examples: {rows}",
        "tags:",
        "- cv-data",
        "- codevision",
        "---",
        "",
        f"# {build['title']}",
        "",
        build["description"],
        "",
        f"Built by cv-data {__version__} with:",
        "",
        "```bash",
        build["command"].replace("--out OUT", f"--out {shlex.quote(out.name)}"),
        "```",
        "",
        "| | |",
        "|---|---|",
        f"| records | {report.total} |",
        f"| seed | {build['settings'].get('seed', '')} |",
        f"| rows | {rows} |",
        f"| failed records | {len(report.errors)}"
        + (" (reasons in `report.json`)" if report.errors else "")
        + " |",
        f"| files | {len(files)} x `data/{split}-NNNNN-of-{len(files):05d}{suffix}` |",
        f"| layout | `{build['layout']}` |",
        "",
    ]
    if stats:
        lines += ["## Contents", "", "| count | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(stats.items())]
        lines.append("")
    lines += [
        "## Settings",
        "",
        "```json",
        json.dumps(build["settings"], indent=2, sort_keys=True),
        "```",
        "",
    ]
    lines += ["## Schema", "", "| column | type | holds |", "|---|---|---|"]
    for name, type_name, holds in build["columns"]:
        lines.append(f"| `{name}` | {type_name} | {holds} |")
    lines += ["", "## Load", "", build["usage"].replace("{out}", out.name), ""]
    for name, text in {**build.get("extra_files", {}), "README.md": "\n".join(lines)}.items():
        tmp = out / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
    return out / "README.md"
