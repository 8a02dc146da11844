"""End to end with a real (tiny, random) local VLM through the transformers backend."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from cv_bench import EvalConfig, evaluate, load_results

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_vlm() -> Path:
    from cv_agent.tiny import build_tiny_vlm

    # build_tiny_vlm caches by its arguments (atomic rename), so a shared temp location saves the ~10 s
    # build on later runs and is safe for concurrent test processes.
    return build_tiny_vlm(Path(tempfile.gettempdir()) / "cv-bench-tests" / "tiny-qwen2_5_vl")


@pytest.mark.slow
def test_eval_with_tiny_hf_model(tiny_vlm: Path, tmp_path: Path) -> None:
    cfg = EvalConfig(
        model=f"hf:{tiny_vlm}",
        suite="orientation",
        size=1,
        limit=2,
        max_turns=2,
        max_new_tokens=12,
        max_pixels=64 * 28 * 28,
        out=tmp_path,
        progress=False,
        concurrency=2,
    )
    out = evaluate(cfg)
    assert out.failed == 0, out.errors
    results = load_results(tmp_path)
    assert sorted(r.item_id for r in results) == sorted(f"doc-s0-000000/{v}" for v in ("source", "rot90"))
    for r in results:
        # a random model rarely answers: whatever it did is recorded and scored, never dropped
        assert r.model == f"hf:{tiny_vlm}" and 1 <= r.turns <= 2
        assert r.stop_reason in {"answer", "max_turns", "no_tool_call", "token_budget"}
        assert r.match_method in {"none", "text", "numeric", "choice"}
        assert r.trajectory and (tmp_path / r.trajectory).is_file()
    assert (tmp_path / "report.html").is_file() and out.summary["n_results"] == 2
    # rerun resumes: nothing left to do
    again = evaluate(cfg)
    assert (again.new, again.skipped) == (0, 2)
