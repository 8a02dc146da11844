"""The warm start's cache: reused for the same settings, rebuilt (never reused) when any setting changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cv_train import warm_start
from cv_train.config import toy_rl_recipe


@pytest.fixture
def fake_sft(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, int]]:
    """Replace the SFT runs by a stub that writes a "final" folder; records ``(recipe, number of records)``."""
    calls: list[tuple[Any, int]] = []

    def train_sft(recipe: Any, records: list[Any] | None = None) -> Path:
        final = Path(recipe.output_dir) / "final"
        final.mkdir(parents=True)
        (final / "stage.txt").write_text(recipe.model, encoding="utf-8")
        calls.append((recipe, len(records or [])))
        return final

    monkeypatch.setattr("cv_train.sft.train_sft", train_sft)
    monkeypatch.setattr(warm_start, "WARM_NOISY_NUM", 4)  # keeps the in-memory noisy records quick to build
    return calls


def test_the_warm_start_is_the_expert_then_the_noisy_teacher(tmp_path: Path, fake_sft: list) -> None:
    recipe = toy_rl_recipe(output_dir=str(tmp_path / "rl"))
    out = warm_start.build_warm_start(recipe)
    (expert, n_expert), (noisy, n_noisy) = fake_sft
    assert expert.model == "tiny:qwen2_5_vl" and expert.dataset == "toy" and n_expert == 0
    # The second stage continues from the first, on the noisy teacher's records, briefly.
    assert noisy.model.endswith("final") and "expert" in noisy.model and n_noisy == 4
    assert (noisy.max_steps, noisy.learning_rate) == (warm_start.WARM_NOISY_STEPS, warm_start.WARM_NOISY_LR)
    assert (out / "stage.txt").read_text(encoding="utf-8") == noisy.model
    assert warm_start.resolve_warm_start(recipe).model == str(out) and len(fake_sft) == 2  # cached: no rerun


def test_a_stale_warm_start_is_rebuilt(
    tmp_path: Path, fake_sft: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = toy_rl_recipe(output_dir=str(tmp_path / "rl"))
    out = warm_start.build_warm_start(recipe)
    (out / "old-weights").write_text("x", encoding="utf-8")
    monkeypatch.setattr(warm_start, "WARM_NOISY_STEPS", warm_start.WARM_NOISY_STEPS + 1)
    assert warm_start.build_warm_start(recipe) == out and len(fake_sft) == 4
    assert not (out / "old-weights").exists() and fake_sft[-1][0].max_steps == warm_start.WARM_NOISY_STEPS
