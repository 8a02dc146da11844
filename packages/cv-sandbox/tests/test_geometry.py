"""cv_sandbox.geometry: the one implementation of axis-aligned frame maps (sandbox, agent and RL env use it)."""

from __future__ import annotations

import doctest
from typing import Any

import cv_sandbox
from cv_sandbox import geometry as A


def test_docstring_examples() -> None:
    result = doctest.testmod(A, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_compose_apply_and_clipped_boxes() -> None:
    m = A.compose(A.rotate_90(64, 48), A.translate(5, 10))
    assert A.apply(m, 0, 0) == (54.0, 5.0)
    assert A.map_box(A.IDENTITY, (-5, -5, 70, 20), (64, 48)) == (0, 0, 64, 20)
    assert A.is_axis_aligned(A.rotate_270(3, 4)) and not A.is_axis_aligned((0.9, 0.1, 0, -0.1, 0.9, 0))


def test_float_boxes_are_exact_and_unclipped() -> None:
    flip: Any = (-1, 0, 10, 0, 1, 0)
    assert A.map_box(flip, (2, 3, 4, 5)) == (6.0, 3.0, 8.0, 5.0)
    assert A.compose(flip, flip) == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert A.map_box((1, 0, 5, 0, 1, 5), (0, 0, 10, 10)) == (5.0, 5.0, 15.0, 15.0)
    assert A.map_box(A.IDENTITY, (-5, -5, 70, 20)) == (-5.0, -5.0, 70.0, 20.0)


def test_chain_to_input_follows_lineage() -> None:
    w = 100
    rot = (0, -1, w, 1, 0, 0)  # image 1 = image 0 rotated 90 ccw
    crop = (1, 0, 10, 0, 1, 20)  # image 2 = crop of image 1 at (10, 20)
    parents = [None, 0, 1]
    to_parent = [None, rot, list(crop)]  # lists (as trajectories store them) work too
    m = A.chain_to_input(2, parents, to_parent)
    assert m is not None and A.map_box(m, (0, 0, 10, 10)) == (70.0, 10.0, 80.0, 20.0)
    assert A.map_box(A.chain_to_input(1, parents, to_parent), (10, 20, 30, 60)) == (40.0, 10.0, 80.0, 30.0)
    assert A.chain_to_input(0, parents, to_parent) == A.IDENTITY
    assert A.chain_to_input(2, parents, [None, None, crop]) is None  # untrackable link
    assert A.chain_to_input(2, [None, None, 1], [None, None, crop]) is None  # ends at input 1, not 0


def test_public_names() -> None:
    for name in ("Affine", "IDENTITY", "compose", "map_box", "chain_to_input", "geometry"):
        assert name in cv_sandbox.__all__ and hasattr(cv_sandbox, name)
