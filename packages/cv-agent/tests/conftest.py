from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root for tiny-model builds shared by the whole session (builds are cached per arguments)."""
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="session")
def tiny_qwen25(tiny_dir: Path) -> Path:
    from cv_agent.tiny import build_tiny_vlm

    return build_tiny_vlm(tiny_dir / "qwen2_5_vl", "qwen2_5_vl")


@pytest.fixture(scope="session")
def tiny_qwen3(tiny_dir: Path) -> Path:
    from cv_agent.tiny import build_tiny_vlm

    return build_tiny_vlm(tiny_dir / "qwen3_vl", "qwen3_vl")
