"""The SFT builder writes a preset's system prompt and tool texts (what the model will see at inference)."""

from __future__ import annotations

import pytest
from cv_data import SFTBuildConfig, build_sft, make_trajectory, replay_trajectory
from cv_protocol import DEFAULT_PRESET, RELEASE_PRESET, content_text


def _texts(rec: dict, role: str) -> list[str]:
    return [content_text(m["content"]) for m in rec["messages"] if m["role"] == role]


def test_release_preset_records_carry_the_release_texts_and_replay() -> None:
    for kind in ("single_tool", "error_recovery"):
        rec = make_trajectory(0, kind, seed=3, preset="release")
        assert _texts(rec, "system") == [RELEASE_PRESET.system_prompt]
        tools = _texts(rec, "tool")
        assert tools[-1].startswith("Here is the processed image. Now, analyze the returned results.")
        if kind == "error_recovery":
            assert tools[0].startswith("Error: ") and tools[0].endswith("within the <answer></answer> tags.")
        assert replay_trajectory(rec, preset="release") == []
        assert replay_trajectory(rec) != []  # replayed with the default preset's texts, they differ
    default = make_trajectory(0, "single_tool", seed=3)
    assert _texts(default, "system") == [DEFAULT_PRESET.system_prompt]
    assert _texts(default, "tool")[0].startswith("Execution succeeded.")


def test_build_config_takes_a_preset_name_or_object() -> None:
    recs = build_sft(
        SFTBuildConfig(num=2, seed=1, progress=False, preset=RELEASE_PRESET, kinds={"no_tool": 1})
    )
    assert all(_texts(r, "system") == [RELEASE_PRESET.system_prompt] for r in recs)
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; choose one of \[.*'release'.*\]"):
        SFTBuildConfig(preset="nope")
