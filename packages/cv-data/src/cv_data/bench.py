"""Benchmark suite builder: orientation variants, natural corruptions, and multi-tool (crop + orientation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._parallel import pmap
from .item import Item
from .report import BuildReport
from .sources import SOURCES
from .transforms import CORRUPTIONS, SEVERITIES, corrupt, transform_item

#: The 6 orientation variants of every item: name -> transforms applied.
ORIENTATION_VARIANTS: dict[str, list[str]] = {
    "source": [],
    "rot90": ["rotate_90"],
    "rot180": ["rotate_180"],
    "rot270": ["rotate_270"],
    "hflip": ["flip_horizontal"],
    "vflip": ["flip_vertical"],
}

#: Suites :func:`build_bench` can build.
SUITES: tuple[str, ...] = ("orientation", "corruption", "multi_tool")

_DEFAULT_SOURCES = {
    "orientation": ["document", "chart"],
    "corruption": ["document", "chart"],
    "multi_tool": ["scene"],
}


@dataclass
class BenchConfig:
    """How to build a benchmark suite.

    Attributes:
        suite: ``"orientation"`` (6 variants per base item, ids ``<base>/rot90``), ``"corruption"`` (clean +
            every kind x severity, ids ``<base>/jpeg-s3``) or ``"multi_tool"`` (crop items with one
            orientation perturbation each, ids ``<base>/rot90``).
        num: Number of base items (ignored when items are passed in).
        seed: Seed for synthetic base items and random choices.
        sources: Synthetic sources used for base items; default depends on the suite.
        corruptions: Corruption kinds for the corruption suite (default: all of :data:`CORRUPTIONS`).
        severities: Severities for the corruption suite.
        split: Split recorded on generated items.
        num_proc: Worker processes.
        progress: Show a progress bar.
    """

    suite: str = "orientation"
    num: int = 100
    seed: int = 1234
    sources: list[str] | None = None
    corruptions: list[str] = field(default_factory=lambda: list(CORRUPTIONS))
    severities: list[int] = field(default_factory=lambda: list(SEVERITIES))
    split: str = "test"
    num_proc: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.suite not in SUITES:
            raise ValueError(f"suite must be one of {SUITES}, got {self.suite!r}")
        if self.num < 0:
            raise ValueError(f"num must be >= 0, got {self.num}")
        if self.sources is None:
            self.sources = list(_DEFAULT_SOURCES[self.suite])
        bad = [s for s in self.sources if s not in SOURCES]
        if bad or not self.sources:
            raise ValueError(f"sources must be non-empty names from {sorted(SOURCES)}, got {self.sources}")
        bad = [c for c in self.corruptions if c not in CORRUPTIONS]
        if bad:
            raise ValueError(f"unknown corruptions {bad}; choose from {sorted(CORRUPTIONS)}")
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
        ['source', 'rot90', 'rot180', 'rot270', 'hflip', 'vflip']
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
            img = corrupt(item.images[0], kind, sev, seed=seed * 1000 + k)
            v = transform_item(
                item,
                [],
                id_suffix=f"{kind}-s{sev}",
                meta={"variant": f"{kind}-s{sev}", "base_id": item.id, "corruption": kind, "severity": sev},
            )
            v.images[0] = img
            out.append(v)
    return out


def _base(i: int, cfg: BenchConfig) -> Item:
    assert cfg.sources is not None
    src = cfg.sources[i % len(cfg.sources)]
    return SOURCES[src](i, cfg.seed, cfg.split)


def _bench_one(args: tuple[int, BenchConfig, Item | None]) -> list[Item]:
    i, cfg, item = args
    base = item if item is not None else _base(i, cfg)
    if cfg.suite == "orientation":
        return orientation_variants(base)
    if cfg.suite == "corruption":
        return corruption_variants(base, cfg.corruptions, cfg.severities, seed=cfg.seed + i)
    rng = np.random.default_rng([cfg.seed, i, 11])
    name = str(rng.choice([n for n in ORIENTATION_VARIANTS if n != "source"]))
    ops = ORIENTATION_VARIANTS[name]
    if "crop" not in base.transform:
        raise ValueError(
            f"multi_tool base item {base.id!r} has no 'crop' in its transform: use crop items "
            "(e.g. the 'scene' source) or items with a bbox marked ['crop']"
        )
    return [transform_item(base, ops, id_suffix=name, meta={"variant": name, "base_id": base.id})]


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
    """Build a benchmark suite from synthetic base items or from ``items`` (e.g. a loaded OCRBench copy).

    Args:
        suite: Suite name (see :data:`SUITES`) or a full :class:`BenchConfig`.
        items: Base items; default: ``num`` synthetic items from the suite's sources.
        num, seed, num_proc, progress: Override the config fields of the same names.
        report: Collects per-record errors (bad base items never abort the suite).

    Example:
        >>> suite = build_bench("orientation", num=1, progress=False)
        >>> [it.meta["variant"] for it in suite]
        ['source', 'rot90', 'rot180', 'rot270', 'hflip', 'vflip']
    """
    cfg = suite if isinstance(suite, BenchConfig) else BenchConfig(suite=suite)
    for name, val in (("num", num), ("seed", seed), ("num_proc", num_proc), ("progress", progress)):
        if val is not None:
            setattr(cfg, name, val)
    cfg.__post_init__()
    report = report if report is not None else BuildReport()
    n = len(items) if items is not None else cfg.num
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
