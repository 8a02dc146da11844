"""Building executed SFT trajectories with the scripted expert: the mixture of kinds, one trajectory, many."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cv_protocol import Preset, get_preset
from cv_sandbox import Sandbox, SandboxConfig, shared_sandbox

from cv_data._parallel import pmap
from cv_data.report import BuildReport
from cv_data.shards import BuildResult, BuildSpec, RecordRows, ShardConfig, run_build

from .conversation import Conversation
from .io import SFT_LAYOUT, llamafactory_dataset_info, sft_row
from .kinds import BUILDERS, SFT_KINDS

__all__ = ["SFTBuildConfig", "build_sft", "build_sft_dataset", "make_trajectory", "sft_plan", "sft_spec"]


@dataclass
class SFTBuildConfig:
    """How to build SFT trajectories.

    Attributes:
        num: Number of trajectories.
        seed: Seed; identical output for the same seed whatever ``num_proc`` is.
        kinds: Mixture ``{kind: weight}`` over :data:`SFT_KINDS` (the paper's five, the default) and the toy
            task's ``toy`` / ``toy_wrong_op`` (:mod:`cv_data.toy`).
        num_proc: Worker processes (each opens its own sandbox).
        progress: Show a progress bar.
        sandbox: Configuration of the sandbox that executes every call (one per worker process; calls
            within a trajectory are sequential, so one warm sandbox worker is enough).
        preset: What the model is shown (a ``cv_protocol.PRESETS`` name or a :class:`cv_protocol.Preset`):
            the system prompt and tool-response texts of every record; train and evaluate with the same one.
    """

    num: int = 100
    seed: int = 0
    kinds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SFT_KINDS, 1.0))
    num_proc: int = 1
    progress: bool = True
    sandbox: SandboxConfig = field(default_factory=lambda: SandboxConfig(workers=1))
    preset: Preset | str = "default"

    def __post_init__(self) -> None:
        get_preset(self.preset)  # an unknown name fails here, listing the registry
        if self.num < 0:
            raise ValueError(f"num must be >= 0, got {self.num}")
        bad = set(self.kinds) - set(BUILDERS)
        if bad:
            raise ValueError(f"unknown SFT kinds {sorted(bad)}; set kinds to names in {tuple(BUILDERS)}")
        if not self.kinds or sum(self.kinds.values()) <= 0 or min(self.kinds.values()) < 0:
            raise ValueError("kinds needs at least one positive weight, e.g. {'single_tool': 1.0}")
        if self.num_proc < 1:
            raise ValueError(f"num_proc must be >= 1, got {self.num_proc}")


def make_trajectory(
    index: int, kind: str, seed: int = 0, sandbox: Sandbox | None = None, preset: Preset | str = "default"
) -> dict[str, Any]:
    """Build and execute one trajectory of ``kind`` (deterministic in ``(seed, index, kind)``), with
    ``preset``'s system prompt and tool-response texts.

    Example:
        >>> rec = make_trajectory(0, "single_tool", seed=1)
        >>> [m["role"] for m in rec["messages"]]
        ['system', 'user', 'assistant', 'tool', 'assistant']
    """
    if kind not in BUILDERS:
        raise ValueError(f"unknown kind {kind!r}; choose from {tuple(BUILDERS)}")
    sb = sandbox or shared_sandbox()
    rng = np.random.default_rng([seed, index, list(BUILDERS).index(kind), 5])
    pre = get_preset(preset)
    item, conv = BUILDERS[kind](lambda it: Conversation(sb, it.images[0], it.question, pre), rng, index, seed)
    return conv.record(
        id=f"sft-{kind}-s{seed}-{index:06d}",
        kind=kind,
        data_source=item.data_source,
        item_id=item.id,
        answer=item.answer,
        transform=item.transform,
    )


def _sft_one(args: tuple[int, str, int, SandboxConfig, Preset]) -> dict[str, Any]:
    i, kind, seed, sbcfg, preset = args
    return make_trajectory(i, kind, seed, shared_sandbox(sbcfg), preset)


def sft_plan(cfg: SFTBuildConfig) -> list[str]:
    """The kind of every trajectory ``0 .. num-1`` (drawn once from the mixture, so any range of a sharded
    build gets the same kinds as the whole).

    Example:
        >>> sft_plan(SFTBuildConfig(num=3, kinds={"no_tool": 1.0}))
        ['no_tool', 'no_tool', 'no_tool']
    """
    names = [k for k in BUILDERS if cfg.kinds.get(k, 0) > 0]
    w = np.array([cfg.kinds[k] for k in names], dtype=float)
    rng = np.random.default_rng([cfg.seed, 99])
    return [str(names[j]) for j in rng.choice(len(names), size=cfg.num, p=w / w.sum())]


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
    plan = sft_plan(cfg)
    preset = get_preset(cfg.preset)
    args = [(i, plan[i], cfg.seed, cfg.sandbox, preset) for i in range(cfg.num)]
    out: list[dict[str, Any]] = []
    for (i, kind, *_), (res, err) in zip(
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


# ------------------------------------------------------------------------------------ streaming


@dataclass(frozen=True)
class _SFTTask:
    index: int
    kind: str
    seed: int
    sandbox: SandboxConfig
    preset: Preset


def _sft_rows(task: _SFTTask) -> RecordRows:
    rid = f"sft-{task.kind}-s{task.seed}-{task.index:06d}"
    try:
        rec = make_trajectory(task.index, task.kind, task.seed, shared_sandbox(task.sandbox), task.preset)
    except Exception as e:  # noqa: BLE001 - a failed trajectory is reported, the build goes on
        return RecordRows(error=("execute", rid, f"{type(e).__name__}: {e}"))
    return RecordRows(rows=[sft_row(rec, task.preset)], stats={f"kind:{task.kind}": 1})


_SFT_USAGE = """- cv-train: `dataset: {out}` in an SFT recipe (`cv_data.load_sft`; cv-train's chat template renders
  the images of tool turns and masks tool tokens).
- LLaMA-Factory: `dataset_dir: {out}`, `dataset: codevision_sft` (`dataset_info.json`: the ShareGPT columns
  `conversations`, `images`, `system`, `tools`, as the CodeVision release configures them).
- `datasets.load_dataset("parquet", data_files="{out}/data/*.parquet", split="train")`.

Stock TRL `SFTTrainer` does not load these records: TRL fills and counts image placeholders only outside
tool turns (`trl.data_utils.prepare_multimodal_messages`), so a trajectory with a tool-output image fails
with "Number of images provided (N) does not match number of image placeholders (1)"."""


def sft_spec(cfg: SFTBuildConfig) -> BuildSpec:
    """The :class:`~cv_data.shards.BuildSpec` of an SFT build (see :func:`build_sft_dataset`)."""
    plan = sft_plan(cfg)
    preset = get_preset(cfg.preset)

    def tasks(start: int, stop: int):
        for i in range(start, stop):
            yield _SFTTask(i, plan[i], cfg.seed, cfg.sandbox, preset)

    kinds = dict(sorted((k, v) for k, v in cfg.kinds.items() if v > 0))
    command = ["cv-data", "build-sft", "--out", "OUT", "--num", str(cfg.num), "--seed", str(cfg.seed)]
    command += ["--kinds", ",".join(f"{k}={v:g}" for k, v in kinds.items())]
    if preset.name != "default":
        command += ["--preset", preset.name]
    return BuildSpec(
        builder="build-sft",
        num=cfg.num,
        layout=SFT_LAYOUT,
        tasks=tasks,
        make=_sft_rows,
        settings={"seed": cfg.seed, "kinds": kinds, "preset": preset.name},
        command=shlex.join(command),
        title="CodeVision SFT trajectories",
        description=(
            f"{cfg.num} multi-turn trajectories written by cv-data's scripted expert; every tool output was "
            "produced by executing the code in cv-sandbox. Images are stored once per trajectory."
        ),
        usage=_SFT_USAGE,
        extra_files={"dataset_info.json": json.dumps(llamafactory_dataset_info("data"), indent=2) + "\n"},
    )


def build_sft_dataset(
    config: SFTBuildConfig,
    out: str | Path,
    *,
    shards: ShardConfig | None = None,
    shard: tuple[int, int] = (0, 1),
    overwrite: bool = False,
) -> BuildResult:
    """Stream an SFT build of any size to ``out`` (``data/train-*.parquet`` in :data:`SFT_LAYOUT`, the card,
    ``report.json`` and LLaMA-Factory's ``dataset_info.json``) with bounded memory; resumable and shardable
    like :func:`cv_data.build_rl`.

    Example:
        >>> import tempfile
        >>> res = build_sft_dataset(SFTBuildConfig(num=1, kinds={"no_tool": 1.0}, progress=False), tempfile.mkdtemp())
        >>> res.report.stats["kind:no_tool"], (res.out / "dataset_info.json").is_file()
        (1, True)
    """
    spec = sft_spec(config)
    return run_build(
        spec,
        out,
        config=shards or ShardConfig(records_per_shard=200),
        shard=shard,
        num_proc=config.num_proc,
        progress=config.progress,
        overwrite=overwrite,
    )
