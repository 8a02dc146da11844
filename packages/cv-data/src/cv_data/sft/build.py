"""Building executed SFT trajectories with the scripted expert: the mixture of kinds, one trajectory, many."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cv_sandbox import Sandbox, SandboxConfig, shared_sandbox

from cv_data._parallel import pmap
from cv_data.report import BuildReport

from .conversation import Conversation
from .kinds import BUILDERS, SFT_KINDS

__all__ = ["SFTBuildConfig", "build_sft", "make_trajectory"]


@dataclass
class SFTBuildConfig:
    """How to build SFT trajectories.

    Attributes:
        num: Number of trajectories.
        seed: Seed; identical output for the same seed whatever ``num_proc`` is.
        kinds: Mixture ``{kind: weight}`` over :data:`SFT_KINDS`.
        num_proc: Worker processes (each opens its own sandbox).
        progress: Show a progress bar.
        sandbox: Configuration of the sandbox that executes every call (one per worker process; calls
            within a trajectory are sequential, so one warm sandbox worker is enough).
    """

    num: int = 100
    seed: int = 0
    kinds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SFT_KINDS, 1.0))
    num_proc: int = 1
    progress: bool = True
    sandbox: SandboxConfig = field(default_factory=lambda: SandboxConfig(workers=1))

    def __post_init__(self) -> None:
        if self.num < 0:
            raise ValueError(f"num must be >= 0, got {self.num}")
        bad = set(self.kinds) - set(SFT_KINDS)
        if bad:
            raise ValueError(f"unknown SFT kinds {sorted(bad)}; set kinds to names in {SFT_KINDS}")
        if not self.kinds or sum(self.kinds.values()) <= 0 or min(self.kinds.values()) < 0:
            raise ValueError("kinds needs at least one positive weight, e.g. {'single_tool': 1.0}")
        if self.num_proc < 1:
            raise ValueError(f"num_proc must be >= 1, got {self.num_proc}")


def make_trajectory(index: int, kind: str, seed: int = 0, sandbox: Sandbox | None = None) -> dict[str, Any]:
    """Build and execute one trajectory of ``kind`` (deterministic in ``(seed, index, kind)``).

    Example:
        >>> rec = make_trajectory(0, "single_tool", seed=1)
        >>> [m["role"] for m in rec["messages"]]
        ['system', 'user', 'assistant', 'tool', 'assistant']
    """
    if kind not in BUILDERS:
        raise ValueError(f"unknown kind {kind!r}; choose from {SFT_KINDS}")
    sb = sandbox or shared_sandbox()
    rng = np.random.default_rng([seed, index, SFT_KINDS.index(kind), 5])
    item, conv = BUILDERS[kind](lambda it: Conversation(sb, it.images[0], it.question), rng, index, seed)
    return conv.record(
        id=f"sft-{kind}-s{seed}-{index:06d}",
        kind=kind,
        data_source=item.data_source,
        item_id=item.id,
        answer=item.answer,
        transform=item.transform,
    )


def _sft_one(args: tuple[int, str, int, SandboxConfig]) -> dict[str, Any]:
    i, kind, seed, sbcfg = args
    return make_trajectory(i, kind, seed, shared_sandbox(sbcfg))


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
    names = [k for k in SFT_KINDS if cfg.kinds.get(k, 0) > 0]
    w = np.array([cfg.kinds[k] for k in names], dtype=float)
    rng = np.random.default_rng([cfg.seed, 99])
    plan = [str(names[j]) for j in rng.choice(len(names), size=cfg.num, p=w / w.sum())]
    args = [(i, plan[i], cfg.seed, cfg.sandbox) for i in range(cfg.num)]
    out: list[dict[str, Any]] = []
    for (i, kind, _, _), (res, err) in zip(
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
