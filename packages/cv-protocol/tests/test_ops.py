"""Op vocabulary: names, the op that undoes each transform, rotation angles."""

from __future__ import annotations

import pytest
from cv_protocol import (
    GEOMETRIC_OPS,
    ORIENTATION_OPS,
    TRANSFORM_NAMES,
    corrective_ops,
    rotation_degrees,
)
from hypothesis import given
from hypothesis import strategies as st


def test_vocabulary_sets_agree() -> None:
    assert set(TRANSFORM_NAMES) == GEOMETRIC_OPS == ORIENTATION_OPS | {"crop"}
    assert TRANSFORM_NAMES[0] == "crop" and len(set(TRANSFORM_NAMES)) == len(TRANSFORM_NAMES)


# ------------------------------------------------------------------------------------ corrective ops


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        ([], []),
        (["rotate_90"], ["rotate_270"]),  # counter-clockwise inversion
        (["rotate_270"], ["rotate_90"]),
        (["rotate_180"], ["rotate_180"]),
        (["flip_horizontal"], ["flip_horizontal"]),
        (["flip_vertical"], ["flip_vertical"]),
        (["crop"], ["crop"]),
        (["crop", "rotate_90"], ["rotate_270", "crop"]),
        (["rotate_90", "flip_horizontal"], ["flip_horizontal", "rotate_270"]),  # undone last-first
        (["jpeg", "noise", "rotate_180"], ["rotate_180"]),  # non-geometric perturbations need no op
    ],
)
def test_corrective_ops(transform: list[str], expected: list[str]) -> None:
    assert corrective_ops(transform) == expected


@pytest.mark.parametrize("bad", [["rotate_45"], ["rotate90"], ["flip"], ["crop_center"]])
def test_corrective_ops_rejects_malformed_geometric_names(bad: list[str]) -> None:
    with pytest.raises(ValueError, match="transform"):
        corrective_ops(bad)


def test_corrective_ops_rejects_a_bare_string() -> None:
    with pytest.raises(ValueError, match="list of names"):
        corrective_ops("rotate_90")  # type: ignore[arg-type]


@given(st.lists(st.sampled_from(TRANSFORM_NAMES), max_size=6))
def test_undoing_twice_gives_the_transform_back(transform: list[str]) -> None:
    assert corrective_ops(corrective_ops(transform)) == transform


@given(st.lists(st.sampled_from([t for t in TRANSFORM_NAMES if t != "crop"]), max_size=6))
def test_corrective_rotations_sum_to_whole_turns(transform: list[str]) -> None:
    # Without flips in between, the rotations and their corrections cancel out exactly.
    rotations = [t for t in transform if t.startswith("rotate")]
    fixes = corrective_ops(rotations)
    assert sum(rotation_degrees(o) or 0 for o in rotations + fixes) % 360 == 0


def test_rotation_degrees() -> None:
    assert [rotation_degrees(o) for o in ("rotate_90", "rotate_180", "rotate_270")] == [90, 180, 270]
    assert rotation_degrees("crop") is None and rotation_degrees("rotate_45") is None


# ------------------------------------------------------------------------------------ orientation


def test_orientation_of_undo_is_identity_for_every_transform() -> None:
    from cv_protocol import IDENTITY_ORIENTATION, orientation_of

    for t in [["rotate_90"], ["rotate_270", "flip_horizontal"], ["flip_vertical", "rotate_180"], []]:
        assert orientation_of(corrective_ops(t), start=orientation_of(t)) == IDENTITY_ORIENTATION, t


def test_orientation_of_equivalent_spellings() -> None:
    from cv_protocol import IDENTITY_ORIENTATION, orientation_of

    assert orientation_of(["rotate_90"] * 3) == orientation_of(["rotate_270"])
    assert orientation_of(["flip_horizontal", "flip_vertical"]) == orientation_of(["rotate_180"])
    assert orientation_of(["transpose"]) == orientation_of(["rotate_90", "flip_vertical"])
    assert orientation_of(["rotate_90"]) != orientation_of(["rotate_270"])
    assert orientation_of(["crop", "contrast"]) == IDENTITY_ORIENTATION


@given(
    st.lists(st.sampled_from(["rotate_90", "rotate_180", "rotate_270", "flip_horizontal", "flip_vertical"]))
)
def test_orientation_group_has_eight_elements_and_inverses(ops: list[str]) -> None:
    from cv_protocol import IDENTITY_ORIENTATION, orientation_of

    m = orientation_of(ops)
    assert sorted(map(abs, m)) in ([0, 0, 1, 1],)
    assert orientation_of(corrective_ops(ops), start=m) == IDENTITY_ORIENTATION
