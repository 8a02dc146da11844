from __future__ import annotations

import numpy as np
import pytest
from cv_data import SOURCES, Item


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_sources_deterministic_with_valid_boxes(name: str) -> None:
    for i in range(2):
        a, b = SOURCES[name](i, 5, "train"), SOURCES[name](i, 5, "train")
        assert isinstance(a, Item)
        assert a.question == b.question and a.answer == b.answer and a.bbox == b.bbox
        assert np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))
        assert a.answer.strip()
        if a.bbox is not None:
            x1, y1, x2, y2 = a.bbox
            w, h = a.images[0].size
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            region = np.asarray(a.images[0].convert("L").crop((int(x1), int(y1), int(x2), int(y2))))
            assert region.std() > 10  # there is ink/content in the answer box
    other = SOURCES[name](0, 6, "train")
    assert not (
        other.images[0].size == a.images[0].size
        and other.question == SOURCES[name](0, 5, "train").question
        and np.array_equal(np.asarray(other.images[0]), np.asarray(SOURCES[name](0, 5, "train").images[0]))
    )


def test_varied_sizes_and_kinds() -> None:
    items = [SOURCES[n](i, 0, "train") for n in ("document", "chart") for i in range(5)]
    assert len({it.images[0].size for it in items}) > 8
    assert {it.task_type for it in items} >= {"ocr", "chart"}
    assert len({it.meta["question_kind"] for it in items}) >= 4


def test_chart_answers_match_drawn_values() -> None:
    for i in range(12):
        it = SOURCES["chart"](i, 1, "train")
        vals = it.meta["values"]
        if it.meta["question_kind"] == "value":
            assert it.answer in vals.values()
        elif it.meta["question_kind"] == "max" and it.choices is None:
            assert it.answer == max(vals, key=lambda k: float(vals[k]))


def test_scene_needs_crop() -> None:
    it = SOURCES["scene"](0, 2, "train")
    assert it.transform == ["crop"]
    x1, y1, x2, y2 = it.bbox
    w, h = it.images[0].size
    assert (x2 - x1) * (y2 - y1) < 0.01 * w * h  # the answer is a small region of a large image
    assert min(w, h) >= 800
