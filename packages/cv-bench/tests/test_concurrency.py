"""Episodes really run concurrently up to --concurrency, and docs examples stay true."""

from __future__ import annotations

import asyncio
import doctest
import importlib
from pathlib import Path

import pytest
from cv_agent import ModelBackend
from cv_bench import EvalConfig, ReferencePolicy, evaluate, load_suite


class Tracking(ModelBackend):
    in_flight = 0
    peak = 0

    def __init__(self, inner: ReferencePolicy) -> None:
        self.inner = inner

    async def generate(self, messages, images, **kw) -> str:
        Tracking.in_flight += 1
        Tracking.peak = max(Tracking.peak, Tracking.in_flight)
        try:
            await asyncio.sleep(0.05)
            return await self.inner.generate(messages, images, **kw)
        finally:
            Tracking.in_flight -= 1


@pytest.mark.parametrize("concurrency", [1, 4])
def test_concurrency_bounds_episodes_in_flight(concurrency: int, tmp_path: Path) -> None:
    items = load_suite("orientation", size=1)
    Tracking.in_flight = Tracking.peak = 0
    out = evaluate(
        EvalConfig(
            model="reference",
            size=1,
            concurrency=concurrency,
            out=tmp_path,
            progress=False,
            trajectories="none",
        ),
        backend_factory=lambda item: Tracking(ReferencePolicy.for_item(item)),
        items=items,
    )
    assert out.summary["avg"] == 100.0
    assert Tracking.peak == concurrency


@pytest.mark.parametrize("module", ["results", "stats", "report", "reference", "runner", "cli"])
def test_docstring_examples(module: str) -> None:
    mod = importlib.import_module(f"cv_bench.{module}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0
