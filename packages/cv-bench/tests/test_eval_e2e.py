"""End to end: the reference policy through the real agent loop and sandbox, resume after crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cv_agent import ModelBackend
from cv_bench import EvalConfig, ReferencePolicy, evaluate, load_results, load_suite
from cv_bench.cli import main

BUILTIN = ("orientation", "corruption", "multi-tool", "crop-only")


@pytest.mark.parametrize("suite", BUILTIN)
def test_reference_scores_100_on_builtin_suites(suite: str, tmp_path: Path) -> None:
    # size 2 covers both sources (document, chart) of orientation/corruption; the scene suites have one
    size = 2 if suite in ("orientation", "corruption") else 1
    out = evaluate(
        EvalConfig(
            model="reference",
            suite=suite,
            size=size,
            out=tmp_path / suite,
            progress=False,
            trajectories="none",
        )
    )
    s = out.summary
    assert out.failed == 0 and out.new == s["n_results"] > 0
    assert s["avg"] == 100.0 and s["n_unscored"] == 0, s["accuracy"]
    results = load_results(tmp_path / suite)
    # the policy really used the tool wherever the item was perturbed, and every call executed
    for r in results:
        if r.transform:
            assert r.tool_calls and all(c.ok for c in r.tool_calls), r
    assert s["tool_stats"]["exec_error_rate"] in (0.0, None)


def test_orientation_cli_prints_paper_table_and_links_trajectories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert (
        main(
            [
                "eval",
                "--model",
                "reference",
                "--suite",
                "orientation",
                "--size",
                "2",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert text.startswith("accuracy 100.0 % (95 % CI 75.8-100.0), 12 items, all scored")
    header, _, row = text.splitlines()[2:5]
    assert [c.strip() for c in header.split("|")] == [
        "Model",
        "source",
        "rot90",
        "rot180",
        "rot270",
        "flip-h",
        "flip-v",
        "All",
    ]
    assert row.split("|")[-1].strip() == "100.0"
    results = load_results(out)
    assert len(results) == 12 and {r.variant for r in results} == {
        "source",
        "rot90",
        "rot180",
        "rot270",
        "flip-h",
        "flip-v",
    }
    html = (out / "report.html").read_text()
    for r in results:
        assert r.trajectory and (out / r.trajectory).is_file()
        assert f'href="{r.trajectory}"' in html
    assert json.loads((out / "summary.json").read_text())["avg"] == 100.0


class CrashAfter:
    """Reference policy that kills the run (SystemExit) once ``n`` episodes have answered."""

    answered = 0

    def __init__(self, n: int, exc: type[BaseException] = SystemExit) -> None:
        self.n, self.exc = n, exc

    def __call__(self, item):  # backend factory
        outer = self
        inner = ReferencePolicy.for_item(item)

        class Backend(ModelBackend):
            async def generate(self, messages, images, **kw):
                if CrashAfter.answered >= outer.n:
                    raise outer.exc("simulated crash")
                text = await inner.generate(messages, images, **kw)
                if "<answer>" in text:
                    CrashAfter.answered += 1
                return text

        return Backend()


@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt])
def test_resume_after_simulated_crash_loses_and_duplicates_nothing(
    exc: type[BaseException], tmp_path: Path
) -> None:
    items = load_suite("orientation", size=1)
    cfg = dict(
        model="reference",
        suite="orientation",
        size=1,
        out=tmp_path,
        progress=False,
        concurrency=1,
        trajectories="none",
    )
    CrashAfter.answered = 0
    with pytest.raises(exc):
        evaluate(EvalConfig(**cfg), backend_factory=CrashAfter(3, exc), items=items)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3
    # and the process died in the middle of writing a sixth line
    with open(tmp_path / "results.jsonl", "a") as f:
        f.write(lines[0][:30])
    out = evaluate(EvalConfig(**cfg))
    assert (out.skipped, out.new, out.failed) == (3, 3, 0)
    results = load_results(tmp_path)
    keys = [(r.item_id, r.sample) for r in results]
    assert len(keys) == len(set(keys)) == 6
    assert sorted(k[0] for k in keys) == sorted(it.id for it in items)
    assert out.summary["avg"] == 100.0
    # a third run has nothing left to do
    again = evaluate(EvalConfig(**cfg))
    assert (again.skipped, again.new) == (6, 0)


def test_resume_after_sigkill_of_a_real_process(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "cv_bench",
        "eval",
        "--model",
        "reference",
        "--suite",
        "orientation",
        "--size",
        "2",
        "--concurrency",
        "1",
        "--out",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = out / "results.jsonl"
    deadline = time.time() + 90
    try:
        while time.time() < deadline:
            if results.exists() and len(results.read_bytes().splitlines()) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail("eval finished before it could be killed")
            time.sleep(0.02)
        else:
            pytest.fail("no results appeared")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = len(load_results(out))
    assert 3 <= killed_at < 12
    assert main(cmd[3:]) == 0
    res = load_results(out)
    assert len(res) == len({r.key for r in res}) == 12
    assert all(r.correct for r in res)


def test_rerun_with_other_model_refuses(tmp_path: Path) -> None:
    evaluate(EvalConfig(model="reference", size=1, out=tmp_path, progress=False, trajectories="none"))
    with pytest.raises(ValueError, match="holds a different run"):
        evaluate(EvalConfig(model="reference", size=1, seed=1, out=tmp_path, progress=False))


def test_avg_at_k_runs_k_samples(tmp_path: Path) -> None:
    out = evaluate(
        EvalConfig(model="reference", size=1, samples=2, out=tmp_path, progress=False, trajectories="none")
    )
    assert out.new == 12 and out.summary["k"] == 2
    assert {r.sample for r in load_results(tmp_path)} == {0, 1}


def test_harness_failure_is_not_scored_and_is_retried(tmp_path: Path) -> None:
    class Broken(ModelBackend):
        async def generate(self, messages, images, **kw):
            raise ConnectionError("endpoint down")

    cfg = dict(model="reference", size=1, limit=3, out=tmp_path, progress=False, trajectories="none")
    out = evaluate(EvalConfig(**cfg), backend_factory=lambda item: Broken())
    assert (out.new, out.failed) == (0, 3)
    errors = (tmp_path / "errors.jsonl").read_text().splitlines()
    assert len(errors) == out.failed and "endpoint down" in errors[0]
    assert len(load_results(tmp_path)) == out.new
    fixed = evaluate(EvalConfig(**cfg))
    assert fixed.failed == 0 and len(load_results(tmp_path)) == 3
