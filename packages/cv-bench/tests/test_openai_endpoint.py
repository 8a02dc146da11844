"""``--model openai:URL#MODEL`` end to end against a local OpenAI-compatible stub server."""

from __future__ import annotations

import json
from pathlib import Path

from cv_agent.testing import StubOpenAIServer
from cv_bench import load_results
from cv_bench.cli import main
from cv_protocol import render_tool_call


def test_openai_backend_eval_records_tool_use(tmp_path: Path) -> None:
    replies = [
        "<think>rotated?</think>\n" + render_tool_call("result = image.rotate(90, expand=True)", "rotate", 0),
        "<think>bad code</think>\n" + render_tool_call("result = undefined_name", "oops", 1),
        "<think>done</think><answer>no idea</answer>",
    ]
    with StubOpenAIServer(replies, latency_s=0.01) as server:
        rc = main(
            [
                "eval",
                "--model",
                f"openai:{server.base_url}#stub-vlm",
                "--suite",
                "orientation",
                "--limit",
                "3",
                "--concurrency",
                "2",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
        bodies = list(server.requests)
        peak = server.max_in_flight
    assert rc == 0
    res = load_results(tmp_path)
    assert len(res) == 3 and peak <= 2
    for r in res:
        assert r.model.endswith("#stub-vlm") and r.pred == "no idea" and not r.correct
        assert [c.ok for c in r.tool_calls] == [True, False] and r.tool_calls[0].ops == ["rotate_90"]
        assert r.tool_calls[1].error_kind and r.turns == 3 and r.stop_reason == "answer"
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["tool_stats"]["exec_error_rate"] == 50.0 and s["tool_stats"]["recovery_rate"] == 0.0
    # the model really received the images: input, then the tool output, as image parts
    last = json.dumps(bodies[-1])
    assert last.count("image_url") >= 2
