"""Shared fixtures: one tiny-model cache per test session, so the random Qwen-VL is built once."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Parent of every run folder in the session; tiny models are cached in ``runs_root/tiny-models``."""
    return tmp_path_factory.mktemp("runs")
