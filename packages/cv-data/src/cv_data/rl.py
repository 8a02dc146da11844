"""RL item builder: source records -> items with applied orientation transforms, deterministic per seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from cv_protocol import FLIP_OPS, ROTATE_OPS

from ._parallel import pmap
from .item import Item
from .report import BuildReport
from .sources import SOURCES
from .transforms import transform_item

#: Single orientation perturbations an RL item may receive: rotations first, then flips (``crop`` is not a
#: pixel change).
ORIENTATION_TRANSFORMS: tuple[str, ...] = ROTATE_OPS + FLIP_OPS


@dataclass
class RLBuildConfig:
    """How to build RL items.

    Attributes:
        num: Number of items to build (ignored when items are passed in: all of them are used).
        seed: Seed; the same seed gives identical items, whatever ``num_proc`` is.
        sources: Synthetic source mixture ``{name: weight}`` (names from :data:`cv_data.SOURCES`).
        p_identity: Probability that an item keeps its original orientation.
        p_compose: Probability that a perturbed item gets a rotation *and* a flip (when ``transforms`` holds
            both).
        transforms: The single perturbations to draw from (default: every rotation and flip). The toy task
            uses ``("rotate_90", "rotate_180", "rotate_270")`` with ``p_identity=0.25`` and ``p_compose=0``:
            four orientations, equally likely.
        split: Split recorded on generated items.
        num_proc: Worker processes.
        progress: Show a progress bar.
    """

    num: int = 1000
    seed: int = 0
    sources: dict[str, float] = field(default_factory=lambda: {"document": 1.0, "chart": 1.0, "scene": 1.0})
    p_identity: float = 0.2
    p_compose: float = 0.15
    transforms: tuple[str, ...] = ORIENTATION_TRANSFORMS
    split: str = "train"
    num_proc: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.num < 0:
            raise ValueError(f"num must be >= 0, got {self.num}")
        unknown = set(self.sources) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown sources {sorted(unknown)}; set sources to names in {sorted(SOURCES)}")
        if not self.sources or sum(self.sources.values()) <= 0 or min(self.sources.values()) < 0:
            raise ValueError("sources needs at least one positive weight, e.g. {'document': 1.0}")
        for name in ("p_identity", "p_compose"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.num_proc < 1:
            raise ValueError(f"num_proc must be >= 1, got {self.num_proc}")
        self.transforms = tuple(self.transforms)
        bad = [t for t in self.transforms if t not in ORIENTATION_TRANSFORMS]
        if not self.transforms or bad:
            raise ValueError(
                f"transforms {list(self.transforms)}: give one or more of {list(ORIENTATION_TRANSFORMS)}"
            )


def sample_transform(
    rng: np.random.Generator,
    p_identity: float = 0.2,
    p_compose: float = 0.15,
    transforms: Sequence[str] = ORIENTATION_TRANSFORMS,
) -> list[str]:
    """Draw an orientation perturbation from ``transforms``: ``[]``, one op, or a rotation followed by a flip.

    Example:
        >>> sample_transform(np.random.default_rng(0), p_identity=0.0, p_compose=0.0)[0] in ORIENTATION_TRANSFORMS
        True
        >>> sample_transform(np.random.default_rng(0), 0.0, 1.0, transforms=["rotate_90"])
        ['rotate_90']
    """
    if rng.random() < p_identity:
        return []
    rotations = [t for t in transforms if t in ROTATE_OPS]
    flips = [t for t in transforms if t in FLIP_OPS]
    if rng.random() < p_compose and rotations and flips:
        return [str(rng.choice(rotations)), str(rng.choice(flips))]
    return [str(rng.choice(list(transforms)))]


def _rl_one(args: tuple[int, RLBuildConfig, Item | None]) -> Item:
    i, cfg, item = args
    rng = np.random.default_rng([cfg.seed, i, 7])
    if item is None:
        names = sorted(cfg.sources)
        w = np.array([cfg.sources[n] for n in names], dtype=float)
        src = names[int(rng.choice(len(names), p=w / w.sum()))]
        item = SOURCES[src](i, cfg.seed, cfg.split)
    ops = sample_transform(rng, cfg.p_identity, cfg.p_compose, cfg.transforms)
    return transform_item(item, ops)


def build_rl_items(
    config: RLBuildConfig | None = None,
    items: Sequence[Item] | None = None,
    *,
    report: BuildReport | None = None,
) -> list[Item]:
    """Build RL items: synthetic (or given) records with sampled orientation transforms.

    Each item keeps ``transform`` (e.g. ``["crop", "rotate_90"]``), ``bbox`` mapped exactly into the
    transformed frame, ``data_source`` and ``split``. Failures are recorded in ``report``; the rest is kept.

    Example:
        >>> items = build_rl_items(RLBuildConfig(num=2, seed=3, progress=False))
        >>> len(items), items[0].split
        (2, 'train')
    """
    cfg = config or RLBuildConfig()
    report = report if report is not None else BuildReport()
    n = len(items) if items is not None else cfg.num
    args = ((i, cfg, items[i] if items is not None else None) for i in range(n))
    out: list[Item] = []
    for i, (res, err) in enumerate(
        pmap(_rl_one, args, num_proc=cfg.num_proc, desc="build-rl", total=n, progress=cfg.progress)
    ):
        report.total += 1
        if err is not None:
            report.add_error(i, items[i].id if items is not None else None, "generate", err)
            continue
        out.append(res)
        report.ok += 1
        key = f"transform:{'+'.join(res.transform) or 'none'}"
        report.stats[key] = report.stats.get(key, 0) + 1
    return out
