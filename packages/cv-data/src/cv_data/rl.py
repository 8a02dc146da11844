"""RL item builder: source records -> items with applied orientation transforms, deterministic per seed.

:func:`build_rl` streams a build of any size to a sharded dataset folder (:mod:`cv_data.shards`);
:func:`build_rl_items` returns a small set as a list.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cv_protocol import DEFAULT_PRESET, FLIP_OPS, ROTATE_OPS, Preset

from ._parallel import pmap
from .importers import IMPORTERS
from .inputs import InputSpec, ItemTask, item_tasks
from .item import Item
from .records import LAYOUTS, layout_row
from .report import BuildReport
from .shards import BuildResult, BuildSpec, RecordRows, ShardConfig, run_build
from .sources import SOURCES
from .transforms import transform_item

#: Single orientation perturbations an RL item may receive: rotations first, then flips (``crop`` is not a
#: pixel change).
ORIENTATION_TRANSFORMS: tuple[str, ...] = ROTATE_OPS + FLIP_OPS


@dataclass
class RLBuildConfig:
    """How to build RL items.

    Attributes:
        num: Number of items to build (ignored when items or an input are given: all of them are used).
        seed: Seed; the same seed gives identical items, whatever ``num_proc`` is.
        sources: Synthetic source mixture ``{name: weight}`` (names from :data:`cv_data.SOURCES`).
        p_identity: Probability that an item keeps its original orientation.
        p_compose: Probability that a perturbed item gets a rotation *and* a flip (when ``transforms`` holds
            both).
        transforms: The single perturbations to draw from (default: every rotation and flip). The toy task
            uses ``("rotate_90", "rotate_180", "rotate_270")`` with ``p_identity=0.25`` and ``p_compose=0``:
            four orientations, equally likely.
        transform_input: Also give sampled transforms to items that are passed in or read from an input
            (default: they are kept exactly as they are, e.g. the release's already transformed items;
            synthetic items always get them).
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
    transform_input: bool = False
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


def rl_item(i: int, cfg: RLBuildConfig, item: Item | None = None) -> Item:
    """RL item ``i``: synthetic item ``i`` (source drawn from ``cfg.sources``) with a sampled transform, or
    the given ``item``, transformed only with ``cfg.transform_input``.

    Example:
        >>> rl_item(3, RLBuildConfig(seed=1)).split
        'train'
    """
    rng = np.random.default_rng([cfg.seed, i, 7])
    if item is None:
        names = sorted(cfg.sources)
        w = np.array([cfg.sources[n] for n in names], dtype=float)
        src = names[int(rng.choice(len(names), p=w / w.sum()))]
        item = SOURCES[src](i, cfg.seed, cfg.split)
    elif not cfg.transform_input:
        return item
    ops = sample_transform(rng, cfg.p_identity, cfg.p_compose, cfg.transforms)
    return transform_item(item, ops)


def _rl_one(args: tuple[int, RLBuildConfig, Item | None]) -> Item:
    return rl_item(*args)


def build_rl_items(
    config: RLBuildConfig | None = None,
    items: Sequence[Item] | None = None,
    *,
    report: BuildReport | None = None,
) -> list[Item]:
    """Build a small set of RL items in memory: synthetic (or given) records with sampled orientation
    transforms (given items only with ``transform_input``). For large sets use :func:`build_rl`, which
    streams to disk.

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
        assert res is not None
        out.append(res)
        report.ok += 1
        key = f"transform:{'+'.join(res.transform) or 'none'}"
        report.stats[key] = report.stats.get(key, 0) + 1
    return out


# ------------------------------------------------------------------------------------ streaming


def _rl_record(task: ItemTask[RLBuildConfig]) -> RecordRows:
    item = task.input_item()
    if isinstance(item, RecordRows):
        return item
    res = rl_item(task.index, task.cfg, item)
    key = f"transform:{'+'.join(res.transform) or 'none'}"
    return RecordRows(rows=[layout_row(task.layout, res, task.index, task.preset)], stats={key: 1})


_USAGE = """```python
import datasets
ds = datasets.load_dataset("parquet", data_files="{out}/data/*.parquet", split="train")
```

- verl: `data.train_files` = the shard files (`RLHFDataset` reads `prompt`, `images`, `extra_info`; the
  `tool_agent` loop reads `agent_name` and `extra_info.tools_kwargs`).
- cv-train: `dataset: {out}` in an RL recipe (read with `cv_data.read_items`).
- cv-bench: `cv-bench eval --suite items --data {out}`."""


def rl_spec(
    cfg: RLBuildConfig,
    *,
    layout: str = "verl",
    preset: Preset = DEFAULT_PRESET,
    source: InputSpec | None = None,
    command: str | None = None,
) -> BuildSpec:
    """The :class:`~cv_data.shards.BuildSpec` of an RL build (see :func:`build_rl`)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    num = source.count() if source is not None else cfg.num
    settings: dict[str, Any] = {"seed": cfg.seed, "split": cfg.split, "preset": preset.name}
    if source is None or cfg.transform_input:
        settings |= {
            "p_identity": cfg.p_identity,
            "p_compose": cfg.p_compose,
            "transforms": list(cfg.transforms),
        }
    if source is None:
        settings["sources"] = dict(sorted(cfg.sources.items()))
    else:
        settings["input"] = source.identity()
        settings["transform_input"] = cfg.transform_input
    if layout == "verl":
        settings["system_prompt_sha"] = _sha(preset.system_prompt)

    what = "the items of " + Path(source.path).name if source is not None else "synthetic RL items"
    title = "CodeVision RL items"
    if source is not None and source.format in IMPORTERS:
        imp = IMPORTERS[source.format]
        title = f"{imp.description}, converted by cv-data"
        what = f"{imp.name} records of {Path(source.path).name}, kept as published"
    return BuildSpec(
        builder="build-rl",
        num=num,
        layout=LAYOUTS[layout],
        tasks=item_tasks(cfg, layout, preset, source),
        make=_rl_record,
        settings=settings,
        command=command or _rl_command(cfg, layout, preset, source),
        title=title,
        description=(
            f"{num} records ({what}): an image, a question, the exact answer, the transforms applied to "
            "the image (`transform`) and the answer region (`bbox`), for GRPO with cv-rewards' process reward."
        ),
        usage=_USAGE,
    )


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _rl_command(cfg: RLBuildConfig, layout: str, preset: Preset, source: InputSpec | None) -> str:
    parts = ["cv-data", "build-rl", "--out", "OUT", "--seed", str(cfg.seed), "--format", layout]
    if preset.name != "default":
        parts += ["--preset", preset.name]
    if source is None:
        parts += ["--num", str(cfg.num), "--sources", ",".join(sorted(cfg.sources))]
    else:
        parts += ["--input", source.path, "--input-format", source.format]
        if cfg.transform_input:
            parts.append("--transform-input")
    if source is None or cfg.transform_input:
        parts += ["--p-identity", str(cfg.p_identity), "--p-compose", str(cfg.p_compose)]
        if tuple(cfg.transforms) != ORIENTATION_TRANSFORMS:
            parts += ["--transforms", ",".join(cfg.transforms)]
    return shlex.join(parts)


def build_rl(
    config: RLBuildConfig | None,
    out: str | Path,
    *,
    layout: str = "verl",
    preset: Preset = DEFAULT_PRESET,
    source: InputSpec | None = None,
    shards: ShardConfig | None = None,
    shard: tuple[int, int] = (0, 1),
    overwrite: bool = False,
    command: str | None = None,
) -> BuildResult:
    """Stream an RL build of any size to ``out`` (a dataset folder: ``data/train-*.parquet``, ``README.md``,
    ``report.json``) with bounded memory; resumable, shardable across machines (see :mod:`cv_data.shards`).

    Args:
        config: What to build (``num`` synthetic items, or every row of ``source``).
        out: Dataset folder.
        layout: ``"verl"`` (default: loads in verl's ``RLHFDataset``, cv-train and cv-bench) or ``"items"``.
        preset: Prompt preset whose system prompt the ``verl`` rows carry (:data:`cv_protocol.PRESETS`).
        source: Read these records instead of making synthetic ones (kept as they are unless
            ``config.transform_input``).
        shards: File sharding (records per shard, row-group bounds, file format).
        shard: ``(K, N)``: build only the shards ``j`` with ``j % N == K``.
        overwrite: Replace another build's shards in ``out`` instead of refusing.
        command: Command line recorded in the card (default: rebuilt from the settings).

    Example:
        >>> import tempfile
        >>> res = build_rl(RLBuildConfig(num=2, sources={"chart": 1.0}, progress=False), tempfile.mkdtemp())
        >>> res.complete, res.report.stats["rows"], res.files[0].name
        (True, 2, 'train-00000-of-00001.parquet')
    """
    cfg = config or RLBuildConfig()
    spec = rl_spec(cfg, layout=layout, preset=preset, source=source, command=command)
    return run_build(
        spec,
        out,
        config=shards,
        shard=shard,
        num_proc=cfg.num_proc,
        progress=cfg.progress,
        overwrite=overwrite,
    )
