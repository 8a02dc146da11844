from __future__ import annotations

import asyncio

import numpy as np
import pytest
from cv_bench.reference import CHECK_FAILED, ReferencePolicy, plan_calls
from PIL import Image, ImageOps


def _img(w: int = 40, h: int = 24) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_plan_crop_then_undo_orientation_in_reverse() -> None:
    calls = plan_calls(["crop", "rotate_90", "flip_horizontal"], [2.4, 3, 20, 18.6])
    assert calls[0].code == "result = image.crop((2, 3, 20, 19))" and calls[0].image_index == 0
    assert calls[1].code == "result = ImageOps.mirror(image)\nresult = result.rotate(270, expand=True)"
    assert calls[1].image_index == 1


def test_plan_needs_bbox_for_crop() -> None:
    with pytest.raises(ValueError, match="no bbox"):
        plan_calls(["crop"], None)


def test_plan_corruption_cleanup() -> None:
    assert [c.code for c in plan_calls([], None, ["noise"])] == [
        "result = image.filter(ImageFilter.MedianFilter(3))"
    ]


def _msgs(n_assistant: int) -> list[dict]:
    return [{"role": "user", "content": "q"}] + [
        {"role": "assistant", "content": "x"},
        {"role": "tool", "content": "y"},
    ] * n_assistant


def test_policy_answers_only_after_verified_outputs() -> None:
    img = _img()
    rotated = img.rotate(90, expand=True)  # the item as received: rotate_90 applied
    p = ReferencePolicy("7", ["rotate_90"], None)
    first = asyncio.run(p.generate(_msgs(0), [rotated]))
    assert "<tool_call>" in first and "rotate(270, expand=True)" in first
    good = asyncio.run(p.generate(_msgs(1), [rotated, rotated.rotate(270, expand=True)]))
    assert good.endswith("<answer>7</answer>")
    # a lost image or wrong pixels make it answer wrong on purpose
    lost = asyncio.run(ReferencePolicy("7", ["rotate_90"], None).generate(_msgs(1), [rotated]))
    assert CHECK_FAILED in lost
    wrong = asyncio.run(
        ReferencePolicy("7", ["rotate_90"], None).generate(
            _msgs(1), [rotated, ImageOps.flip(rotated.rotate(270, expand=True))]
        )
    )
    assert CHECK_FAILED in wrong


@pytest.mark.parametrize("suite", ["orientation", "crop-only"])
def test_a_corrupted_tool_image_makes_the_reference_fail(
    suite: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A harness bug between the executor and the model (here: every tool output the model is shown is
    mirrored) turns each episode with tool calls into a wrong answer; 100 % is asserted in test_eval_e2e."""
    import cv_agent.agent
    from cv_bench import EvalConfig, evaluate, load_results, load_suite

    items = load_suite(suite, size=1)
    inputs = {id(im) for it in items for im in it.images}
    real = cv_agent.agent.model_copy

    async def corrupted(image, **kw):
        copy = await real(image, **kw)
        return copy if id(image) in inputs else ImageOps.mirror(copy)

    monkeypatch.setattr(cv_agent.agent, "model_copy", corrupted)
    cfg = EvalConfig(
        model="reference", suite=suite, size=1, out=tmp_path, progress=False, trajectories="none"
    )
    out = evaluate(cfg, items=items)
    with_calls = [r for r in load_results(tmp_path) if r.tool_calls]
    assert with_calls and all(not r.correct and r.pred == CHECK_FAILED for r in with_calls)
    assert out.summary["overall"] < 100.0 and out.failed == 0
