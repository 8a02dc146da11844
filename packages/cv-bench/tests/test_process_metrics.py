"""Process metrics (op accuracy, crop faithfulness, cost per correct answer), the no-tool baseline and the
tool necessity, pass@k, and babble that is not counted as tool use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cv_agent.testing import StubOpenAIServer
from cv_bench import EvalConfig, evaluate, load_results
from cv_bench.cli import main
from cv_bench.results import ItemResult, ToolCallSummary
from cv_bench.stats import final_orientation, op_correct, process_metrics, tool_stats
from cv_protocol import orientation_of, render_tool_call


def _result(variant: str, transform: list[str], calls: list[ToolCallSummary], **kw: Any) -> ItemResult:
    return ItemResult(f"x/{variant}", 0, "s", variant, "x", "src", "q", "1", "1", True, "numeric",
                      transform=transform, tool_calls=calls, **kw)  # fmt: skip


def test_op_accuracy_follows_the_image_the_model_ended_on() -> None:
    fix = ToolCallSummary(True, None, ["rotate_270"], 0, 1)
    assert op_correct(_result("rot90", ["rotate_90"], [fix])) is True
    # rotating, then cropping the *input* again: the final view is not upright
    crop_input = ToolCallSummary(True, None, ["crop"], 0, 2)
    r = _result("rot90", ["rotate_90"], [fix, crop_input])
    assert final_orientation(r) == orientation_of([]) and op_correct(r) is False
    # cropping the fixed image keeps it upright; a failed call changes nothing
    r = _result(
        "rot90",
        ["rotate_90"],
        [fix, ToolCallSummary(False, "exception", [], 1), ToolCallSummary(True, None, ["crop"], 1, 2)],
    )
    assert op_correct(r) is True
    # upright items: the right op is none; items outside the orientation family have no op accuracy
    assert op_correct(_result("source", [], [])) is True
    assert op_correct(_result("source", [], [fix])) is False
    assert op_correct(_result("blur", ["blur"], [])) is None
    # equivalent spellings count
    assert op_correct(
        _result(
            "rot180",
            ["rotate_180"],
            [ToolCallSummary(True, None, ["flip_horizontal", "flip_vertical"], 0, 1)],
        )
    )


def test_babble_is_not_tool_use() -> None:
    """A random model's unparsable output: not '100 % tool use, 100 % exec errors'."""
    babble = [
        _result("rot90", [], [ToolCallSummary(False, "parse"), ToolCallSummary(False, "parse")], turns=3)
        for _ in range(4)
    ]
    s = tool_stats(babble)
    assert (s["tool_use_rate"], s["calls_per_item"], s["exec_error_rate"]) == (0.0, 0.0, None)
    assert (s["malformed_rate"], s["malformed_per_item"]) == (100.0, 2.0)
    assert s["calls_hist"] == {0: 4} and s["error_kinds"] == {"parse": 8}


def test_crop_faithfulness_in_input_coordinates() -> None:
    box = [100.0, 100.0, 200.0, 200.0]
    tight = _result(
        "crop", ["crop"], [ToolCallSummary(True, None, ["crop"], 0, 1, [[100, 100, 200, 200]])], bbox=box
    )
    loose = _result(
        "crop", ["crop"], [ToolCallSummary(True, None, ["crop"], 0, 1, [[50, 100, 250, 200]])], bbox=box
    )
    none = _result("crop", ["crop"], [], bbox=box)
    p = process_metrics([tight, loose, none])
    assert p["crop"] == {"episodes": 2, "crop_rate": round(200 / 3, 2), "coverage": 100.0, "iou": 75.0}
    # a voluntary crop on an item that needs none: measured against the box, not counted in the rate
    extra = _result(
        "rot90",
        ["rotate_90"],
        [ToolCallSummary(True, None, ["crop"], 0, 1, [[100, 100, 150, 200]])],
        bbox=box,
    )
    q = process_metrics([tight, extra])
    assert q["crop"] == {"episodes": 2, "crop_rate": 100.0, "coverage": 75.0, "iou": 75.0}


def test_reference_runs_show_perfect_process_metrics(tmp_path: Path) -> None:
    orient = evaluate(
        EvalConfig(model="reference", size=1, out=tmp_path / "o", progress=False, trajectories="none")
    )
    p = orient.summary["process"]
    assert p["op_accuracy"] == 100.0 and p["op_n"] == 5
    assert set(p["op_accuracy_by_variant"]) == {"source", "rot90", "rot180", "rot270", "flip-h", "flip-v"}
    assert set(p["op_accuracy_by_variant"].values()) == {100.0}
    crop = evaluate(
        EvalConfig(
            model="reference",
            suite="crop-only",
            size=1,
            out=tmp_path / "c",
            progress=False,
            trajectories="none",
        )
    )
    c = crop.summary["process"]["crop"]
    assert c["crop_rate"] == 100.0 and c["coverage"] >= 99.0 and c["iou"] >= 95.0, c
    assert crop.summary["process"]["latency_s_per_correct"] > 0


def _wrong_rotation_server() -> StubOpenAIServer:
    """Rotates every item by 90 degrees (right only for rot270 items), answers, and reports token usage."""

    def reply(body: dict[str, Any]) -> str:
        if body.get("max_tokens") == 1:
            return "OK"
        if any(m["role"] == "assistant" for m in body["messages"]):
            return "<think>done</think><answer>no idea</answer>"
        return "<think>turn</think>\n" + render_tool_call(
            "result = image.rotate(90, expand=True)", "rotate", 0
        )

    return StubOpenAIServer(reply)


def test_op_accuracy_of_a_model_that_rotates_the_wrong_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _wrong_rotation_server() as server:
        rc = main(
            [
                "eval",
                "--model",
                f"openai:{server.base_url}#stub",
                "--size",
                "1",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
    assert rc == 0
    p = json.loads((tmp_path / "summary.json").read_text())["process"]
    assert p["op_accuracy"] == 20.0  # rot270 of rot90/rot180/rot270/flip-h/flip-v
    assert p["op_accuracy_by_variant"] == {
        "source": 0.0,
        "rot90": 0.0,
        "rot180": 0.0,
        "rot270": 100.0,
        "flip-h": 0.0,
        "flip-v": 0.0,
    }
    assert p["tokens_per_episode"] > 0 and p["tokens_per_correct"] is None  # nothing correct
    out = capsys.readouterr().out
    assert "op acc %" in out and "| 20.0 |" in out.replace("    ", " ").replace("  ", " ")


def test_no_tools_baseline_and_tool_necessity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, tools = tmp_path / "no-tools", tmp_path / "tools"

    def guess(body: dict[str, Any]) -> str:
        assert "code_image_tool" not in json.dumps(body)  # no tool schema, no tool prompt
        return (
            "OK"
            if body.get("max_tokens") == 1
            else "<think>it looks sideways</think><answer>no idea</answer>"
        )

    with StubOpenAIServer(guess) as server:
        rc = main(
            [
                "eval",
                "--model",
                f"openai:{server.base_url}#stub",
                "--size",
                "1",
                "--out",
                str(base),
                "--quiet",
                "--no-tools",
            ]
        )
    assert rc == 0
    res = load_results(base)
    assert all(r.turns == 1 and not r.tool_calls and not r.correct for r in res)
    argv = [
        "eval",
        "--model",
        "reference",
        "--size",
        "1",
        "--out",
        str(tools),
        "--quiet",
        "--baseline",
        str(base),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Tool necessity" in out
    s = json.loads((tools / "summary.json").read_text())
    tn = s["tool_necessity"]["by_variant"]
    assert tn["all"] == {"n": 6, "with_tools": 100.0, "without": 0.0, "gain": 100.0, "needed": 6, "hurt": 0}
    assert 'id="necessity"' in (tools / "report.html").read_text()
    # compare shows it too, and a no-tool run of the reference answers directly (100 %)
    assert main(["compare", str(base), str(tools)]) == 0
    assert "vs the no-tool run" in capsys.readouterr().out
    direct = evaluate(
        EvalConfig(
            model="reference", size=1, no_tools=True, out=tmp_path / "d", progress=False, trajectories="none"
        )
    )
    assert direct.summary["avg"] == 100.0 and direct.summary["tool_stats"]["calls_per_item"] == 0.0
    # a tool run and a no-tool run are different runs: one directory cannot hold both
    with pytest.raises(ValueError, match="no_tools: True there vs False now"):
        evaluate(EvalConfig(model="reference", size=1, out=tmp_path / "d", progress=False))


def test_samples_give_avg_and_pass_at_k(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "eval",
                "--model",
                "reference",
                "--size",
                "1",
                "--samples",
                "2",
                "--out",
                str(tmp_path),
                "--quiet",
                "--trajectories",
                "none",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("Avg@2 100.0 % (95 % CI 100.0-100.0), 6 items x 2 samples, all scored")
    assert any(line.startswith("pass@2") for line in out.splitlines())
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["pass_at_k"]["overall"] == 100.0 and s["headline"]["metric"] == "Avg@2"
