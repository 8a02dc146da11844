"""A server that fails half the items: every view counts them as wrong and says why; compare checks items.

Reproduces the report: with a server answering HTTP 400 ("context too long") for half the items, eval
exited 1 but the table, summary.json (n_items 6 of 12), report.html, `cv-bench report` (exit 0) and
`cv-bench compare` all showed 100.0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cv_agent.testing import StubOpenAIServer
from cv_bench import load_suite
from cv_bench.cli import main

CONTEXT = "This model's maximum context length is 32768 tokens. However, you requested 40000 tokens."


def _question(body: dict[str, Any]) -> str:
    user = next(m for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], list))
    return next(p["text"] for p in user["content"] if p.get("type") == "text")


@pytest.fixture(scope="module")
def answers() -> dict[str, str]:
    return {it.question: it.answer for it in load_suite("orientation", size=2)}


def _server(answers: dict[str, str]) -> StubOpenAIServer:
    """Answers document items right; fails every chart item (6 of 12) with HTTP 400."""

    def errors(body: dict[str, Any]) -> tuple[int, str] | None:
        if body.get("max_tokens") == 1:
            return None  # the model check
        return (400, CONTEXT) if "chart" in _question(body) else None

    def reply(body: dict[str, Any]) -> str:
        if body.get("max_tokens") == 1:
            return "OK"
        return f"<think>read it</think><answer>{answers[_question(body)]}</answer>"

    return StubOpenAIServer(reply, errors=errors)


def _eval(server: StubOpenAIServer, out: Path, *extra: str) -> int:
    spec = f"openai:{server.base_url}#stub"
    argv = ["eval", "--model", spec, "--suite", "orientation", "--size", "2", "--out", str(out), "--quiet"]
    return main([*argv, "--max-retries", "0", *extra])


def test_unscored_items_count_as_wrong_in_every_view(
    answers: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "half"
    with _server(answers) as server:
        assert _eval(server, run) == 1
    out, err = capsys.readouterr()
    # the terminal table: 50 %, n = 12, and a warning that names the reason
    assert out.startswith("accuracy 50.0 % (95 % CI 25.4-74.6), 12 items, 6 of 12 episodes UNSCORED")
    row = next(line for line in out.splitlines() if line.startswith("openai:"))
    assert [c.strip() for c in row.split("|")][-1] == "50.0"
    assert (
        "WARNING: 6 of 12 episodes could not be scored and count as wrong" in err and "maximum context" in err
    )
    # summary.json: n is the suite's size, the unscored ones are listed with their reason
    s = json.loads((run / "summary.json").read_text())
    assert (s["n_items"], s["n_scored"], s["n_unscored"], s["avg"]) == (12, 6, 6, 50.0)
    assert s["n"] == {v: 2 for v in ("source", "rot90", "rot180", "rot270", "flip-h", "flip-v")}
    assert all(a == 50.0 for a in s["accuracy"].values())
    (reason, count), *_ = s["unscored"]["reasons"].items()
    assert count == 6 and "HTTP 400" in reason and "maximum context length" in reason
    assert {e["item_id"].split("/")[0] for e in s["unscored"]["episodes"]} == {"chart-s0-000001"}
    assert s["match_methods"]["unscored"] == 6
    # report.html: a visible warning, the headline, and the unscored rows
    html = (run / "report.html").read_text()
    assert 'id="warning"' in html and "count as wrong" in html and html.count('class="unscored"') == 6
    assert 'id="headline">accuracy 50.0 %' in html
    # cv-bench report: the same numbers, exit 1
    assert main(["report", str(run)]) == 1
    out, err = capsys.readouterr()
    assert "6 of 12 episodes UNSCORED" in out and "WARNING" in err


def test_a_rerun_scores_what_failed_and_the_warning_goes(
    answers: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    with _server(answers) as server:
        assert _eval(server, run) == 1
        server.errors = None  # the server is fixed; the same command retries what failed
        assert _eval(server, run) == 0
    s = json.loads((run / "summary.json").read_text())
    assert (s["n_unscored"], s["avg"], s["warning"]) == (0, 100.0, None)
    capsys.readouterr()


def test_compare_refuses_runs_over_different_items(
    answers: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    assert (
        main(
            [
                "eval",
                "--model",
                "reference",
                "--size",
                "2",
                "--out",
                str(full),
                "--quiet",
                "--trajectories",
                "none",
            ]
        )
        == 0
    )
    argv = ["eval", "--model", "reference", "--size", "2", "--limit", "6", "--out", str(part), "--quiet"]
    assert main([*argv, "--trajectories", "none"]) == 0
    capsys.readouterr()
    assert main(["compare", str(full), str(part)]) == 2
    err = capsys.readouterr().err
    assert "cover different items" in err and "6 items (0 not in" in err and "6 missing" in err
    assert main(["compare", str(full), str(part), "--allow-different-items"]) == 0
    out = capsys.readouterr().out
    assert "NOT comparable" in out and any(
        line.rstrip().endswith("*") or " * " in line for line in out.splitlines()
    )


def test_compare_flags_unscored_episodes(
    answers: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    half, ref = tmp_path / "half", tmp_path / "ref"
    with _server(answers) as server:
        _eval(server, half)
    assert (
        main(
            [
                "eval",
                "--model",
                "reference",
                "--size",
                "2",
                "--out",
                str(ref),
                "--quiet",
                "--trajectories",
                "none",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["compare", str(ref), str(half)]) == 0
    out = capsys.readouterr().out
    assert "WARNING:" in out and "6 of 12 episodes could not be scored" in out
    delta = next(line for line in out.splitlines() if line.startswith("delta"))
    assert delta.split("|")[-1].strip() == "-50.0"


def test_old_run_without_item_set_counts_logged_failures(make_results, tmp_path: Path) -> None:
    """A run made before items.jsonl existed: the items of errors.jsonl still count."""
    from cv_bench.report import summarize_run
    from cv_bench.results import ResultStore

    ResultStore(tmp_path / "results.jsonl").extend(make_results(n_base=1, wrong_variant=None))
    line = {"item_id": "b9/rot90", "sample": 0, "error": "b9/rot90#s0: HarnessError: boom", "time": 0}
    (tmp_path / "errors.jsonl").write_text(json.dumps(line) + "\n")
    s = summarize_run(tmp_path)
    assert (s["n_items"], s["n_unscored"], s["avg"]) == (7, 1, round(600 / 7, 2))
    assert s["unscored"]["reasons"] == {"boom": 1}
