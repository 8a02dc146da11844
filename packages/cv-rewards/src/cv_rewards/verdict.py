"""What answer matching decides and who may decide it: task types, :class:`MatchResult` and the judge
interface. Both the rules (:mod:`cv_rewards.answer`) and the LLM judge (:mod:`cv_rewards.judge`) build on
this module, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["TASK_TYPES", "AnswerJudge", "MatchResult"]

#: Task types that select matching rules and judge prompts.
TASK_TYPES: frozenset[str] = frozenset({"general", "ocr", "math", "chart"})


@dataclass(frozen=True)
class MatchResult:
    """Outcome of :func:`cv_rewards.match_answer`.

    Attributes:
        correct: Whether the prediction matches the ground truth.
        method: Which rule decided: ``"choice"``, ``"numeric"``, ``"math"``, ``"text"``,
            ``"judge:<model>"`` or ``"none"`` (no prediction).
        detail: Human-readable evidence (parsed values, the judge's verdict, a judge error).

    Example:
        >>> MatchResult(True, "numeric", "pred=3 gt=3").correct
        True
    """

    correct: bool
    method: str
    detail: str = ""


class AnswerJudge(Protocol):
    """Whoever :func:`cv_rewards.match_answer` asks when no rule decides (:class:`cv_rewards.Judge` is one)."""

    def match(
        self,
        pred: str,
        gt: str,
        *,
        task_type: str = "general",
        question: str = "",
        fallback: MatchResult | None = None,
    ) -> MatchResult: ...
