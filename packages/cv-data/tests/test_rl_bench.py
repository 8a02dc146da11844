from __future__ import annotations

import numpy as np
import pytest
from cv_data import (
    ORIENTATION_VARIANTS,
    SOURCES,
    BenchConfig,
    BuildReport,
    RLBuildConfig,
    apply_transforms,
    build_bench,
    build_rl_items,
)
from cv_protocol import corrective_ops


def test_rl_items_deterministic_and_parallel_identical() -> None:
    cfg = RLBuildConfig(num=4, seed=4, sources={"chart": 1.0, "document": 1.0}, progress=False)
    a = build_rl_items(cfg)
    b = build_rl_items(
        RLBuildConfig(num=4, seed=4, sources={"chart": 1.0, "document": 1.0}, progress=False, num_proc=2)
    )
    assert [x.id for x in a] == [x.id for x in b]
    for x, y in zip(a, b, strict=True):
        assert x.transform == y.transform and x.bbox == y.bbox
        assert np.array_equal(np.asarray(x.images[0]), np.asarray(y.images[0]))


def test_rl_bbox_is_in_transformed_frame() -> None:
    items = build_rl_items(RLBuildConfig(num=4, seed=1, p_identity=0.0, progress=False))
    assert all(it.transform and it.split == "train" for it in items)
    for it in items:
        src = it.meta["index"]
        base = SOURCES[it.data_source.split("/")[1]](src, 1, "train")
        ops = [t for t in it.transform if t not in base.transform]
        img, box = apply_transforms(base.images[0], base.bbox, ops)
        assert np.array_equal(np.asarray(img), np.asarray(it.images[0]))
        assert box == it.bbox
        # undoing the perturbation restores the source
        back, _ = apply_transforms(
            it.images[0], None, [o for o in corrective_ops(it.transform) if o != "crop"]
        )
        assert np.array_equal(np.asarray(back), np.asarray(base.images[0]))


def test_rl_config_validation() -> None:
    with pytest.raises(ValueError, match="unknown sources"):
        RLBuildConfig(sources={"video": 1.0})
    with pytest.raises(ValueError, match="p_identity"):
        RLBuildConfig(p_identity=2)


def test_orientation_suite() -> None:
    items = build_bench("orientation", num=2, seed=3, progress=False)
    assert len(items) == 12
    base_ids = {it.meta["base_id"] for it in items}
    assert len(base_ids) == 2
    for it in items:
        assert it.id == f"{it.meta['base_id']}/{it.meta['variant']}"
        assert it.transform == list(ORIENTATION_VARIANTS[it.meta["variant"]])
        assert it.split == "test"


def test_corruption_suite() -> None:
    cfg = BenchConfig(
        suite="corruption", num=1, corruptions=["jpeg", "gaussian_blur"], severities=[1, 3, 5], progress=False
    )
    items = build_bench(cfg)
    assert len(items) == 1 + 2 * 3
    assert [it.meta["variant"] for it in items[:3]] == ["clean", "jpeg-s1", "jpeg-s3"]
    assert items[0].meta["variant"] == "clean"
    assert {it.meta["corruption"] for it in items[1:]} == {"jpeg", "gaussian_blur"}
    assert items[1].images[0].size == items[0].images[0].size
    assert not np.array_equal(np.asarray(items[1].images[0]), np.asarray(items[0].images[0]))


def test_multi_tool_suite_and_bad_base_reported() -> None:
    items = build_bench("multi-tool", num=1, progress=False)
    assert all(it.transform[0] == "crop" and len(it.transform) == 2 for it in items)
    base = SOURCES["scene"](0, 1234, "test")
    back, box = apply_transforms(
        items[0].images[0], items[0].bbox, [o for o in corrective_ops(items[0].transform) if o != "crop"]
    )
    assert box == base.bbox and np.array_equal(np.asarray(back), np.asarray(base.images[0]))
    report = BuildReport()
    chart = SOURCES["chart"](0, 0, "test")
    scene = SOURCES["scene"](0, 0, "test")
    out = build_bench("multi-tool", items=[chart, scene], progress=False, report=report)
    assert len(out) == 1 and out[0].meta["base_id"] == scene.id
    assert len(report.errors) == 1 and "no 'crop'" in report.errors[0].message
