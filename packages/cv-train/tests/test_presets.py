"""The recipe's ``preset`` reaches SFT data, RL rows and the RL environment (the template: test_env.py)."""

from __future__ import annotations

import logging

import pytest
from cv_data.testing import tiny_items
from cv_protocol import DEFAULT_PRESET, RELEASE_PRESET, content_text
from cv_train.config import (
    RecipeError,
    SFTRecipe,
    load_recipe,
    recipe_to_yaml,
    tiny_rl_recipe,
    tiny_sft_recipe,
)
from cv_train.data import load_sft_records, rl_rows
from cv_train.sft import warn_other_system_prompts


def test_recipe_field_is_validated_and_saved() -> None:
    assert tiny_sft_recipe().preset == "default" and tiny_rl_recipe(preset="release").preset == "release"
    assert "preset: release" in recipe_to_yaml(tiny_rl_recipe(preset="release"))
    assert load_recipe(SFTRecipe, None, {"preset": "release"}, base=tiny_sft_recipe()).preset == "release"
    with pytest.raises(RecipeError, match=r"preset: unknown preset 'nope'; choose one of \[.*'release'.*\]"):
        tiny_sft_recipe(preset="nope")


def test_rl_rows_and_in_process_sft_data_use_the_preset(caplog: pytest.LogCaptureFixture) -> None:
    rows = rl_rows(tiny_items(2), preset="release")
    assert {r["prompt"][0]["content"] for r in rows} == {RELEASE_PRESET.system_prompt}
    assert rl_rows(tiny_items(1))[0]["prompt"][0]["content"] == DEFAULT_PRESET.system_prompt
    assert rl_rows(tiny_items(1), "Mine.", preset="release")[0]["prompt"][0]["content"] == "Mine."
    records = load_sft_records("cv-data", num_synthetic=2, seed=0, preset="release")
    assert {content_text(r["messages"][0]["content"]) for r in records} == {RELEASE_PRESET.system_prompt}
    with caplog.at_level(logging.WARNING, logger="cv_train.sft"):
        assert warn_other_system_prompts(records, RELEASE_PRESET) == 0
        assert warn_other_system_prompts(records, DEFAULT_PRESET) == 2
    assert "2 of 2 SFT records have a system prompt other than preset 'default'" in caplog.text
