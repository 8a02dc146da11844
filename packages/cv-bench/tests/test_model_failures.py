"""Models that cannot answer fail up front in one line; hung servers and malformed calls cost little.

Reproduces: a hung server cost 609 s per episode (5 x 120 s timeouts); `hf:/missing`, `vllm:` without
vLLM and a dead server were only found per episode, after run.json was written into --out; a server that
answers HTTP 500 on a malformed tool call (`transformers serve`) turned the model's mistake into 5 retries
and a harness failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cv_agent.testing import StubOpenAIServer
from cv_bench.cli import main
from cv_protocol import render_tool_call

ANSWER = "<think>done</think><answer>830</answer>"
BROKEN = '<think>rotate</think>\n<tool_call>\n{"name": "code_image_tool", "arguments": {"code": "x", }\n</tool_call>'
FIX = "<think>fix</think>\n" + render_tool_call("result = image.rotate(90, expand=True)", "rotate", 0)


def _eval(model: str, out: Path, *extra: str) -> int:
    argv = ["eval", "--model", model, "--suite", "orientation", "--size", "2", "--out", str(out), "--quiet"]
    return main([*argv, *extra])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("openai:localhost:8000/v1#m", "bad model spec"),
        ("openai:http://127.0.0.1:9/v1", "needs '#MODEL'"),
        ("hf:/missing/checkpoint", "hf:/missing/checkpoint: no such model directory"),
        ("vllm:/models/x", "needs vllm"),
        ("openai:http://127.0.0.1:9/v1#m", "model check failed for 'm' at http://127.0.0.1:9/v1"),
    ],
)
def test_a_model_that_cannot_answer_fails_up_front_and_writes_nothing(
    model: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    if model.startswith("vllm:") and importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    out = tmp_path / "run"
    fast = ["--max-retries", "0"] if model.endswith("#m") else []  # the dead server: no retry delays
    assert _eval(model, out, *fast) == 2
    err = capsys.readouterr().err
    assert err.startswith("cv-bench eval: ") and message in err and err.count("\n") == 1, err
    assert not out.exists(), list(out.iterdir())


def test_a_server_that_hangs_from_the_start_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with StubOpenAIServer([ANSWER], hang_first=100) as server:
        rc = _eval(f"openai:{server.base_url}#stub", tmp_path / "run", "--timeout", "0.5")
        received = server.n_received
    err = capsys.readouterr().err
    assert rc == 2 and "no reply from" in err and "within 0.5 s" in err and received == 1
    assert not (tmp_path / "run").exists()


def test_a_server_that_hangs_mid_run_costs_one_timeout_not_minutes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Answers the check and 3 requests, then hangs: episodes in flight time out once, the rest fail at once,
    and every unscored item is counted and explained."""
    with StubOpenAIServer(lambda b: "OK" if b.get("max_tokens") == 1 else ANSWER, hang_after=4) as server:
        rc = _eval(
            f"openai:{server.base_url}#stub", tmp_path / "run", "--timeout", "0.5", "--concurrency", "2"
        )
        received = server.n_received
    assert rc == 1
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (s["n_items"], s["n_scored"], s["n_unscored"]) == (12, 3, 9)
    reasons = " ".join(s["unscored"]["reasons"])
    assert "within 0.5 s" in reasons and "stopped responding" in reasons
    # no retries of timeouts; after 3 timeouts in a row nothing more is sent: 4 answered + 3 hung + what
    # the other in-flight episode sent meanwhile (concurrency 2)
    assert received <= 4 + 3 + 1, received
    capsys.readouterr()


def test_http_500_on_malformed_calls_is_scored_as_the_models_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def reply(body: dict[str, Any]) -> str:
        if body.get("max_tokens") == 1:
            return "OK"
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        return [BROKEN, FIX, ANSWER][min(turn, 2)]

    with StubOpenAIServer(reply, parse_tool_calls=True) as server:
        rc = _eval(f"openai:{server.base_url}#stub", tmp_path / "run", "--limit", "2")
        received = server.n_received
    assert rc == 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["n_unscored"] == 0 and s["n_scored"] == 2
    t = s["tool_stats"]
    assert t["unreadable"] == 2 and t["malformed_per_item"] == 1.0 and t["calls_per_item"] == 1.0
    assert t["recovery_rate"] == 100.0 and t["exec_error_rate"] == 0.0
    # check + per episode: broken turn and one retry of its 500, then two good turns (never 5 retries)
    assert received == 1 + 2 * (2 + 2)
    capsys.readouterr()


def test_extra_body_timeout_and_retries_reach_the_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with StubOpenAIServer(lambda b: "OK" if b.get("max_tokens") == 1 else ANSWER) as server:
        extra = '{"top_k": 20, "chat_template_kwargs": {"enable_thinking": false}}'
        rc = _eval(
            f"openai:{server.base_url}#stub",
            tmp_path / "run",
            "--limit",
            "1",
            "--extra-body",
            extra,
            "--timeout",
            "30",
        )
        bodies = list(server.requests)
    assert rc == 0
    assert all(b["top_k"] == 20 and b["chat_template_kwargs"] == {"enable_thinking": False} for b in bodies)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["timeout"] == 30.0 and info["extra_body"]["top_k"] == 20
    assert _eval("reference", tmp_path / "ref", "--extra-body", "{bad") == 2
    assert "--extra-body is not valid JSON" in capsys.readouterr().err
    assert _eval("reference", tmp_path / "ref", "--timeout", "5") == 2
    assert "timeout apply to openai:URL#MODEL models only" in capsys.readouterr().err
