"""Symbolic equivalence of math answers with sympy (optional dependency, ``cv-rewards[math]``).

Model output is untrusted and sympy's parser evaluates Python, so strings are whitelisted first: digits,
operators, brackets and a few known names only (no underscores, no attribute access, no long exponents).
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["math_equal"]

_NAMES = {"sqrt", "pi", "e", "sin", "cos", "tan", "log", "ln", "exp", "abs", "i"}
_ALLOWED_RE = re.compile(r"^[0-9a-zA-Z+\-*/^().,\s]*$")
_IDENT_RE = re.compile(r"[A-Za-z]+")
_MAX_LEN = 120


def _latex_to_plain(s: str) -> str:
    s = s.strip().strip("$").strip()
    boxed = re.fullmatch(r"\\boxed\{(.*)\}", s)
    if boxed:
        s = boxed.group(1)
    for _ in range(4):  # nested \frac / \sqrt, innermost first
        s = re.sub(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\cdot", "*").replace("\\times", "*")
    s = s.replace("\\pi", "pi").replace("\\ln", "ln").replace("\\log", "log").replace("\\", "")
    s = (
        s.replace("{", "(")
        .replace("}", ")")
        .replace("\u03c0", "pi")
        .replace("\u00d7", "*")
        .replace("\u2212", "-")
    )
    # "x = 5" answers name the variable; compare the value.
    s = re.sub(r"^\s*[A-Za-z]\s*=\s*", "", s)
    return s


def _safe(s: str) -> bool:
    if not s or len(s) > _MAX_LEN or not _ALLOWED_RE.match(s):
        return False
    if any(tok.lower() not in _NAMES and len(tok) > 1 for tok in _IDENT_RE.findall(s)):
        return False
    # Refuse towers and big exponents (9^9^9 would hang): one power at most, its exponent a small
    # literal or a single variable; answers never need more.
    ops = re.findall(r"\*\*|\^", s)
    if not ops:
        return True
    return (
        len(ops) == 1
        and re.search(
            r"(?:\*\*|\^)\s*(?:-?\d{1,3}|[A-Za-z]|\(\s*-?\d{1,3}(?:\s*/\s*\d{1,3})?\s*\))(?![\d.(])", s
        )
        is not None
    )


def _parse(s: str) -> Any:
    """A sympy expression, or ``None`` when the string is unsafe or not an expression."""
    from sympy import E, I, log, pi
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    s = _latex_to_plain(s)
    if not _safe(s):
        return None
    if re.search(r"\d,\d{3}", s):
        s = re.sub(r"(?<=\d),(?=\d{3})", "", s)
    if "," in s:
        return None  # tuples and lists are out of scope
    local = {"pi": pi, "e": E, "i": I, "ln": log}
    try:
        return parse_expr(
            s,
            local_dict=local,
            transformations=standard_transformations + (implicit_multiplication_application, convert_xor),
            evaluate=True,
        )
    except Exception:  # noqa: BLE001 - any parse failure means "not a math expression"
        return None


def math_equal(a: str, b: str) -> bool | None:
    """Whether two answers are the same mathematical value or expression.

    Returns ``None`` when sympy is missing or either side is not a parsable expression, so the caller
    falls through to the next rule.

    Example:
        >>> math_equal("\\\\frac{1}{2}", "0.5"), math_equal("2\\\\sqrt{2}", "sqrt(8)"), math_equal("x+1", "1+x")
        (True, True, True)
    """
    try:
        import sympy
    except ImportError:
        return None
    ea, eb = _parse(a), _parse(b)
    if ea is None or eb is None:
        return None
    try:
        diff = sympy.simplify(ea - eb)
        if diff == 0:
            return True
        if not ea.free_symbols and not eb.free_symbols:
            va, vb = complex(sympy.N(ea)), complex(sympy.N(eb))
            return math.isclose(va.real, vb.real, rel_tol=1e-6, abs_tol=1e-9) and math.isclose(
                va.imag, vb.imag, rel_tol=1e-6, abs_tol=1e-9
            )
        return False
    except Exception:  # noqa: BLE001 - sympy raises many types on odd input; treat as undecided
        return None
