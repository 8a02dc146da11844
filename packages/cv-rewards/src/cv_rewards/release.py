"""The public release's own answer and format rules, for reproducing its training signal exactly.

The release (github ByteDance-BandAI/CodeVision @ e098588) scores accuracy with
``recipe/codevision/reward.py`` and the format with ``verl/workers/reward_manager/uvtr.py``. Its rules
differ from ours (:func:`~cv_rewards.match_answer`, :func:`~cv_rewards.format_reward`) in ways that change
rewards, so they are offered here as options (``ProcessRewardConfig(matcher="release",
format_check="release")``), never as defaults:

- answer extraction falls back to the text after an unclosed ``<answer>``, then to the last line of the
  rollout (if it has fewer than 500 lines), so a rollout without an answer block can still be correct;
- a multiple-choice question is one whose ground truth is a single letter A-D, and the prediction's last
  standalone letter A-D is its answer (``"A or B"`` answers B);
- otherwise the last number in the prediction is compared exactly or within an absolute 1e-4 (a ground
  truth written ``3/4`` matches ``0.75``, but a predicted ``3/4`` reads as ``4``); ``1,200`` reads as
  ``200``, and text answers must be equal as strings (``Paris`` is not ``paris``);
- the format check counts think tags rather than checking that they nest, and rejects a rollout that ends
  with anything after ``</answer>``.

The release decodes rollouts with ``skip_special_tokens=True``; these functions drop ``<|...|>`` tokens
first so that text decoded either way gives the release's value. Only closed ``<tool_response>`` blocks are
removed, as in the release: the wrapping and the answer tag are :mod:`cv_protocol`'s, read here with
``strip_unclosed=False`` (:func:`cv_protocol.strip_tool_responses`, :func:`cv_protocol.extract_answer`).
"""

from __future__ import annotations

import re
from fractions import Fraction

from cv_protocol import extract_answer, strip_tool_responses

from .verdict import MatchResult

__all__ = [
    "release_answer_matches",
    "release_extract_answer",
    "release_format_reward",
    "release_match_answer",
]

#: Tokens such as ``<|im_end|>`` that a ``skip_special_tokens=True`` decode never shows.
_SPECIAL_TOKEN_RE = re.compile(r"<\|[^<>|\s]+\|>")
_ANSWER_AT_END_RE = re.compile(r"<answer>.*?</answer>\s*$", re.DOTALL)
_THINK_BLOCK_RE = re.compile(r"<think>.*?</think>", re.DOTALL)
_THINK_THEN_ANSWER_RE = re.compile(r"<think>.*?<answer>", re.DOTALL)
_CHOICE_LETTER_RE = re.compile(r"\b([A-D])\b")
_NUMBER_RE = re.compile(r"[-+]?\d*\.?\d+")
#: The release's last-line fallback gives up on rollouts of this many lines or more (reward.py:46).
_MAX_FALLBACK_LINES = 500
#: Absolute tolerance of the release's fraction comparison (reward.py:70).
RELEASE_ABS_TOL = 1e-4


def _visible_text(text: str) -> str:
    """The rollout as the release's reward sees it: no special tokens, no closed tool responses."""
    return strip_tool_responses(_SPECIAL_TOKEN_RE.sub("", text), strip_unclosed=False)


def release_extract_answer(text: str) -> str | None:
    """The release's answer extraction (``reward.py`` lines 32-46).

    The last ``<answer>...</answer>``; else the text after the last unclosed ``<answer>``; else the last
    line (only when the rollout has fewer than 500 lines). Closed tool responses are ignored.

    Example:
        >>> release_extract_answer("<think>a</think><answer> B </answer>")
        'B'
        >>> release_extract_answer("<think>it says</think>\\nThe answer is 42")
        'The answer is 42'
        >>> release_extract_answer("<think>a</think><answer> 7"), release_extract_answer("   ") is None
        ('7', True)
    """
    if not isinstance(text, str):
        raise TypeError(f"release_extract_answer expects a str, got {type(text).__name__}")
    block = extract_answer(_SPECIAL_TOKEN_RE.sub("", text), strip_unclosed=False)
    if block is not None:
        return block
    stripped = _visible_text(text).strip()
    if "<answer>" in stripped:
        return stripped.rsplit("<answer>", 1)[1].strip()
    lines = stripped.splitlines()
    if not lines or len(lines) >= _MAX_FALLBACK_LINES:
        return None
    return lines[-1].strip()


def _is_choice_question(gt: str) -> bool:
    return gt.upper() in ("A", "B", "C", "D")


def _candidate(pred: str, gt: str) -> str | None:
    """The release's ``verify_answer_rule``: the letter or number it reads out of a prediction."""
    if not pred:
        return None
    if _is_choice_question(gt):
        letters = _CHOICE_LETTER_RE.findall(pred.upper())
        return letters[-1] if letters else None
    try:
        return str(float(pred))
    except ValueError:
        numbers = _NUMBER_RE.findall(pred.upper())
        return numbers[-1] if numbers else None


def _why_equal(pred: str, gt: str, tol: float) -> str | None:
    """Which of the release's rules (``are_answers_equivalent``) accepts ``pred``, or None."""
    try:
        if float(pred) == float(gt):
            return "equal as floats"
    except ValueError:
        # The release compares the raw strings only when one side is not a float.
        if pred == gt:
            return "equal strings"
    cand = _candidate(pred, gt)
    if cand is None:
        return None
    gt_clean = gt.strip()
    if cand.upper() == gt_clean.upper():
        return f"read {cand!r} from the prediction"
    try:
        if abs(float(Fraction(cand)) - float(Fraction(gt_clean))) <= tol:
            return f"read {cand!r}, within {tol:g} of the ground truth"
    except (ValueError, ArithmeticError):
        pass
    return None


def release_answer_matches(pred: str, gt: str, tol: float = RELEASE_ABS_TOL) -> bool:
    """The release's rule-based equivalence (``reward.py`` lines 49-94), without its LLM judge.

    Example:
        >>> release_answer_matches("I pick A, no, B", "B"), release_answer_matches("(b)", "B")
        (True, True)
        >>> release_answer_matches("0.75", "3/4"), release_answer_matches("3/4", "0.75")
        (True, False)
        >>> release_answer_matches("1,200", "1200")
        False
        >>> release_answer_matches("Paris", "paris")
        False
    """
    return _why_equal(str(pred), str(gt), tol) is not None


def release_match_answer(pred: str | None, gt: str) -> MatchResult:
    """:func:`release_answer_matches` as a :class:`~cv_rewards.MatchResult` (``method="release"``).

    Example:
        >>> release_match_answer("The answer is 42.", "42")
        MatchResult(correct=True, method='release', detail="read '42' from the prediction")
        >>> release_match_answer(None, "42").method
        'none'
    """
    if pred is None:
        return MatchResult(False, "none", "no answer")
    why = _why_equal(str(pred), str(gt), RELEASE_ABS_TOL)
    if why is None:
        return MatchResult(False, "release", f"no release rule accepts {str(pred)[:80]!r}")
    return MatchResult(True, "release", why)


def release_format_reward(text: str) -> float:
    """The release's format reward (``uvtr.py`` lines 48-83): 1.0 or 0.0.

    After removing closed tool responses: starts with ``<think>``; as many ``<think>`` as ``</think>``
    (at least one); exactly one ``<answer>...</answer>``; the text ends with an answer block (trailing
    whitespace allowed); and the answer does not start or end inside a think block that opens an answer.

    Example:
        >>> release_format_reward("<think>a</think><answer>b</answer>\\n")
        1.0
        >>> release_format_reward("<think>a</think><answer>b</answer>.")
        0.0
        >>> release_format_reward("<think><think>nested</think></think><answer>b</answer>")  # ours says 0.0
        1.0
    """
    if not isinstance(text, str):
        raise TypeError(f"release_format_reward expects a str, got {type(text).__name__}")
    s = _visible_text(text).strip()
    if not s.startswith("<think>"):
        return 0.0
    opens, closes = s.count("<think>"), s.count("</think>")
    if opens != closes or opens == 0:
        return 0.0
    answers = [m.span() for m in re.finditer(r"<answer>.*?</answer>", s, re.DOTALL)]
    if len(answers) != 1 or not _ANSWER_AT_END_RE.search(s):
        return 0.0
    a_start, a_end = answers[0]
    for think in _THINK_BLOCK_RE.finditer(s):
        t_start, t_end = think.span()
        inside = t_start < a_start < t_end or t_start < a_end < t_end
        if inside and _THINK_THEN_ANSWER_RE.search(s[t_start:t_end]):
            return 0.0
    return 1.0
