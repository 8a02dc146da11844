"""``cv-bench distill``: a teacher (a stub OpenAI-compatible server, or the reference policy) runs the one
agent loop over items; its verified-correct trajectories become SFT records that replay exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cv_agent.testing import StubOpenAIServer
from cv_bench import DistillConfig, distill
from cv_bench.cli import main
from cv_data import SOURCES, load_sft, replay_trajectory, transform_item, write_items
from cv_protocol import ParseError, parse_error_text, parse_tool_calls, render_tool_call

FIX = render_tool_call("result = image.rotate(180, expand=True)", "fix", 0)


@pytest.fixture(scope="module")
def item():
    return transform_item(SOURCES["chart"](0, 0, "train"), ["rotate_180"])


def _config(server: StubOpenAIServer, out: Path, **kw) -> DistillConfig:
    return DistillConfig(
        model=f"openai:{server.base_url}#teacher", out=out, suite="items", progress=False, **kw
    )


def test_teacher_keeps_only_verified(item, tmp_path: Path) -> None:
    with StubOpenAIServer(
        ["<think>upside down</think>\n" + FIX, f"<think>read it</think>\n<answer>{item.answer}</answer>"]
    ) as server:
        good = distill(_config(server, tmp_path / "good"), items=[item])
        bodies = list(server.requests)
    assert bodies[0]["messages"][1]["content"][0]["type"] == "image_url"  # the teacher saw the image
    assert "Execution succeeded" in json.dumps(bodies[1]["messages"][-1])
    assert len(good.records) == 1 and good.records[0]["correct"] and good.records[0]["kind"] == "teacher"
    rec = good.records[0]
    assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert (
        rec["id"] == f"teacher-{item.id}" and rec["tool_ops"] == [["rotate_180"]] and len(rec["images"]) == 2
    )
    assert replay_trajectory(rec) == []
    assert [r["id"] for r in load_sft(tmp_path / "good")] == [rec["id"]]
    with StubOpenAIServer(
        ["<think>upside down</think>\n" + FIX, "<answer>definitely wrong</answer>"]
    ) as server:
        bad = distill(_config(server, tmp_path / "bad"), items=[item])
    assert bad.records == [] and bad.report.errors[0].stage == "verify"
    assert json.loads((tmp_path / "bad" / "report.json").read_text())["ok"] == 0


def test_teacher_sloppy_call_executes_and_malformed_call_is_reported(item, tmp_path: Path) -> None:
    """Calls are read by cv_protocol.parse_tool_calls: a Python-dict call with the code in single quotes
    inside a ```json fence runs; an unreadable call gets the parser's message and the teacher retries; the
    saved call is the canonical one."""
    sloppy = (
        "<think>upside down</think>\n<tool_call>\n```json\n{'name': 'code_image_tool', 'arguments': "
        "{'code': 'result = image.rotate(180, expand=True)', 'description': 'fix', 'image_index': 0}}\n```"
    )
    broken = (
        '<think>crop it</think>\n<tool_call>{"name": "code_image_tool", "arguments": {"code": </tool_call>'
    )
    replies = [broken, sloppy, f"<think>read it</think>\n<answer>{item.answer}</answer>"]
    with StubOpenAIServer(replies) as server:
        out = distill(_config(server, tmp_path), items=[item])
        seen = [b["messages"] for b in server.requests]
    assert len(out.records) == 1 and len(out.records[0]["images"]) == 2
    msgs = out.records[0]["messages"]
    assert [m["role"] for m in msgs] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    err = parse_tool_calls(broken)
    assert isinstance(err, ParseError)
    assert msgs[3]["content"] == [{"type": "text", "text": parse_error_text(err)}]
    assert "not valid JSON" in json.dumps(seen[1][-1])  # the teacher saw the parser's message
    assert "Execution succeeded" in json.dumps(seen[2][-1])
    saved = msgs[4]["content"][0]["text"]
    assert saved == "<think>upside down</think>\n" + FIX and parse_tool_calls(saved).warnings == []
    assert replay_trajectory(out.records[0]) == []


def test_the_agents_notes_on_a_rewritten_call_are_dropped(item, tmp_path: Path) -> None:
    """Two calls in one reply: the agent runs the first and says so; the record keeps only the canonical
    first call, so the note (untrue of it) is dropped and the record still replays."""
    replies = ["<think>fix</think>\n" + FIX + "\n" + FIX, f"<answer>{item.answer}</answer>"]
    with StubOpenAIServer(replies) as server:
        out = distill(_config(server, tmp_path), items=[item])
        seen = [b["messages"] for b in server.requests]
    assert "only the first was executed" in json.dumps(seen[1][-1])
    tool = out.records[0]["messages"][3]["content"][-1]["text"]
    assert "Note:" not in tool and tool.startswith("Execution succeeded")
    assert out.records[0]["messages"][2]["content"][0]["text"] == "<think>fix</think>\n" + FIX
    assert replay_trajectory(out.records[0]) == []


def test_teacher_answers_are_verified_by_the_reward_matcher(tmp_path: Path) -> None:
    """cv-rewards' match_answer decides (through cv_bench.score_answer): the same answer written
    differently (case, a trailing period) is kept, as the reward would count it correct."""
    doc = transform_item(SOURCES["document"](1, 0, "train"), ["rotate_180"])
    with StubOpenAIServer([f"<answer> {doc.answer.upper()}. </answer>"]) as server:
        out = distill(_config(server, tmp_path), items=[doc])
    assert len(out.records) == 1 and out.records[0]["teacher_answer"] == f"{doc.answer.upper()}."
    assert out.records[0]["kind"] == "no_tool"


def test_reference_teacher_on_a_suite_gives_records_that_replay(tmp_path: Path) -> None:
    out = distill(DistillConfig(model="reference", suite="multi-tool", size=2, out=tmp_path, progress=False))
    assert out.report.ok == out.report.total == len(out.records) > 0
    for rec in out.records:
        assert rec["kind"] == "teacher" and replay_trajectory(rec) == [], rec["id"]


def test_cli_distills_from_items_and_resumes(item, tmp_path: Path, capsys) -> None:
    write_items([item], tmp_path / "items.parquet")
    replies = ["<think>upside down</think>\n" + FIX, f"<answer>{item.answer}</answer>"]
    args = ["distill", "--data", str(tmp_path / "items.parquet"), "--out", str(tmp_path / "sft"), "--quiet"]
    with StubOpenAIServer(replies) as server:
        assert main([*args, "--model", f"openai:{server.base_url}#teacher"]) == 0
        assert "kept 1/1 verified teacher trajectories" in capsys.readouterr().out
        n = server.n_received
        assert main([*args, "--model", f"openai:{server.base_url}#teacher"]) == 0  # resumed: nothing to ask
        assert server.n_received == n
    assert (tmp_path / "sft" / "sft.parquet").is_file() and (tmp_path / "sft" / "sharegpt.json").is_file()
    assert (tmp_path / "sft" / "run" / "results.jsonl").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "openai:http://x/v1#m", "--out", "o"], "--suite NAME, or --data items.parquet"),
        (["--model", "http://x/v1#m", "--suite", "orientation", "--out", "o"], "openai:http://x/v1#m"),
        (["--model", "reference", "--suite", "orientation", "--out", "o", "--formats", "csv"], "formats"),
    ],
)
def test_cli_errors_are_one_line(argv: list[str], message: str, capsys) -> None:
    assert main(["distill", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("cv-bench distill: ") and err.count("\n") == 1
