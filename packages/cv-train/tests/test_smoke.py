"""The default CPU path shows a learning signal: ``cv-train sft`` (defaults) then ``cv-bench eval`` scores above 0.

The model is the toy-SFT warm start (:func:`cv_train.models.build_warm_start`), which is exactly the default
``cv-train sft`` run (``toy_sft_recipe``), cached once per test session; the RL smoke run starts from it too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cv_train.config import toy_rl_recipe, toy_sft_recipe
from cv_train.warm_start import build_warm_start

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def warm_start(runs_root: Path) -> Path:
    return build_warm_start(toy_rl_recipe(output_dir=str(runs_root / "rl-cli")))


def test_warm_start_is_the_default_sft_run_and_is_cached(warm_start: Path, runs_root: Path) -> None:
    saved = (warm_start / "cv_train_warm_start.yaml").read_text()
    assert "dataset: toy" in saved and "preset: minimal" in saved
    assert f"max_steps: {toy_sft_recipe().max_steps}" in saved
    before = (warm_start / "model.safetensors").stat().st_mtime_ns
    assert build_warm_start(toy_rl_recipe(output_dir=str(runs_root / "rl-other"))) == warm_start
    assert (warm_start / "model.safetensors").stat().st_mtime_ns == before  # reused, not retrained


def test_default_sft_model_scores_above_zero_on_the_toy_suite(warm_start: Path, tmp_path: Path) -> None:
    from cv_bench import EvalConfig, evaluate

    config = EvalConfig(
        model=f"hf:{warm_start}",
        suite="toy",
        out=str(tmp_path / "eval"),
        size=4,
        preset="minimal",
        max_turns=3,
        max_new_tokens=128,
        progress=False,
        trajectories="none",
    )
    evaluate(config)
    results = [json.loads(line) for line in (tmp_path / "eval" / "results.jsonl").read_text().splitlines()]
    assert len(results) == 16
    rotated = [r for r in results if r["transform"]]
    # The tool is called on rotated images with well-formed calls that run, and some answers are right.
    assert sum(bool(r["tool_calls"]) and all(c["ok"] for c in r["tool_calls"]) for r in rotated) >= 9
    assert sum(r["correct"] for r in results) > 0
