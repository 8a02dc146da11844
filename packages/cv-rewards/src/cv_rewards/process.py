"""The dense process reward of CodeVision (paper variant and reference-release variant).

``R_total = R_outcome + R_strategy - P_cost`` with every term reported separately:

========================  ===============================================================================
component                 value (``w_*`` are :class:`ProcessRewardConfig` weights)
========================  ===============================================================================
``accuracy``              ``r_acc`` in {0, 1}
``format``                ``w_format * r_fmt``
``must_use``              ``w_must * sum over required ops``: each of the N required ops has budget 1/N;
                          rotate/flip earn 1/N the first time they run successfully; crop earns
                          ``IoU/N`` counted as improvement over the best IoU so far (so, in total, the
                          best IoU of any successful crop, divided by N)
``exact_path``            ``w_must * exact_path_bonus`` when the successful calls ran exactly the required
                          ops (orientation ops in the required order, crop anywhere), no failed call, no
                          other op; only for items with at least one required op
``emergent``              ``w_suggested * r``: paper ``r = r_nec`` (group term, :func:`score_group`);
                          reference ``r = 1`` for a correct rollout that used an optional op
``penalty_turns``         ``-w_penalty * p``: paper ``p = [tool turns > N + 1]``; reference
                          ``p = max(0, tool turns - max(2, N))``
``penalty_reasoning``     ``-w_penalty * p``: correct answer with crop required but best IoU below
                          ``poor_iou``; paper ``p = 1``; reference ``p = 1 - best_iou / poor_iou``
``penalty_tool_use``      ``-w_penalty * p``: paper ``p = [an orientation op ran while none was required]``;
                          reference ``p = number of orientation ops beyond the required ones``
========================  ===============================================================================

The required ops of an item are :func:`cv_protocol.corrective_ops` of its ``transform``. ``total`` is the
sum of the components. Failed tool calls count as tool turns and break the exact path;
the ops they traced never earn credit and never count as spurious (they did not take effect).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cv_protocol import GEOMETRIC_OPS, ORIENTATION_OPS, corrective_ops, extract_answer

from .answer import match_answer
from .format import format_reward
from .records import RolloutRecord
from .verdict import TASK_TYPES

if TYPE_CHECKING:
    from .judge import Judge

__all__ = [
    "COMPONENTS",
    "ProcessRewardConfig",
    "RewardBreakdown",
    "box_iou",
    "score_group",
    "score_rollout",
]

#: Component names of :class:`RewardBreakdown`, in reporting order.
COMPONENTS: tuple[str, ...] = (
    "accuracy",
    "format",
    "must_use",
    "exact_path",
    "emergent",
    "penalty_turns",
    "penalty_reasoning",
    "penalty_tool_use",
)
VARIANTS = ("paper", "reference")


@dataclass
class ProcessRewardConfig:
    """Weights and switches of the process reward. Defaults are the paper's.

    Attributes:
        variant: ``"paper"`` (0/1 penalties, group necessity term) or ``"reference"`` (the public release:
            linear turn penalty over ``max(2, N)``, spurious-op count, flat emergent bonus, poor-reasoning
            penalty scaled by how far the best IoU falls short).
        format_weight: Weight of the format reward (paper 0.1).
        must_use_weight: Weight of the must-use strategy term and the exact-path bonus (paper beta1 = 1.0).
        suggested_weight: Weight of the suggested/emergent-tool term (paper 0.2).
        penalty_weight: Weight of the summed penalties (paper beta2 = 0.5).
        exact_path_bonus: Bonus for running exactly the required ops (reference release 0.1).
        poor_iou: Best-crop IoU below which a correct answer on a crop item counts as poor reasoning.

    Example:
        >>> ProcessRewardConfig(variant="reference").penalty_weight
        0.5
    """

    variant: str = "paper"
    format_weight: float = 0.1
    must_use_weight: float = 1.0
    suggested_weight: float = 0.2
    penalty_weight: float = 0.5
    exact_path_bonus: float = 0.1
    poor_iou: float = 0.1

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"ProcessRewardConfig.variant must be one of {VARIANTS}, got {self.variant!r}")
        for name in (
            "format_weight",
            "must_use_weight",
            "suggested_weight",
            "penalty_weight",
            "exact_path_bonus",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"ProcessRewardConfig.{name} must be a number >= 0, got {value!r}")
            setattr(self, name, float(value))
        if not 0.0 < self.poor_iou <= 1.0:
            raise ValueError(f"ProcessRewardConfig.poor_iou must be in (0, 1], got {self.poor_iou!r}")


@dataclass
class RewardBreakdown:
    """The reward of one rollout, with every component (already weighted) for logging.

    Attributes:
        total: Sum of ``components``.
        components: Weighted contribution of each term in :data:`COMPONENTS` (penalties are <= 0).
        correct: Whether the answer was judged correct.
        match_method: Which rule or judge decided (``MatchResult.method``), or ``"given"``.
        details: Raw quantities behind the components (``format`` 0/1, ``best_iou``, ``tool_turns``,
            ``failed_calls``, ``n_required``, ``used_optional``, ``spurious_ops``, ``r_nec``, ...).
        match_detail: ``MatchResult.detail`` (parsed values, judge verdict).
    """

    total: float
    components: dict[str, float]
    correct: bool
    match_method: str
    details: dict[str, float] = field(default_factory=dict)
    match_detail: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "total": self.total,
            "components": dict(self.components),
            "correct": self.correct,
            "match_method": self.match_method,
            "match_detail": self.match_detail,
            "details": dict(self.details),
        }


# ------------------------------------------------------------------------------------------ geometry


def box_iou(
    a: tuple[float, float, float, float] | list[float], b: tuple[float, float, float, float] | list[float]
) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes (0.0 when both are empty).

    Example:
        >>> box_iou((0, 0, 10, 10), (5, 0, 15, 10))
        0.3333333333333333
        >>> box_iou((0, 0, 10, 10), (0, 0, 10, 10))
        1.0
    """
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = max(0.0, ax2 - ax1) * max(0.0, ay2 - ay1) + max(0.0, bx2 - bx1) * max(0.0, by2 - by1) - inter
    if union <= 0.0:
        return 0.0
    return min(1.0, max(0.0, inter / union))


# ------------------------------------------------------------------------------------------ scoring


@dataclass
class _Facts:
    """What scoring needs about one rollout, computed once."""

    correct: bool
    method: str
    match_detail: str
    fmt: float
    required: list[str]
    ok_ops: list[tuple[str, tuple[float, float, float, float] | None]]
    tool_turns: int
    failed_calls: int
    best_iou: float
    used_optional: bool


def _facts(record: RolloutRecord, judge: Judge | None) -> _Facts:
    if record.task_type not in TASK_TYPES:
        raise ValueError(
            f"RolloutRecord.task_type {record.task_type!r} unknown; set one of {sorted(TASK_TYPES)}"
        )
    required = corrective_ops(record.transform)
    if record.correct is not None:
        correct, method, detail = record.correct, "given", "RolloutRecord.correct was set"
    else:
        m = match_answer(
            extract_answer(record.completion),
            record.gt_answer,
            choices=record.choices,
            task_type=record.task_type,
            judge=judge,
            question=record.question,
        )
        correct, method, detail = m.correct, m.method, m.detail
    ok_ops = [(op.name, op.box) for call in record.tool_calls if call.success for op in call.ops]
    best_iou = 0.0
    if "crop" in required:
        if record.bbox is None:
            raise ValueError(
                f"item {record.prompt_id or '?'} requires a crop (transform {record.transform}) but has no bbox; "
                "set RolloutRecord.bbox to the answer region [x1, y1, x2, y2] in pixels of input image 0"
            )
        ious = [box_iou(box, record.bbox) for name, box in ok_ops if name == "crop" and box is not None]
        best_iou = max(ious, default=0.0)
    return _Facts(
        correct=correct,
        method=method,
        match_detail=detail,
        fmt=format_reward(record.completion),
        required=required,
        ok_ops=ok_ops,
        tool_turns=len(record.tool_calls),
        failed_calls=sum(not c.success for c in record.tool_calls),
        best_iou=best_iou,
        used_optional=any(name not in GEOMETRIC_OPS for name, _ in ok_ops),
    )


def _must_use(f: _Facts) -> float:
    """Sum of per-required-op credit, in [0, 1]."""
    n = len(f.required)
    if n == 0:
        return 0.0
    executed = Counter(name for name, _ in f.ok_ops)
    credit = 0.0
    for op, count in Counter(f.required).items():
        if op == "crop":
            # Improvement over the best IoU so far telescopes to the best IoU reached.
            credit += f.best_iou
        else:
            credit += min(count, executed[op])
    return credit / n


def _exact_path(f: _Facts) -> bool:
    if not f.required or f.failed_calls:
        return False
    names = [name for name, _ in f.ok_ops]
    if Counter(names) != Counter(f.required):
        return False
    # Crop commutes with orientation ops (its box is in image-0 coordinates); orientation order matters.
    return [n for n in names if n != "crop"] == [n for n in f.required if n != "crop"]


def _spurious(f: _Facts) -> int:
    executed = Counter(name for name, _ in f.ok_ops if name in ORIENTATION_OPS)
    needed = Counter(op for op in f.required if op in ORIENTATION_OPS)
    return sum((executed - needed).values())


def _breakdown(
    f: _Facts, cfg: ProcessRewardConfig, emergent_raw: float, r_nec: float | None
) -> RewardBreakdown:
    n = len(f.required)
    paper = cfg.variant == "paper"
    orientation_required = any(op in ORIENTATION_OPS for op in f.required)
    spurious = _spurious(f)
    if paper:
        p_turns = float(f.tool_turns > n + 1)
        p_tool = float(not orientation_required and any(name in ORIENTATION_OPS for name, _ in f.ok_ops))
    else:
        p_turns = float(max(0, f.tool_turns - max(2, n)))
        p_tool = float(spurious)
    p_reason = 0.0
    if f.correct and "crop" in f.required and f.best_iou < cfg.poor_iou:
        p_reason = 1.0 if paper else 1.0 - f.best_iou / cfg.poor_iou
    exact = _exact_path(f)
    must = _must_use(f)
    components = {
        "accuracy": float(f.correct),
        "format": cfg.format_weight * f.fmt,
        "must_use": cfg.must_use_weight * must,
        "exact_path": cfg.must_use_weight * cfg.exact_path_bonus * float(exact),
        "emergent": cfg.suggested_weight * emergent_raw,
        "penalty_turns": -cfg.penalty_weight * p_turns,
        "penalty_reasoning": -cfg.penalty_weight * p_reason,
        "penalty_tool_use": -cfg.penalty_weight * p_tool,
    }
    components = {k: v + 0.0 for k, v in components.items()}  # no -0.0 in logs
    details = {
        "format": f.fmt,
        "must_use_raw": must,
        "exact_path": float(exact),
        "n_required": float(n),
        "tool_turns": float(f.tool_turns),
        "failed_calls": float(f.failed_calls),
        "best_iou": f.best_iou,
        "used_optional": float(f.used_optional),
        "spurious_ops": float(spurious),
        "emergent_raw": emergent_raw,
        "p_turns": p_turns,
        "p_reasoning": p_reason,
        "p_tool_use": p_tool,
    }
    if r_nec is not None:
        details["r_nec"] = r_nec
    return RewardBreakdown(
        total=sum(components.values()),
        components=components,
        correct=f.correct,
        match_method=f.method,
        details=details,
        match_detail=f.match_detail,
    )


def score_rollout(
    record: RolloutRecord, config: ProcessRewardConfig | None = None, *, judge: Judge | None = None
) -> RewardBreakdown:
    """Score one rollout without group terms (the paper's necessity term is then 0).

    Args:
        record: The rollout.
        config: Weights and variant (default: the paper's).
        judge: Optional LLM judge for answers the rules cannot decide.

    Returns:
        The :class:`RewardBreakdown`.

    Example:
        >>> from cv_rewards import OpRecord, ToolCallRecord
        >>> rec = RolloutRecord(
        ...     "<think>upside down</think><tool_call>...</tool_call><think>ok</think><answer>42</answer>",
        ...     [ToolCallRecord(True, [OpRecord("rotate_180")])], ["rotate_180"], None, "42")
        >>> b = score_rollout(rec)
        >>> round(b.total, 3), b.components["must_use"], b.components["exact_path"]
        (2.2, 1.0, 0.1)
    """
    cfg = config or ProcessRewardConfig()
    f = _facts(record, judge)
    emergent = 1.0 if (cfg.variant == "reference" and f.correct and f.used_optional) else 0.0
    return _breakdown(f, cfg, emergent, None)


def score_group(
    records: list[RolloutRecord], config: ProcessRewardConfig | None = None, *, judge: Judge | None = None
) -> list[RewardBreakdown]:
    """Score the K rollouts of one prompt, including the group (necessity) term.

    Paper variant: let ``T`` be the rollouts that ran an optional op (anything but rotate/flip/crop) and
    ``U`` the others. If ``U`` is non-empty, ``acc(T) > acc(U)`` and ``U`` has at most one correct rollout,
    every correct rollout in ``T`` gets ``r_nec = max(0, acc(T) - acc(U))``. Without any rollout that
    skipped optional ops there is no evidence of necessity, so ``r_nec = 0``. Reference variant: the flat
    bonus of :func:`score_rollout`.

    Args:
        records: Rollouts of the same prompt (non-empty ``prompt_id`` values must all agree).
        config: Weights and variant (default: the paper's).
        judge: Optional LLM judge.

    Example:
        >>> from cv_rewards import OpRecord, ToolCallRecord
        >>> def rec(answer, ops):
        ...     calls = [ToolCallRecord(True, [OpRecord(o) for o in ops])] if ops else []
        ...     return RolloutRecord(f"<think>x</think><answer>{answer}</answer>", calls, [], None, "7")
        >>> out = score_group([rec("7", ["contrast"]), rec("7", ["contrast"]), rec("3", []), rec("3", [])])
        >>> [b.components["emergent"] for b in out]
        [0.2, 0.2, 0.0, 0.0]
    """
    cfg = config or ProcessRewardConfig()
    if not records:
        return []
    ids = {r.prompt_id for r in records if r.prompt_id}
    if len(ids) > 1:
        raise ValueError(
            f"score_group got rollouts of several prompts {sorted(ids)}; pass one prompt's rollouts"
        )
    if judge is not None and len(records) > 1:
        # Judge calls are network-bound: ask about the group's undecided answers concurrently.
        from concurrent.futures import ThreadPoolExecutor

        workers = min(len(records), getattr(getattr(judge, "config", None), "max_concurrency", 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            facts = list(pool.map(lambda r: _facts(r, judge), records))
    else:
        facts = [_facts(r, judge) for r in records]
    if cfg.variant == "reference":
        return [_breakdown(f, cfg, 1.0 if (f.correct and f.used_optional) else 0.0, None) for f in facts]
    tool = [f.correct for f in facts if f.used_optional]
    plain = [f.correct for f in facts if not f.used_optional]
    r_nec = 0.0
    if tool and plain:
        acc_tool, acc_plain = sum(tool) / len(tool), sum(plain) / len(plain)
        if acc_tool > acc_plain and sum(plain) <= 1:
            r_nec = max(0.0, acc_tool - acc_plain)
    return [_breakdown(f, cfg, r_nec if (f.correct and f.used_optional) else 0.0, r_nec) for f in facts]
