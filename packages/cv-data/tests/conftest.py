from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def noise_image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8))
