"""Many calls at once, from threads and from asyncio, each get their own correct result."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from cv_sandbox import Sandbox
from PIL import Image


def _code(k: int) -> str:
    return f"print({k})\nresult = image.crop((0, 0, {k + 1}, {k + 2}))"


def test_threads(sandbox: Sandbox, src: Image.Image) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda k: sandbox.run(_code(k), [src]), range(24)))
    for k, r in enumerate(results):
        assert r.ok, r.error
        assert r.image.size == (k + 1, k + 2)
        assert r.stdout == f"{k}\n"
        assert r.crop_boxes == [(0, 0, k + 1, k + 2)]


async def test_asyncio(sandbox: Sandbox, src: Image.Image) -> None:
    results = await asyncio.gather(*(sandbox.arun(_code(k), [src]) for k in range(24)))
    for k, r in enumerate(results):
        assert r.ok and r.image.size == (k + 1, k + 2) and r.stdout == f"{k}\n"


async def test_mixed_failures_do_not_disturb_others(sandbox: Sandbox, src: Image.Image) -> None:
    codes = [_code(k) if k % 3 else "import os" for k in range(12)]
    results = await asyncio.gather(*(sandbox.arun(c, [src]) for c in codes))
    for k, r in enumerate(results):
        if k % 3:
            assert r.ok and r.image.size == (k + 1, k + 2)
        else:
            assert r.error_kind == "forbidden"
