"""Each piece of the caller <-> worker <-> child exchange has one home in cv_sandbox's sources.

The exchange was once written twice (caller and worker each had their own request/reply code, reuse rule
and timeout message); these checks fail, naming the file, when a second copy appears.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv_sandbox
import pytest

SRC = Path(cv_sandbox.__file__).parent

# (what, pattern, the only files that may contain it)
HOMES = [
    ("the child-reuse rule", r"REUSABLE_AFTER\s*=", {"_exchange.py"}),
    ("the timeout message", r"timed out after", {"_exchange.py"}),
    ("reply headers built by hand", r"[\"']ok[\"']\s*:\s*(True|False)\b", {"_exchange.py"}),
    ("the frame layout", r"[\"']>IQ[\"']", {"_wire.py"}),
    ("frame reads and writes", r"\b(send_frame|recv_frame)\(", {"_wire.py", "_exchange.py"}),
    ("passing pipe ends between processes", r"\b(send_fds|recv_fds)\(", {"_exchange.py"}),
    ("the calling and child halves of a call", r"^def (call_child|serve_calls)\b", {"_exchange.py"}),
    ("the caller's side (worker handle, pool)", r"^class (Worker|WorkerPool|ChildLink)\b", {"_pool.py"}),
    ("the workers' side (zygote, child loop)", r"^class Zygote\b", {"_zygote.py"}),
]


def _sources() -> dict[str, str]:
    return {str(p.relative_to(SRC)): p.read_text() for p in sorted(SRC.rglob("*.py"))}


@pytest.mark.parametrize(("what", "pattern", "homes"), HOMES, ids=[h[0] for h in HOMES])
def test_one_home(what: str, pattern: str, homes: set[str]) -> None:
    rx = re.compile(pattern, re.MULTILINE)
    found = {name for name, text in _sources().items() if rx.search(text)}
    strays = sorted(found - homes)
    assert not strays, f"{what} belongs in {sorted(homes)} only; also found in: {', '.join(strays)}"
    missing = sorted(homes - found)
    assert not missing, f"{what} is no longer in {missing}: update this test's pattern or the home"
