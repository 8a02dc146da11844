"""The image-token invariant and the vLLM placeholder collapse."""

from __future__ import annotations

import pytest
from cv_train.invariants import ImageTokenMismatchError, check_image_tokens, count_image_runs
from cv_train.rl import collapse_image_runs

PAD = 7


def test_count_runs() -> None:
    assert count_image_runs([], PAD) == 0
    assert count_image_runs([PAD, PAD, 1, PAD, 2, 3, PAD], PAD) == 3


def test_check_passes_on_consistent_batch() -> None:
    seqs = [[0, 0, 1, PAD, PAD, 2, 1, PAD, PAD, 2], [1, PAD, PAD, 2, 0, 0, 0, 0, 0, 0]]
    check_image_tokens(seqs, [2, 1], PAD, image_grid_thw=[[1, 2, 4], [1, 2, 4], [1, 4, 2]], merge_size=2)


def test_check_catches_double_expansion_and_dropped_images() -> None:
    with pytest.raises(ImageTokenMismatchError, match="sample 1 has 2 <\\|image_pad\\|> runs but 1 images"):
        check_image_tokens([[PAD, 1], [PAD, 1, PAD]], [1, 1], PAD, where="grpo rollout")
    with pytest.raises(ImageTokenMismatchError, match="grids need 4"):
        check_image_tokens([[PAD, PAD, PAD]], [1], PAD, image_grid_thw=[[1, 4, 4]])
    with pytest.raises(ImageTokenMismatchError, match="2 sequences but 1 image counts"):
        check_image_tokens([[1], [2]], [0], PAD)


def test_collapse_image_runs_is_idempotent() -> None:
    ids = [1, PAD, PAD, PAD, 2, PAD, 3]
    once = collapse_image_runs(ids, PAD)
    assert once == [1, PAD, 2, PAD, 3]
    assert collapse_image_runs(once, PAD) == once
    assert count_image_runs(once, PAD) == count_image_runs(ids, PAD)
