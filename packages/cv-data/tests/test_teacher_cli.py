from __future__ import annotations

import json
from pathlib import Path

import httpx
from cv_data import (
    SOURCES,
    BuildReport,
    TeacherConfig,
    build_teacher_sft,
    replay_trajectory,
    transform_item,
)
from cv_data.cli import main
from cv_protocol import ParseError, parse_error_text, parse_tool_calls, render_tool_call


def _teacher(answer: str):
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls["n"] += 1
        if calls["n"] % 2 == 1:
            assert body["messages"][1]["content"][0]["type"] == "image_url"
            text = "<think>upside down</think>\n" + render_tool_call(
                "result = image.rotate(180, expand=True)", "fix", 0
            )
        else:
            assert "Execution succeeded" in json.dumps(body["messages"][-1])
            text = f"<think>read it</think>\n<answer>{answer}</answer>"
        return httpx.Response(200, json={"choices": [{"message": {"content": text}}]})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_teacher_keeps_only_verified() -> None:
    item = transform_item(SOURCES["chart"](0, 0, "train"), ["rotate_180"])
    cfg = TeacherConfig(base_url="http://teacher.local/v1", model="t", api_key_env="")
    good = build_teacher_sft([item], cfg, client=_teacher(item.answer), progress=False)
    assert len(good) == 1 and good[0]["correct"]
    assert [m["role"] for m in good[0]["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert replay_trajectory(good[0]) == []
    report = BuildReport()
    bad = build_teacher_sft([item], cfg, client=_teacher("definitely wrong"), progress=False, report=report)
    assert bad == [] and report.errors[0].stage == "verify"


def _scripted_teacher(replies: list[str], seen: list[list[dict]]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body["messages"])
        text = replies[len(seen) - 1]
        return httpx.Response(200, json={"choices": [{"message": {"content": text}}]})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_teacher_sloppy_call_executes_and_malformed_call_is_reported() -> None:
    """Calls are read by cv_protocol.parse_tool_calls: a Python-dict call with the code in single
    quotes inside a ```json fence runs; an unreadable call gets the parser's message and the teacher retries."""
    item = transform_item(SOURCES["chart"](0, 0, "train"), ["rotate_180"])
    cfg = TeacherConfig(base_url="http://teacher.local/v1", model="t", api_key_env="")
    sloppy = (
        "<think>upside down</think>\n<tool_call>\n```json\n{'name': 'code_image_tool', 'arguments': "
        "{'code': 'result = image.rotate(180, expand=True)', 'description': 'fix', 'image_index': 0}}\n```"
    )
    broken = (
        '<think>crop it</think>\n<tool_call>{"name": "code_image_tool", "arguments": {"code": </tool_call>'
    )
    replies = [broken, sloppy, f"<think>read it</think>\n<answer>{item.answer}</answer>"]
    seen: list[list[dict]] = []
    good = build_teacher_sft([item], cfg, client=_scripted_teacher(replies, seen), progress=False)
    assert len(good) == 1 and good[0]["correct"] and len(good[0]["images"]) == 2
    msgs = good[0]["messages"]
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
    assert isinstance(err, ParseError) and msgs[3]["content"] == [
        {"type": "text", "text": parse_error_text(err)}
    ]
    assert "not valid JSON" in json.dumps(seen[1][-1])  # the teacher saw the parser's message
    assert "Execution succeeded" in json.dumps(seen[2][-1])
    # The saved call is the canonical one the parser reads without repairs; the reasoning before it stays.
    saved = msgs[4]["content"][0]["text"]
    assert saved == "<think>upside down</think>\n" + render_tool_call(
        "result = image.rotate(180, expand=True)", "fix", 0
    )
    assert parse_tool_calls(saved).warnings == []
    assert replay_trajectory(good[0]) == []


def test_teacher_answers_are_verified_by_the_reward_matcher() -> None:
    """cv-rewards' match_answer decides: the same answer written differently (case, a trailing period) is
    kept, as the reward would count it correct."""
    item = transform_item(SOURCES["document"](1, 0, "train"), ["rotate_180"])
    cfg = TeacherConfig(base_url="http://teacher.local/v1", model="t", api_key_env="")
    kept = build_teacher_sft([item], cfg, client=_teacher(f" {item.answer.upper()}. "), progress=False)
    assert len(kept) == 1 and kept[0]["teacher_answer"] == f"{item.answer.upper()}."


def test_cli_teacher_takes_a_model_spec(capsys) -> None:
    assert main(["build-sft", "--out", "/nonexistent/x", "--teacher", "http://localhost:8000/v1#m"]) == 2
    assert "written 'openai:http://localhost:8000/v1#m'" in capsys.readouterr().err


def test_cli_builds_sft(tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "build-sft",
                "--out",
                str(tmp_path / "sft"),
                "--num",
                "2",
                "--kinds",
                "no_tool=1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (tmp_path / "sft" / "sft.parquet").exists() and (tmp_path / "sft" / "sharegpt.json").exists()
    assert "wrote 2 trajectories" in capsys.readouterr().out


def test_cli_errors_are_clear(tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "build-bench",
                "--out",
                str(tmp_path / "x"),
                "--input",
                str(tmp_path / "nope.jsonl"),
                "--input-format",
                "table",
            ]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
