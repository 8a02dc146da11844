"""Rule-based answer matching (with an optional LLM judge as the last resort).

The answer itself is read with :func:`cv_protocol.extract_answer`.

Rules run first, in this order, and the first one that *decides* wins:

1. ``choice``: with ``choices``, both sides resolve to an option letter (``"B"``, ``"(B)"``, ``"B. dog"``,
   ``"answer is B"`` or the option text itself).
2. ``numeric``: the ground truth is a number (``1,234``, ``3/4``, ``25%``, ``$5``, ``12 cm``, ``2.5 million``,
   ``seven``) and the prediction is one, or (except for ``math``) is a sentence holding exactly one. Tolerance depends on the task type
   (:data:`NUMERIC_REL_TOL`); a percentage also matches its fraction (``25%`` == ``0.25``). Not used for
   ``ocr``, where ``007`` and ``7`` are different readings.
3. ``math`` (``task_type="math"``, needs sympy: ``pip install cv-rewards[math]``): symbolic or numeric
   equivalence (``\\frac{1}{2}`` == ``0.5``, ``2\\sqrt{2}`` == ``sqrt(8)``).
4. ``text``: equal after normalising case, whitespace and punctuation (``ocr`` also accepts the ground
   truth contained in the prediction as whole words, as OCRBench does).

A mismatch under rules 1-3 is a decision; a text mismatch is not, so only then (or when no rule applies)
is the judge asked, if one is given.
"""

from __future__ import annotations

import logging
import math
import re
import string
import unicodedata
from dataclasses import dataclass

from .verdict import TASK_TYPES, AnswerJudge, MatchResult

__all__ = [
    "NUMERIC_REL_TOL",
    "match_answer",
    "normalize_text",
    "parse_number",
]

logger = logging.getLogger(__name__)

#: Relative tolerance of numeric matching per task type (chart QA uses the usual 5 % relaxed accuracy).
NUMERIC_REL_TOL: dict[str, float] = {"general": 1e-2, "chart": 5e-2, "math": 1e-6, "ocr": 0.0}

# ----------------------------------------------------------------------------------------------- text


_PUNCT = set(string.punctuation)


def normalize_text(text: str) -> str:
    """Case-fold, drop punctuation (ASCII and Unicode) and collapse whitespace.

    Example:
        >>> normalize_text("  Hello,   WORLD!! ")
        'hello world'
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = [
        " " if ch.isspace() else ch
        for ch in text
        if ch not in _PUNCT and not unicodedata.category(ch).startswith("P")
    ]
    return " ".join("".join(kept).split())


# -------------------------------------------------------------------------------------------- numbers

_NUM_CORE = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_NUMBER_RE = re.compile(
    r"(?P<sign>[-+\u2212])?\s*(?P<cur>[$\u20ac\u00a3\u00a5])?\s*(?P<num>" + _NUM_CORE + r")"
    r"(?:\s*/\s*(?P<den>" + _NUM_CORE + r"))?"
    r"(?:[eE](?P<exp>[-+]?\d+))?"
    r"(?:\s*(?P<scale>thousand|million|billion|trillion)\b)?"
    r"(?:\s*(?P<pct>%|percent\b|per cent\b))?",
    re.IGNORECASE,
)
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_WORDS.update(
    {
        "thirty": 30,
        "forty": 40,
        "fifty": 50,
        "sixty": 60,
        "seventy": 70,
        "eighty": 80,
        "ninety": 90,
        "hundred": 100,
        "thousand": 1000,
    }
)
# What may follow a number and still count as "just a number": a short unit without digits.
_UNIT_TAIL_RE = re.compile(r"^\s*[^\d\s][^\d]{0,15}$")


@dataclass(frozen=True)
class _Number:
    value: float
    percent: bool


def _number_from_match(m: re.Match[str]) -> _Number | None:
    value = float(m.group("num").replace(",", ""))
    if m.group("den") is not None:
        den = float(m.group("den").replace(",", ""))
        if den == 0:
            return None
        value /= den
    if m.group("exp") is not None:
        value *= 10.0 ** int(m.group("exp"))
    if m.group("scale"):
        value *= _SCALES[m.group("scale").lower()]
    if m.group("sign") in ("-", "\u2212"):
        value = -value
    return _Number(value, bool(m.group("pct"))) if math.isfinite(value) else None


def parse_number(text: str) -> float | None:
    """Parse a string that *is* a number (optionally with currency, scale word, ``%`` or a short unit).

    Percentages are returned as written (``"25%"`` -> ``25.0``); matching handles the ``0.25`` reading.

    Example:
        >>> parse_number("1,234.5 kg"), parse_number("3/4"), parse_number("-$2.5 million"), parse_number("a1")
        (1234.5, 0.75, -2500000.0, None)
    """
    n = _parse_number(text)
    return n.value if n is not None else None


def _parse_number(text: str) -> _Number | None:
    s = unicodedata.normalize("NFKC", text).strip().rstrip(".")
    if not s:
        return None
    word = s.casefold()
    if word in _WORDS:
        return _Number(float(_WORDS[word]), False)
    m = _NUMBER_RE.match(s)
    if m is None or m.start() != 0:
        return None
    rest = s[m.end() :]
    if rest.strip() and not _UNIT_TAIL_RE.match(rest):
        return None
    return _number_from_match(m)


def _numbers_in(text: str) -> list[_Number]:
    found = [_number_from_match(m) for m in _NUMBER_RE.finditer(unicodedata.normalize("NFKC", text))]
    return [n for n in found if n is not None]


def _close(a: float, b: float, rel_tol: float) -> bool:
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-9)


def _numbers_equal(a: _Number, b: _Number, rel_tol: float) -> bool:
    if _close(a.value, b.value, rel_tol):
        return True
    # "25%" and "0.25" are the same quantity; when only one side says percent, try its fraction.
    if a.percent != b.percent:
        pct, other = (a, b) if a.percent else (b, a)
        return _close(pct.value / 100.0, other.value, rel_tol)
    return False


# -------------------------------------------------------------------------------------------- choices

_LETTER_ONLY_RE = re.compile(r"^\(?\[?([A-Za-z])\]?\)?[.:)]?$")
_LETTER_PREFIX_RE = re.compile(r"^\(?([A-Z])(?:\)|\.|:|\s*-)\s*\S")
# The keyword is case-insensitive, the letter is not: "the answer is a dog" names no option.
_LETTER_PHRASE_RE = re.compile(
    r"\b(?i:answer|option|choice)\s*(?i:is|:)?\s*[:\s]\s*\(?([A-Z])\)?(?![A-Za-z])"
)
_CHOICE_LABEL_RE = re.compile(r"^\s*\(?[A-Z]\)?[.:)]\s+")


def _choice_texts(choices: list[str]) -> list[str]:
    # Options are sometimes stored with their label ("A. cat"); compare on the bare text.
    return [normalize_text(_CHOICE_LABEL_RE.sub("", c)) for c in choices]


def _letter_of(text: str, choices: list[str], *, strict: bool) -> str | None:
    """The option letter a string designates, or ``None``."""
    s = text.strip()
    texts = _choice_texts(choices)
    norm = normalize_text(s)
    if norm and norm in texts and not (len(norm) == 1 and _LETTER_ONLY_RE.match(s)):
        return chr(ord("A") + texts.index(norm))
    m = _LETTER_ONLY_RE.match(s)
    if m:
        return m.group(1).upper()
    if strict:
        return None
    for pattern in (_LETTER_PREFIX_RE, _LETTER_PHRASE_RE):
        m = pattern.search(s)
        if m:
            return m.group(1).upper()
    # A sentence naming exactly one option's text ("it is a dog") designates that option.
    named = [i for i, t in enumerate(texts) if t and f" {t} " in f" {norm} "]
    return chr(ord("A") + named[0]) if len(named) == 1 else None


# ----------------------------------------------------------------------------------------------- main


def match_answer(
    pred: str | None,
    gt: str,
    *,
    choices: list[str] | None = None,
    task_type: str = "general",
    judge: AnswerJudge | None = None,
    question: str = "",
    rel_tol: float | None = None,
) -> MatchResult:
    """Decide whether a predicted answer matches the ground truth.

    Args:
        pred: Extracted answer (``None`` when the rollout gave none).
        gt: Ground-truth answer (for multiple choice: the letter or the option text).
        choices: Options in letter order (``["cat", "dog"]`` or ``["A. cat", "B. dog"]``).
        task_type: One of :data:`TASK_TYPES`.
        judge: Optional LLM judge, asked only when no rule decides.
        question: The question, shown to the judge.
        rel_tol: Override of the numeric relative tolerance (default :data:`NUMERIC_REL_TOL`).

    Returns:
        A :class:`MatchResult` naming the deciding rule.

    Example:
        >>> match_answer("(b)", "B", choices=["cat", "dog"]).method
        'choice'
        >>> match_answer("1,200", "1200.0").correct
        True
        >>> match_answer("25%", "0.25").correct
        True
        >>> match_answer("Hello,  World", "hello world").correct
        True
        >>> match_answer(None, "x")
        MatchResult(correct=False, method='none', detail='no answer')
    """
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task_type {task_type!r}; set one of {sorted(TASK_TYPES)}")
    if gt is None:
        raise ValueError("match_answer needs a ground-truth answer string (gt)")
    gt = str(gt)
    if pred is None:
        return MatchResult(False, "none", "no answer")
    pred = str(pred)
    tol = NUMERIC_REL_TOL[task_type] if rel_tol is None else rel_tol

    fallback: MatchResult | None = None
    if choices:
        result = _match_choice(pred, gt, choices)
        if result is not None:
            return result
        fallback = MatchResult(False, "choice", f"no option letter in {pred!r}")
    if fallback is None and task_type != "ocr":
        result = _match_numeric(pred, gt, tol, extract=task_type != "math")
        if result is not None:
            return result
    if fallback is None and task_type == "math":
        from ._math import math_equal

        same = math_equal(pred, gt)
        if same is not None:
            return MatchResult(same, "math", "sympy equivalence")
    if fallback is None:
        result = _match_text(pred, gt, task_type)
        if result.correct:
            return result
        fallback = result
    if judge is not None:
        return judge.match(pred, gt, task_type=task_type, question=question, fallback=fallback)
    return fallback


def _match_choice(pred: str, gt: str, choices: list[str]) -> MatchResult | None:
    n = len(choices)
    gt_letter = _letter_of(gt, choices, strict=True)
    if gt_letter is None or ord(gt_letter) - ord("A") >= n:
        raise ValueError(
            f"ground truth {gt!r} is neither an option letter A-{chr(ord('A') + n - 1)} nor one of {choices}"
        )
    pred_letter = _letter_of(pred, choices, strict=False)
    if pred_letter is None:
        return None
    if ord(pred_letter) - ord("A") >= n:
        return MatchResult(
            False, "choice", f"pred letter {pred_letter} is not an option (A-{chr(ord('A') + n - 1)})"
        )
    return MatchResult(pred_letter == gt_letter, "choice", f"pred={pred_letter} gt={gt_letter}")


def _match_numeric(pred: str, gt: str, rel_tol: float, *, extract: bool) -> MatchResult | None:
    g = _parse_number(gt)
    if g is None:
        return None
    p = _parse_number(pred)
    if p is None:
        # A sentence holding exactly one number answers with it; several numbers (or, for math, any
        # expression such as "2^2") are left to the next rules or the judge.
        found = _numbers_in(pred) if extract else []
        if len(found) != 1:
            return None
        p = found[0]
    same = _numbers_equal(p, g, rel_tol)
    return MatchResult(
        same,
        "numeric",
        f"pred={p.value:g}{'%' if p.percent else ''} gt={g.value:g}{'%' if g.percent else ''}",
    )


def _match_text(pred: str, gt: str, task_type: str) -> MatchResult:
    p, g = normalize_text(pred), normalize_text(gt)
    if p == g and (p or pred.strip() == gt.strip()):
        return MatchResult(True, "text", "normalised strings equal")
    if task_type == "ocr" and g and f" {g} " in f" {p} ":
        return MatchResult(True, "text", "ground truth contained in prediction")
    return MatchResult(False, "text", f"{p!r} != {g!r}")
