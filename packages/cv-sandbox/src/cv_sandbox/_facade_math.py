"""The ``math`` facade: every public name of the module (it holds no way out)."""

from __future__ import annotations

import math

from ._facade import Facade


def build_math() -> Facade:
    return Facade("math", {n: getattr(math, n) for n in dir(math) if not n.startswith("_")})
