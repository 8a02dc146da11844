"""``--preset``: one choice of what the model is shown, recorded in run.json, reaching the agent and distillation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cv_agent import load_trajectories
from cv_agent.testing import StubOpenAIServer
from cv_bench import DistillConfig, EvalConfig, distill, evaluate
from cv_bench.cli import main
from cv_bench.runner import _agent_config
from cv_data import SOURCES, replay_trajectory, transform_item
from cv_protocol import RELEASE_PRESET, render_tool_call, system_with_tools

FIX = render_tool_call("result = image.rotate(180, expand=True)", "fix", 0)
RELEASE_OK = "Here is the processed image. Now, analyze the returned results."


def _eval(tmp_path: Path, **kw) -> EvalConfig:
    return EvalConfig(
        model="reference", size=1, limit=2, out=tmp_path, progress=False, trajectories="full", **kw
    )


def test_the_run_records_its_preset_and_the_agent_uses_it(tmp_path: Path) -> None:
    out = evaluate(_eval(tmp_path, preset="release"))
    assert out.failed == 0 and out.summary["avg"] == 100.0
    assert json.loads((tmp_path / "run.json").read_text())["preset"] == "release"
    assert _agent_config(_eval(tmp_path, preset="release")).preset is RELEASE_PRESET
    (traj,) = load_trajectories(tmp_path / "trajectories" / "doc-s0-000000_rot90__s0")
    assert traj.messages[0]["content"] == RELEASE_PRESET.system_prompt
    assert traj.messages[3]["content"][-1]["text"].startswith(RELEASE_OK)
    # a rerun with another preset is another run
    with pytest.raises(ValueError, match=r"preset: 'release' there vs 'default' now"):
        evaluate(_eval(tmp_path))


def test_a_run_from_before_presets_resumes_as_default(tmp_path: Path) -> None:
    evaluate(_eval(tmp_path))
    info = json.loads((tmp_path / "run.json").read_text())
    del info["preset"]
    (tmp_path / "run.json").write_text(json.dumps(info))
    assert evaluate(_eval(tmp_path)).skipped == 2


def test_unknown_preset_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; choose one of \[.*'release'.*\]"):
        EvalConfig(model="reference", preset="nope")
    with pytest.raises(SystemExit) as e:
        main(["eval", "--model", "reference", "--preset", "nope", "--out", str(tmp_path)])
    assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_distill_with_the_release_preset_writes_release_texts(tmp_path: Path) -> None:
    item = transform_item(SOURCES["chart"](0, 0, "train"), ["rotate_180"])
    replies = ["<think>fix</think>\n" + FIX + "\n" + FIX, f"<answer>{item.answer}</answer>"]
    with StubOpenAIServer(replies) as server:
        out = distill(
            DistillConfig(
                model=f"openai:{server.base_url}#t",
                out=tmp_path,
                suite="items",
                progress=False,
                preset="release",
            ),
            items=[item],
        )
        # the episode's requests (the first one is the model check, a bare user message)
        seen = [b["messages"] for b in server.requests if b["messages"][0]["role"] == "system"]
    # the release's system prompt, with the release's tool schema inlined as the chat template's "# Tools" block
    assert seen[0][0]["content"] == system_with_tools(RELEASE_PRESET.system_prompt, RELEASE_PRESET.tools())
    assert seen[0][0]["content"].startswith(RELEASE_PRESET.system_prompt + "\n\n# Tools\n")
    (rec,) = out.records
    assert rec["messages"][0]["content"][0]["text"] == RELEASE_PRESET.system_prompt
    assert rec["messages"][3]["content"][-1]["text"].startswith(RELEASE_OK)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["preset"] == "release"
    assert replay_trajectory(rec, preset="release") == []
    assert replay_trajectory(rec) != []  # the default preset's texts are not what the record holds
    import pyarrow.parquet as pq

    (row,) = pq.read_table(tmp_path / "sft.parquet", columns=["system", "tools"]).to_pylist()
    assert row["system"] == RELEASE_PRESET.system_prompt  # the ShareGPT view shows the same preset
    assert json.loads(row["tools"]) == [RELEASE_PRESET.tool_schema()]
