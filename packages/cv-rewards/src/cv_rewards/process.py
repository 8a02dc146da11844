"""The dense process reward of CodeVision, as the paper states it and as its public release computes it.

``total`` is the sum of the components; each is reported already weighted (``w_*`` are
:class:`ProcessRewardConfig` weights, penalties are <= 0), with the raw quantities in
:attr:`RewardBreakdown.details`.

``variant="paper"`` (SPEC). N = number of required ops, :func:`cv_protocol.corrective_ops` of the item's
``transform``. Only successful tool calls earn credit; failed ones count as tool turns and break the exact
path.

=====================  ==========================================================================================
component              value
=====================  ==========================================================================================
``accuracy``           ``r_acc`` in {0, 1}
``format``             ``w_format * r_fmt``
``must_use``           ``w_must * credit / N``: rotate/flip earn 1 the first time they run; crop earns IoU counted
                       as improvement over the best IoU so far (in total: the best IoU with the answer box)
``exact_path``         ``w_must * exact_path_bonus`` when the successful calls ran exactly the required ops
                       (orientation ops in the required order, crop anywhere), no failed call, no other op
``emergent``           ``w_suggested * r_nec`` (group term, :func:`score_group`) for a correct rollout that ran an
                       optional op: not rotate/flip/crop, not in :data:`NON_CREDIT_OPS`, not marked ineffective
``penalty_turns``      ``-w_penalty`` when tool turns > N + 1
``penalty_reasoning``  ``-w_penalty`` when the answer is correct, crop is required and the best IoU < ``poor_iou``
``penalty_tool_use``   ``-w_penalty`` when an orientation op ran while none was required
=====================  ==========================================================================================

``variant="reference"``: the release's ``AgentLoopManager._post_aggregate_tool_rewards``
(``verl/experimental/agent_loop/agent_loop.py`` @ e098588). The release reads ops from every call's code
before running it, so failed calls count too; it compares *sets* of op names. ``required`` is the set of
corrective ops plus any non-geometric transform name as it is (the release keeps those, so they count
in N); N is its size; ``used`` is the set of op names of all calls.

=====================  ==========================================================================================
component              value
=====================  ==========================================================================================
``accuracy``           ``r_acc``, multiplied by the must-use credit when crop is required and that credit is
                       below ``poor_iou`` (0.1)
``format``             ``w_format * r_fmt``
``must_use``           ``w_must * min(1, |required & used - {crop}| / N + best IoU / N)``, the IoU term only
                       when crop is both required and used
``exact_path``         ``exact_path_bonus`` (not weighted) when ``required & {rotate, flip, crop}`` is non-empty
                       and equals ``used & {rotate, flip, crop}``: no check of errors, order, repeats or other ops
``emergent``           ``w_suggested`` for a correct rollout that used an op outside rotate/flip/crop and
                       :data:`NON_CREDIT_OPS`, plus ``w_necessity * r_nec`` (the release's beta term, group)
``penalty_turns``      ``-w_penalty * max(0, tool calls - max(2, N))``
``penalty_reasoning``  0: the release scales ``accuracy`` instead
``penalty_tool_use``   ``-w_penalty * |used & orientation ops|`` when no orientation op is required
=====================  ==========================================================================================
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cv_protocol import GEOMETRIC_OPS, ORIENTATION_OPS, corrective_ops, extract_answer

from .answer import match_answer
from .format import format_reward
from .records import OpRecord, RolloutRecord, ToolCallRecord
from .release import release_extract_answer, release_format_reward, release_match_answer
from .verdict import TASK_TYPES, MatchResult

if TYPE_CHECKING:
    from .judge import Judge

__all__ = [
    "COMPONENTS",
    "FORMAT_CHECKS",
    "MATCHERS",
    "NON_CREDIT_OPS",
    "VARIANTS",
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
#: Ops that never earn optional-tool credit, in either variant: they convert the format or move existing
#: pixels around without changing what the image shows (``convert("RGB")``, ``cv2.cvtColor(a, BGR2RGB)``,
#: ``copy()``, pasting a crop back, adding a border). The release's op detector reports none of them
#: either. An op the trace marks ``effective=False`` (it changed no pixel) earns no credit in the paper
#: variant as well; the release reads ops from code, so there it still counts.
NON_CREDIT_OPS: frozenset[str] = frozenset({"convert", "color_convert", "copy", "paste", "pad"})
VARIANTS: tuple[str, ...] = ("paper", "reference")
#: ``"default"``: :func:`cv_protocol.extract_answer` + :func:`~cv_rewards.match_answer`; ``"release"``:
#: :func:`~cv_rewards.release_extract_answer` + :func:`~cv_rewards.release_match_answer`.
MATCHERS: tuple[str, ...] = ("default", "release")
#: ``"default"``: :func:`~cv_rewards.format_reward`; ``"release"``: :func:`~cv_rewards.release_format_reward`.
FORMAT_CHECKS: tuple[str, ...] = ("default", "release")


@dataclass
class ProcessRewardConfig:
    """Weights and switches of the process reward. Defaults are the paper's, which are also the release's
    recipe values (``recipe/codevision/qwen3_vl.sh``: alpha 1.0, beta 0.0, gamma 0.5, format 0.1, emerge 0.2).

    Attributes:
        variant: ``"paper"`` (0/1 penalties, group necessity term, only successful calls earn credit) or
            ``"reference"`` (the public release's arithmetic; see the module docstring).
        format_weight: Weight of the format reward (paper 0.1; release ``format_reward_weight``).
        must_use_weight: Weight of the must-use term (paper beta1 = 1.0; release alpha). In the paper
            variant it also weights the exact-path bonus.
        suggested_weight: Weight of the suggested/emergent-tool term (paper 0.2; release
            ``emerge_reward_weight``).
        penalty_weight: Weight of the penalties (paper beta2 = 0.5; release gamma).
        exact_path_bonus: Bonus for running exactly the required ops (release 0.1).
        poor_iou: Paper: best-crop IoU below which a correct answer on a crop item is poor reasoning.
            Reference: must-use credit below which accuracy is scaled by that credit (release 0.1).
        necessity_weight: Reference variant only: weight of the release's tool-necessity term (its beta;
            0.0 in the release's recipe). Needs :func:`score_group`.
        matcher: Answer matching, one of :data:`MATCHERS`: ``"default"`` (ours) or ``"release"``.
        format_check: Format reward, one of :data:`FORMAT_CHECKS`: ``"default"`` (ours) or ``"release"``.

    Example:
        >>> ProcessRewardConfig(variant="reference", matcher="release", format_check="release").penalty_weight
        0.5
    """

    variant: str = "paper"
    format_weight: float = 0.1
    must_use_weight: float = 1.0
    suggested_weight: float = 0.2
    penalty_weight: float = 0.5
    exact_path_bonus: float = 0.1
    poor_iou: float = 0.1
    necessity_weight: float = 0.0
    matcher: str = "default"
    format_check: str = "default"

    def __post_init__(self) -> None:
        for name, allowed in (("variant", VARIANTS), ("matcher", MATCHERS), ("format_check", FORMAT_CHECKS)):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"ProcessRewardConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        for name in (
            "format_weight",
            "must_use_weight",
            "suggested_weight",
            "penalty_weight",
            "exact_path_bonus",
            "necessity_weight",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"ProcessRewardConfig.{name} must be a number >= 0, got {value!r}")
            setattr(self, name, float(value))
        if isinstance(self.poor_iou, bool) or not isinstance(self.poor_iou, (int, float)):
            raise ValueError(
                f"ProcessRewardConfig.poor_iou must be a number in (0, 1], got {self.poor_iou!r}"
            )
        if not 0.0 < self.poor_iou <= 1.0:
            raise ValueError(f"ProcessRewardConfig.poor_iou must be in (0, 1], got {self.poor_iou!r}")
        if self.necessity_weight and self.variant != "reference":
            raise ValueError(
                "ProcessRewardConfig.necessity_weight is the release's term: set variant='reference', or leave "
                "it 0 (the paper's necessity term is weighted by suggested_weight)"
            )


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
    """What scoring needs about one rollout, whatever the variant."""

    correct: bool
    method: str
    match_detail: str
    fmt: float
    transform: list[str]
    calls: list[ToolCallRecord]
    bbox: list[float] | None


def _match(record: RolloutRecord, cfg: ProcessRewardConfig, judge: Judge | None) -> MatchResult:
    if record.correct is not None:
        return MatchResult(record.correct, "given", "RolloutRecord.correct was set")
    if cfg.matcher == "release":
        pred = release_extract_answer(record.completion)
        result = release_match_answer(pred, record.gt_answer)
        if result.correct or pred is None or judge is None:
            return result
        # The release asks its LLM judge whenever its rules reject an extracted answer (reward.py:108-117).
        return judge.match(
            pred, record.gt_answer, task_type=record.task_type, question=record.question, fallback=result
        )
    return match_answer(
        extract_answer(record.completion),
        record.gt_answer,
        choices=record.choices,
        task_type=record.task_type,
        judge=judge,
        question=record.question,
    )


def _facts(record: RolloutRecord, cfg: ProcessRewardConfig, judge: Judge | None) -> _Facts:
    if record.task_type not in TASK_TYPES:
        raise ValueError(
            f"RolloutRecord.task_type {record.task_type!r} unknown; set one of {sorted(TASK_TYPES)}"
        )
    if "crop" in corrective_ops(record.transform) and record.bbox is None:
        raise ValueError(
            f"item {record.prompt_id or '?'} requires a crop (transform {record.transform}) but has no bbox; "
            "set RolloutRecord.bbox to the answer region [x1, y1, x2, y2] in pixels of input image 0"
        )
    m = _match(record, cfg, judge)
    check = release_format_reward if cfg.format_check == "release" else format_reward
    return _Facts(
        correct=m.correct,
        method=m.method,
        match_detail=m.detail,
        fmt=check(record.completion),
        transform=record.transform,
        calls=record.tool_calls,
        bbox=record.bbox,
    )


def _best_iou(ops: list[OpRecord], bbox: list[float] | None) -> float:
    """Best IoU of any traced crop box (in input-image-0 pixels) with the answer box."""
    if bbox is None:
        return 0.0
    return max((box_iou(op.box, bbox) for op in ops if op.name == "crop" and op.box is not None), default=0.0)


def _earns_optional_credit(op: OpRecord, variant: str) -> bool:
    """An optional (suggested/emergent) op that counts: not rotate/flip/crop, not a format no-op."""
    if op.name in GEOMETRIC_OPS or op.name in NON_CREDIT_OPS:
        return False
    # The release detects ops in the code text, so an op that changed nothing still counts there.
    return op.effective or variant == "reference"


def _breakdown(
    f: _Facts, components: dict[str, float], details: dict[str, float], r_nec: float | None
) -> RewardBreakdown:
    components = {k: components[k] + 0.0 for k in COMPONENTS}  # reporting order; no -0.0 in logs
    details = {k: float(v) for k, v in details.items()}
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


# ------------------------------------------------------------------------------------ paper variant


def _paper_ops(f: _Facts) -> list[OpRecord]:
    """Ops that took effect: those of successful calls."""
    return [op for call in f.calls if call.success for op in call.ops]


def _paper_used_optional(f: _Facts) -> bool:
    return any(_earns_optional_credit(op, "paper") for op in _paper_ops(f))


def _paper_must_use(required: list[str], names: list[str], best_iou: float) -> float:
    """Sum of per-required-op credit over N, in [0, 1]."""
    if not required:
        return 0.0
    executed = Counter(names)
    credit = 0.0
    for op, count in Counter(required).items():
        # Crop: improvement over the best IoU so far telescopes to the best IoU reached.
        credit += best_iou if op == "crop" else min(count, executed[op])
    return credit / len(required)


def _paper_exact_path(required: list[str], names: list[str], failed_calls: int) -> bool:
    if not required or failed_calls or Counter(names) != Counter(required):
        return False
    # Crop commutes with orientation ops (its box is in image-0 coordinates); orientation order matters.
    return [n for n in names if n != "crop"] == [n for n in required if n != "crop"]


def _paper(f: _Facts, cfg: ProcessRewardConfig, r_nec: float | None) -> RewardBreakdown:
    required = corrective_ops(f.transform)
    n = len(required)
    ops = _paper_ops(f)
    names = [op.name for op in ops]
    failed = sum(not c.success for c in f.calls)
    best_iou = _best_iou(ops, f.bbox) if "crop" in required else 0.0
    must = _paper_must_use(required, names, best_iou)
    exact = _paper_exact_path(required, names, failed)
    spurious = (
        0 if any(op in ORIENTATION_OPS for op in required) else sum(x in ORIENTATION_OPS for x in names)
    )
    used_optional = _paper_used_optional(f)
    emergent_raw = r_nec if (r_nec is not None and f.correct and used_optional) else 0.0
    p_turns = float(len(f.calls) > n + 1)
    p_reason = float(f.correct and "crop" in required and best_iou < cfg.poor_iou)
    p_tool = float(spurious > 0)
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
    details = {
        "format": f.fmt,
        "must_use_raw": must,
        "exact_path": exact,
        "n_required": n,
        "tool_turns": len(f.calls),
        "failed_calls": failed,
        "best_iou": best_iou,
        "used_optional": used_optional,
        "spurious_ops": spurious,
        "emergent_raw": emergent_raw,
        "accuracy_scale": 1.0,
        "p_turns": p_turns,
        "p_reasoning": p_reason,
        "p_tool_use": p_tool,
    }
    return _breakdown(f, components, details, r_nec)


def _paper_necessity(facts: list[_Facts]) -> float:
    """The paper's r_nec of a group (see :func:`score_group`)."""
    tool = [f.correct for f in facts if _paper_used_optional(f)]
    plain = [f.correct for f in facts if not _paper_used_optional(f)]
    if not (tool and plain):
        return 0.0
    acc_tool, acc_plain = sum(tool) / len(tool), sum(plain) / len(plain)
    if acc_tool > acc_plain and sum(plain) <= 1:
        return max(0.0, acc_tool - acc_plain)
    return 0.0


# -------------------------------------------------------------------------------- reference variant
# Each step names the lines of verl/experimental/agent_loop/agent_loop.py (release @ e098588) it follows.


def _release_required(transform: list[str]) -> set[str]:
    """The release's ``_expected_transforms`` (1361-1384): corrective ops, and other names kept as they are."""
    return set(corrective_ops(transform)) | {t for t in transform if not corrective_ops([t])}


def _release_ops(f: _Facts) -> list[OpRecord]:
    """Every call's ops, failed calls included: the release parses each call's code before running it
    (tool_agent_loop.py:339-364)."""
    return [op for call in f.calls for op in call.ops]


def _reference(f: _Facts, cfg: ProcessRewardConfig, r_nec: float | None) -> RewardBreakdown:
    required = _release_required(f.transform)
    n = len(required)
    ops = _release_ops(f)
    used = {op.name for op in ops}
    # Must-use (1386-1402): non-crop hits over N, plus the best IoU over N when crop is required and used.
    must = len((required - {"crop"}) & used) / n if n else 0.0
    best_iou = 0.0
    if "crop" in required and "crop" in used:
        best_iou = _best_iou(ops, f.bbox)
        must += best_iou / n
    must = min(must, 1.0)
    # Poor reasoning (1284-1287): accuracy (and necessity) scaled by the must-use credit.
    scale = must if ("crop" in required and must < cfg.poor_iou) else 1.0
    accuracy = (1.0 if f.correct else 0.0) * scale
    # Code-usage penalty (1404-1410) counts every call, failed or not (tool_agent_loop.py:372-376).
    c_usage = float(max(0, len(f.calls) - max(2, n)))
    # Spurious ops (1412-1421): distinct orientation ops, only when no orientation op is required.
    spurious = 0 if required & ORIENTATION_OPS else len(used & ORIENTATION_OPS)
    # Exact path (1423-1426): equal sets of core ops.
    required_core = required & GEOMETRIC_OPS
    exact = bool(required_core) and required_core == used & GEOMETRIC_OPS
    # Emergent tool (1428-1432): a correct rollout that used any op outside the core ops.
    used_optional = any(_earns_optional_credit(op, "reference") for op in ops)
    emergent_raw = 1.0 if (f.correct and used_optional) else 0.0
    nec = 0.0 if (r_nec is None or scale != 1.0) else r_nec
    components = {
        "accuracy": accuracy,
        "format": cfg.format_weight * f.fmt,
        "must_use": cfg.must_use_weight * must,
        "exact_path": cfg.exact_path_bonus * float(exact),
        "emergent": cfg.suggested_weight * emergent_raw + cfg.necessity_weight * nec,
        "penalty_turns": -cfg.penalty_weight * c_usage,
        "penalty_reasoning": 0.0,
        "penalty_tool_use": -cfg.penalty_weight * spurious,
    }
    details = {
        "format": f.fmt,
        "must_use_raw": must,
        "exact_path": exact,
        "n_required": n,
        "tool_turns": len(f.calls),
        "failed_calls": sum(not c.success for c in f.calls),
        "best_iou": best_iou,
        "used_optional": used_optional,
        "spurious_ops": spurious,
        "emergent_raw": emergent_raw,
        "accuracy_scale": scale,
        "p_turns": c_usage,
        "p_reasoning": 0.0,
        "p_tool_use": float(spurious),
    }
    return _breakdown(f, components, details, nec if r_nec is not None else None)


def _release_necessity(facts: list[_Facts]) -> list[float]:
    """The release's per-rollout necessity (group stats 1236-1255, per rollout 1276-1280).

    A rollout "used a tool" when it made any tool call. ``max(0, acc_tool - acc_no_tool)`` when some
    rollout made none, given to correct tool-using rollouts when at most one tool-free rollout was correct.
    """
    used = [bool(f.calls) for f in facts]
    tool = [f.correct for f, u in zip(facts, used, strict=True) if u]
    plain = [f.correct for f, u in zip(facts, used, strict=True) if not u]
    value = 0.0
    if plain:
        acc_tool = sum(tool) / len(tool) if tool else 0.0
        value = max(0.0, acc_tool - sum(plain) / len(plain))
    return [value if (f.correct and u and sum(plain) < 2) else 0.0 for f, u in zip(facts, used, strict=True)]


# ----------------------------------------------------------------------------------------- public


def score_rollout(
    record: RolloutRecord, config: ProcessRewardConfig | None = None, *, judge: Judge | None = None
) -> RewardBreakdown:
    """Score one rollout without group terms (the paper's and the release's necessity terms are then 0).

    Args:
        record: The rollout.
        config: Weights, variant, matcher and format check (default: the paper's).
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
    f = _facts(record, cfg, judge)
    return _paper(f, cfg, None) if cfg.variant == "paper" else _reference(f, cfg, None)


def score_group(
    records: list[RolloutRecord], config: ProcessRewardConfig | None = None, *, judge: Judge | None = None
) -> list[RewardBreakdown]:
    """Score the K rollouts of one prompt, including the group (necessity) term.

    Paper variant: let ``T`` be the rollouts that ran an optional op (anything but rotate/flip/crop and
    :data:`NON_CREDIT_OPS`, in a successful call) and ``U`` the others. If ``U`` is non-empty,
    ``acc(T) > acc(U)`` and ``U`` has at most one correct rollout, every correct rollout in ``T`` gets
    ``r_nec = max(0, acc(T) - acc(U))``. Without any rollout that skipped optional ops there is no evidence
    of necessity, so ``r_nec = 0``. Reference variant: the flat emergent bonus of :func:`score_rollout`,
    plus ``necessity_weight`` times the release's necessity term, which compares rollouts that made any
    tool call with those that made none.

    Args:
        records: Rollouts of the same prompt (non-empty ``prompt_id`` values must all agree).
        config: Weights, variant, matcher and format check (default: the paper's).
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
            facts = list(pool.map(lambda r: _facts(r, cfg, judge), records))
    else:
        facts = [_facts(r, cfg, judge) for r in records]
    if cfg.variant == "reference":
        return [_reference(f, cfg, nec) for f, nec in zip(facts, _release_necessity(facts), strict=True)]
    r_nec = _paper_necessity(facts)
    return [_paper(f, cfg, r_nec) for f in facts]
