"""Benchmark suites as items: build the built-in ones (orientation variants, natural corruptions, multi-tool
crop + orientation, crop-only) and load any suite of the registry (:data:`cv_data.suites.SUITES`), including
the user's copy of an external benchmark."""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cv_protocol import DEFAULT_PRESET, Preset

from ._parallel import pmap
from .importers import IMPORTERS
from .inputs import InputSpec, ItemTask, item_tasks
from .item import Item
from .records import LAYOUTS, layout_row, read_items, read_verl
from .report import BuildReport
from .shards import BuildResult, BuildSpec, RecordRows, ShardConfig, run_build
from .sources import SOURCES
from .suites import (
    BUILTIN_SUITES,
    CORRUPTION_SEVERITY,
    ORIENTATION_VARIANTS,
    SUITES,
    corruption_variant,
    get_suite,
)
from .tables import find_table, read_rows, rows_to_items
from .transforms import CORRUPTIONS, SEVERITIES, corrupt, transform_item


@dataclass
class BenchConfig:
    """How to build a built-in benchmark suite.

    Attributes:
        suite: A built-in suite of :data:`cv_data.SUITES`: ``"orientation"`` (6 variants per base item, ids
            ``<base>/rot90``, ``<base>/flip-h``), ``"corruption"`` (clean + every kind x severity, ids
            ``<base>/clean``, ``<base>/jpeg-s3``), ``"multi-tool"`` (crop items with one orientation
            perturbation each, ids ``<base>/rot90``) or ``"crop-only"`` (crop items as they are, variant
            ``crop``, ids unchanged).
        num: Number of base items (ignored when items are passed in); ``None`` = the suite's default size.
        seed: Seed for synthetic base items and random choices.
        sources: Synthetic sources used for base items; default: the suite's (registry) sources.
        corruptions: Corruption kinds for the corruption suite (default: all of :data:`CORRUPTIONS`).
        severities: Severities for the corruption suite; default: ``[CORRUPTION_SEVERITY]`` (3 of 5).
        split: Split recorded on generated items.
        num_proc: Worker processes.
        progress: Show a progress bar.
    """

    suite: str = "orientation"
    num: int | None = None
    seed: int = 1234
    sources: list[str] | None = None
    corruptions: list[str] = field(default_factory=lambda: list(CORRUPTIONS))
    severities: list[int] | None = None
    split: str = "test"
    num_proc: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.suite not in BUILTIN_SUITES:
            if self.suite in SUITES:
                raise ValueError(
                    f"suite {self.suite!r} is read from your copy, not built: "
                    f"load_suite({self.suite!r}, data=PATH); built-in suites: {', '.join(BUILTIN_SUITES)}"
                )
            raise ValueError(f"suite must be one of {BUILTIN_SUITES}, got {self.suite!r}")
        info = SUITES[self.suite]
        if self.num is None:
            self.num = info.default_size
        if self.num is None or self.num < 0:
            raise ValueError(f"num must be >= 0, got {self.num}")
        if self.sources is None:
            self.sources = list(info.sources)
        bad = [s for s in self.sources if s not in SOURCES]
        if bad or not self.sources:
            raise ValueError(f"sources must be non-empty names from {sorted(SOURCES)}, got {self.sources}")
        bad = [c for c in self.corruptions if c not in CORRUPTIONS]
        if bad:
            raise ValueError(f"unknown corruptions {bad}; choose from {sorted(CORRUPTIONS)}")
        if self.severities is None:
            self.severities = [CORRUPTION_SEVERITY]
        bad_s = [s for s in self.severities if s not in SEVERITIES]
        if bad_s:
            raise ValueError(f"severities must be in {SEVERITIES}, got {bad_s}")
        if self.num_proc < 1:
            raise ValueError(f"num_proc must be >= 1, got {self.num_proc}")


def orientation_variants(item: Item) -> list[Item]:
    """The 6 orientation variants of ``item`` (ids ``<id>/<variant>``, ``meta`` has variant and base id).

    Example:
        >>> from cv_data.sources import make_chart_item
        >>> [v.id.split("/")[-1] for v in orientation_variants(make_chart_item(0))]
        ['source', 'rot90', 'rot180', 'rot270', 'flip-h', 'flip-v']
    """
    return [
        transform_item(item, ops, id_suffix=name, meta={"variant": name, "base_id": item.id})
        for name, ops in ORIENTATION_VARIANTS.items()
    ]


def corruption_variants(
    item: Item, kinds: Sequence[str], severities: Sequence[int], seed: int = 0
) -> list[Item]:
    """``item`` clean plus corrupted with every kind x severity (ids ``<id>/clean``, ``<id>/<kind>-s<sev>``).

    Example:
        >>> from cv_data.sources import make_chart_item
        >>> len(corruption_variants(make_chart_item(0), ["jpeg", "contrast"], [1, 5]))
        5
    """
    out = [
        transform_item(
            item,
            [],
            id_suffix="clean",
            meta={"variant": "clean", "base_id": item.id, "corruption": None, "severity": 0},
        )
    ]
    for k, kind in enumerate(kinds):
        for sev in severities:
            name = corruption_variant(kind, sev)
            img = corrupt(item.images[0], kind, sev, seed=seed * 1000 + k)
            v = transform_item(
                item,
                [],
                id_suffix=name,
                meta={"variant": name, "base_id": item.id, "corruption": kind, "severity": sev},
            )
            v.images[0] = img
            out.append(v)
    return out


def _require_crop(base: Item, suite: str) -> None:
    if "crop" not in base.transform:
        raise ValueError(
            f"{suite} base item {base.id!r} has no 'crop' in its transform: use crop items "
            "(e.g. the 'scene' source) or items with a bbox marked ['crop']"
        )


def _orientation(base: Item, cfg: BenchConfig, i: int) -> list[Item]:
    return orientation_variants(base)


def _corruption(base: Item, cfg: BenchConfig, i: int) -> list[Item]:
    assert cfg.severities is not None
    return corruption_variants(base, cfg.corruptions, cfg.severities, seed=cfg.seed + i)


def _multi_tool(base: Item, cfg: BenchConfig, i: int) -> list[Item]:
    rng = np.random.default_rng([cfg.seed, i, 11])
    name = str(rng.choice([n for n in ORIENTATION_VARIANTS if n != "source"]))
    _require_crop(base, cfg.suite)
    ops = ORIENTATION_VARIANTS[name]
    return [transform_item(base, ops, id_suffix=name, meta={"variant": name, "base_id": base.id})]


def _toy(base: Item, cfg: BenchConfig, i: int) -> list[Item]:
    return orientation_variants(base)[:4]  # upright and the three rotations: the toy task has no flips


def _crop_only(base: Item, cfg: BenchConfig, i: int) -> list[Item]:
    _require_crop(base, cfg.suite)
    return [transform_item(base, [], meta={"variant": "crop", "base_id": base.id})]


#: How one base item becomes the items of each built-in suite.
_EXPAND: dict[str, Callable[[Item, BenchConfig, int], list[Item]]] = {
    "orientation": _orientation,
    "corruption": _corruption,
    "multi-tool": _multi_tool,
    "crop-only": _crop_only,
    "toy": _toy,
}
assert set(_EXPAND) == set(BUILTIN_SUITES), "every built-in suite of the registry needs a builder"


def _bench_one(args: tuple[int, BenchConfig, Item | None]) -> list[Item]:
    i, cfg, item = args
    if item is None:
        assert cfg.sources is not None
        item = SOURCES[cfg.sources[i % len(cfg.sources)]](i, cfg.seed, cfg.split)
    return _EXPAND[cfg.suite](item, cfg, i)


def build_bench(
    suite: str | BenchConfig = "orientation",
    items: Sequence[Item] | None = None,
    *,
    num: int | None = None,
    seed: int | None = None,
    num_proc: int | None = None,
    progress: bool | None = None,
    report: BuildReport | None = None,
) -> list[Item]:
    """Build a built-in suite from synthetic base items or from ``items`` (e.g. a loaded OCRBench copy).

    Args:
        suite: Built-in suite name (see :data:`cv_data.SUITES`) or a full :class:`BenchConfig`.
        items: Base items; default: ``num`` synthetic items from the suite's sources.
        num, seed, num_proc, progress: Override the config fields of the same names.
        report: Collects per-record errors (bad base items never abort the suite).

    Example:
        >>> suite = build_bench("orientation", num=1, progress=False)
        >>> [it.meta["variant"] for it in suite]
        ['source', 'rot90', 'rot180', 'rot270', 'flip-h', 'flip-v']
    """
    cfg = suite if isinstance(suite, BenchConfig) else BenchConfig(suite=suite)
    for name, val in (("num", num), ("seed", seed), ("num_proc", num_proc), ("progress", progress)):
        if val is not None:
            setattr(cfg, name, val)
    cfg.__post_init__()
    report = report if report is not None else BuildReport()
    n = len(items) if items is not None else cfg.num
    assert n is not None
    args = ((i, cfg, items[i] if items is not None else None) for i in range(n))
    out: list[Item] = []
    for i, (res, err) in enumerate(
        pmap(
            _bench_one,
            args,
            num_proc=cfg.num_proc,
            desc=f"build-bench:{cfg.suite}",
            total=n,
            progress=cfg.progress,
        )
    ):
        report.total += 1
        if err is not None:
            report.add_error(i, items[i].id if items is not None else None, "generate", err)
            continue
        out.extend(res)
        report.ok += 1
    report.stats["suite"] = cfg.suite
    report.stats["items"] = len(out)
    return out


def variants_per_base(cfg: BenchConfig) -> int:
    """Items each base item expands into (``extra_info.index`` of a variant is ``base * this + k``).

    Example:
        >>> variants_per_base(BenchConfig("orientation")), variants_per_base(BenchConfig("crop-only"))
        (6, 1)
    """
    if cfg.suite == "corruption":
        assert cfg.severities is not None
        return 1 + len(cfg.corruptions) * len(cfg.severities)
    return max(1, len(SUITES[cfg.suite].variants))


def _bench_record(task: ItemTask[BenchConfig]) -> RecordRows:
    item = task.input_item()
    if isinstance(item, RecordRows):
        return item
    if item is not None and not item.meta.get("base_id"):
        item.meta = {**item.meta, "base_id": item.id}
    variants = _bench_one((task.index, task.cfg, item))
    per = variants_per_base(task.cfg)
    rows = [layout_row(task.layout, v, task.index * per + k, task.preset) for k, v in enumerate(variants)]
    return RecordRows(rows=rows, stats={"items": len(rows)})


def bench_spec(
    cfg: BenchConfig,
    *,
    layout: str = "verl",
    preset: Preset = DEFAULT_PRESET,
    source: InputSpec | None = None,
    command: str | None = None,
) -> BuildSpec:
    """The :class:`~cv_data.shards.BuildSpec` of a benchmark-suite build (see :func:`build_bench_dataset`)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    cfg.__post_init__()
    num = source.count() if source is not None else cfg.num
    assert num is not None
    settings: dict[str, Any] = {
        "suite": cfg.suite,
        "seed": cfg.seed,
        "split": cfg.split,
        "preset": preset.name,
    }
    if cfg.suite == "corruption":
        settings |= {"corruptions": list(cfg.corruptions), "severities": list(cfg.severities or [])}
    settings |= {"input": source.identity()} if source is not None else {"sources": list(cfg.sources or [])}

    parts = ["cv-data", "build-bench", "--out", "OUT", "--suite", cfg.suite, "--seed", str(cfg.seed)]
    parts += ["--format", layout]
    if preset.name != "default":
        parts += ["--preset", preset.name]
    parts += (
        ["--num", str(cfg.num)]
        if source is None
        else ["--input", source.path, "--input-format", source.format]
    )
    info = SUITES[cfg.suite]
    return BuildSpec(
        builder="build-bench",
        num=num,
        layout=LAYOUTS[layout],
        tasks=item_tasks(cfg, layout, preset, source),
        make=_bench_record,
        settings=settings,
        command=command or shlex.join(parts),
        title=f"CodeVision benchmark suite: {cfg.suite}",
        description=f"{num} base items expanded into the `{cfg.suite}` suite: {info.description}.",
        usage=(
            "```bash\ncv-bench eval --suite items --data {out} --model openai:URL#MODEL\n```\n\n"
            'Also `datasets.load_dataset("parquet", data_files="{out}/data/*.parquet")` and verl\'s '
            "`data.val_files`."
        ),
    )


def build_bench_dataset(
    config: BenchConfig,
    out: str | Path,
    *,
    layout: str = "verl",
    preset: Preset = DEFAULT_PRESET,
    source: InputSpec | None = None,
    shards: ShardConfig | None = None,
    shard: tuple[int, int] = (0, 1),
    overwrite: bool = False,
) -> BuildResult:
    """Stream a built-in suite to a dataset folder (``data/test-*.parquet``, card, report) with bounded
    memory, resumable and shardable like :func:`cv_data.build_rl`. ``source`` gives the base items.

    Example:
        >>> import tempfile
        >>> res = build_bench_dataset(BenchConfig("orientation", num=1, progress=False), tempfile.mkdtemp())
        >>> res.report.stats["items"], res.files[0].name
        (6, 'test-00000-of-00001.parquet')
    """
    spec = bench_spec(config, layout=layout, preset=preset, source=source)
    # A base item makes up to 6 rows (corruption: more): keep shards near 500 rows.
    shards = shards or ShardConfig(
        records_per_shard=max(1, 500 // variants_per_base(config)), split=config.split
    )
    return run_build(
        spec,
        out,
        config=shards,
        shard=shard,
        num_proc=config.num_proc,
        progress=config.progress,
        overwrite=overwrite,
    )


def load_suite(
    name: str,
    *,
    size: int | None = None,
    seed: int = 0,
    data: str | Path | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> list[Item]:
    """The items of any suite of the registry: built-in ones are generated, external ones read from ``data``.

    Args:
        name: A name from :data:`cv_data.SUITES`.
        size: Base items for built-in suites (default: the suite's ``default_size``).
        seed: Seed of the synthetic generators.
        data: Path of the user's copy for external suites (file or folder).
        limit: Stop after this many items (avoids building or decoding a whole suite for a quick run).
        progress: Show a progress bar while building a built-in suite.

    Raises:
        ValueError: Unknown suite, an external suite without ``data`` (or a built-in one with it), or any
            record that failed to build or load (a benchmark must not silently shrink).

    Example:
        >>> [it.id.rsplit("/", 1)[-1] for it in load_suite("orientation", size=1, limit=3)]
        ['source', 'rot90', 'rot180']
    """
    info = get_suite(name)
    if info.builtin:
        if data is not None:
            raise ValueError(f"suite {name!r} is built in: drop --data (or use --suite items --data {data})")
        n = size or info.default_size
        assert n is not None
        if limit is not None:
            n = min(n, max(1, math.ceil(limit / max(len(info.variants), 1))))
        report = BuildReport()
        items = build_bench(BenchConfig(suite=name, num=n, seed=seed, progress=progress), report=report)
        report.raise_if_failed(f"built-in suite {name!r}")
    else:
        if data is None:
            raise ValueError(
                f"suite {name!r} needs your copy of the benchmark: --data PATH (the cv-bench README lists "
                "the columns read)"
            )
        items = load_external(name, data, limit=limit)
    return items[:limit] if limit is not None else items


def load_external(name: str, data: str | Path, *, limit: int | None = None) -> list[Item]:
    """Load the user's copy of an external benchmark with its registry column map (:class:`ColumnMap`).

    ``items`` reads files written by :func:`write_items`; an MVToolBench copy in verl's parquet layout
    (``prompt`` / ``reward_model`` / ``extra_info`` columns) is read with :func:`read_verl`. Suites with
    ``expand`` (OCRBench, ChartQAPro) turn every row into the orientation variants.

    Raises:
        FileNotFoundError: ``data`` does not exist or holds no table.
        ValueError: Not an external suite, or any row failed to load (the first reasons are listed).
    """
    info = get_suite(name)
    if info.builtin:
        raise ValueError(f"suite {name!r} is built in: build it with build_bench({name!r})")
    path = Path(data).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"--data {path} does not exist")
    report = BuildReport()
    if name in IMPORTERS and name != "mvtoolbench" and IMPORTERS[name].recognizes(path):
        # The published layout (V*'s annotations give the answer boxes; HR-Bench's options join the question).
        items = InputSpec(str(path), name).read(report=report, limit=limit)
        report.raise_if_failed(f"{name} ({path})")
        for it in items:
            it.meta = {**it.meta, "base_id": it.id}
        return items
    if info.columns is None:  # `items`: our own layout
        items = read_items(path, report=report)
        report.raise_if_failed(f"{name} ({path})")
        return items
    files = find_table(path)
    rows = read_rows(path, report)
    if files[0].suffix == ".parquet" and rows and "reward_model" in rows[0] and "prompt" in rows[0]:
        items = read_verl(path, report=report)
        report.raise_if_failed(f"{name} ({path})")
        return items
    if limit is not None:
        rows = rows[: math.ceil(limit / max(len(info.variants), 1))]
    items = rows_to_items(
        rows,
        info.columns,
        data_source=info.data_source or name,
        image_dir=path if path.is_dir() else path.parent,
        id_prefix=name,
        report=report,
    )
    report.raise_if_failed(f"{name} ({path})")
    for it in items:
        it.meta = {**it.meta, "base_id": it.id}
    if info.expand:
        report = BuildReport()
        items = build_bench(info.expand, items=items, progress=False, report=report)
        report.raise_if_failed(f"{name} {info.expand} variants")
    return items
