from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from cv_sandbox import Sandbox, SandboxConfig
from PIL import Image


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One shared pool for tests that do not kill workers (starting one costs ~1 s of imports)."""
    sb = Sandbox(SandboxConfig(workers=2, timeout_s=3.0, memory_mb=1024))
    yield sb
    sb.close()


@pytest.fixture(scope="session")
def src() -> Image.Image:
    """A non-square RGB image with distinct pixels, so geometry mistakes show up."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8))
