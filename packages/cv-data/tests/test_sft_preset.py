"""The SFT builder writes a preset's system prompt and tool texts (what the model will see at inference)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cv_data import SFTBuildConfig, build_sft, build_sft_dataset, make_trajectory, replay_trajectory
from cv_data.cli import main
from cv_protocol import DEFAULT_PRESET, RELEASE_PRESET, content_text, get_preset


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


@pytest.mark.parametrize("name", ["default", "release"])
def test_sharegpt_system_and_tools_come_from_the_build_preset(tmp_path: Path, name: str) -> None:
    """Every row's ShareGPT ``system``/``tools`` and its own messages show the same preset."""
    preset = get_preset(name)
    out = tmp_path / name
    argv = [
        "build-sft",
        "--out",
        str(out),
        "--num",
        "3",
        "--seed",
        "2",
        "--kinds",
        "single_tool=1,error_recovery=1",
    ]
    assert main([*argv, "--preset", name, "--no-progress"]) == 0
    rows = pq.read_table(out / "data").to_pylist()
    assert len(rows) == 3
    for row in rows:
        msgs = row["messages"]
        assert row["system"] == content_text(msgs[0]["content"]) == preset.system_prompt
        assert json.loads(row["tools"]) == [preset.tool_schema()]
        tool_texts = [t["value"] for t in row["conversations"] if t["from"] == "tool"]
        assert tool_texts and tool_texts == [
            "<image>" * sum(p["type"] == "image" for p in m["content"]) + content_text(m["content"])
            for m in msgs
            if m["role"] == "tool"
        ]
        if name == "release":
            assert tool_texts[-1].startswith("<image>Here is the processed image.")
    card = (out / "README.md").read_text()
    assert f'"preset": "{name}"' in card and (f"--preset {name}" in card) == (name != "default")


def test_sharegpt_tools_empty_when_the_preset_keeps_the_tool_in_the_prompt(tmp_path: Path) -> None:
    from dataclasses import replace

    quiet = replace(DEFAULT_PRESET, name="prompt-only", tools_in_prompt=False)
    cfg = SFTBuildConfig(num=1, seed=0, progress=False, preset=quiet, kinds={"single_tool": 1.0})
    (row,) = pq.read_table(build_sft_dataset(cfg, tmp_path / "sft").files[0]).to_pylist()
    assert row["tools"] == "" and row["system"] == quiet.system_prompt
