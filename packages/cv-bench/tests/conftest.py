"""Shared fixtures: synthetic result lines, so report tests need no model or suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cv_bench.results import ItemResult, ResultStore, ToolCallSummary

VARIANTS = ("source", "rot90", "rot180", "rot270", "flip-h", "flip-v")


def make_results(
    model: str = "m", n_base: int = 4, wrong_variant: str | None = "rot90", samples: int = 1
) -> list[ItemResult]:
    """n_base x 6 variants; every item of ``wrong_variant`` is wrong, the others right."""
    out = []
    for b in range(n_base):
        for v in VARIANTS:
            for s in range(samples):
                calls = [] if v == "source" else [ToolCallSummary(True, None, ["rotate_270"])]
                if v == "rot180":
                    calls = [
                        ToolCallSummary(False, "exception", []),
                        ToolCallSummary(True, None, ["rotate_180"]),
                    ]
                ok = v != wrong_variant
                out.append(
                    ItemResult(
                        item_id=f"b{b}/{v}",
                        sample=s,
                        suite="orientation",
                        variant=v,
                        base_id=f"b{b}",
                        data_source="synthetic/document",
                        question="What is the total?",
                        gt="42",
                        pred="42" if ok else "17",
                        correct=ok,
                        match_method="numeric",
                        transform=[],
                        stop_reason="answer",
                        turns=len(calls) + 1,
                        tool_calls=calls,
                        model=model,
                    )
                )
    return out


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    store = ResultStore(d / "results.jsonl")
    store.extend(make_results())
    (d / "run.json").write_text(json.dumps({"model": "m", "suite": "orientation", "label": "m"}))
    return d


@pytest.fixture(name="make_results")
def make_results_fixture():
    """The :func:`make_results` factory (tests cannot import conftest under --import-mode=importlib)."""
    return make_results
