from __future__ import annotations

import itertools

import numpy as np
import pytest
from cv_data import (
    CORRUPTIONS,
    SEVERITIES,
    TRANSFORMS,
    apply_transform,
    apply_transforms,
    corrupt,
)
from cv_protocol import corrective_ops
from PIL import Image

GEOM = [t for t in TRANSFORMS if t != "crop"]


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im)


@pytest.mark.parametrize(
    "ops",
    [[op] for op in GEOM]
    + [list(p) for p in itertools.permutations(GEOM, 2)]
    + [["crop", "rotate_90"], ["rotate_270", "flip_vertical", "crop"]],
)
def test_corrective_ops_restore_pixels_and_box(noise_image: Image.Image, ops: list[str]) -> None:
    box = [3.0, 5.0, 20.0, 31.0]
    img, b = apply_transforms(noise_image, box, ops)
    back, b2 = apply_transforms(img, b, corrective_ops(ops))
    assert back.size == noise_image.size
    assert np.array_equal(_arr(back), _arr(noise_image))
    assert b2 == box


@pytest.mark.parametrize("op", GEOM)
def test_box_follows_the_pixels(op: str) -> None:
    im = Image.new("RGB", (60, 40), "black")
    box = [7, 4, 19, 30]
    im.paste((255, 0, 0), tuple(box))
    out, mapped = apply_transform(im, box, op)
    ys, xs = np.nonzero(_arr(out)[..., 0])
    assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == mapped


@pytest.mark.parametrize("deg", [90, 180, 270])
def test_rotation_names_are_counter_clockwise_like_pil(noise_image: Image.Image, deg: int) -> None:
    out, _ = apply_transform(noise_image, None, f"rotate_{deg}")
    assert np.array_equal(_arr(out), _arr(noise_image.rotate(deg, expand=True)))


def test_unknown_transform_raises(noise_image: Image.Image) -> None:
    with pytest.raises(ValueError, match="allowed"):
        apply_transform(noise_image, None, "rotate_45")


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corruptions_are_reproducible_and_graded(noise_image: Image.Image, kind: str) -> None:
    base = Image.new("RGB", (48, 32), (120, 130, 140))
    base.paste((250, 250, 250), (10, 8, 30, 20))
    errs = []
    for s in SEVERITIES:
        a = corrupt(base, kind, s, seed=3)
        assert np.array_equal(_arr(a), _arr(corrupt(base, kind, s, seed=3)))
        assert a.size == base.size and a.mode == "RGB"
        errs.append(float(np.mean((_arr(a).astype(float) - _arr(base)) ** 2)))
    assert errs[0] > 0
    if kind != "brightness":  # brightness may brighten or darken per seed
        assert errs == sorted(errs), errs


def test_noise_depends_on_seed() -> None:
    base = Image.new("RGB", (16, 16), "gray")
    assert not np.array_equal(
        _arr(corrupt(base, "gaussian_noise", 2, seed=0)), _arr(corrupt(base, "gaussian_noise", 2, seed=1))
    )


def test_corrupt_validates() -> None:
    im = Image.new("RGB", (4, 4))
    with pytest.raises(ValueError, match="severity"):
        corrupt(im, "jpeg", 0)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(im, "fog", 1)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    w=st.integers(2, 40),
    h=st.integers(2, 40),
    ops=st.lists(st.sampled_from(TRANSFORMS), max_size=4),
    fx=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    fy=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
def test_round_trip_property(
    w: int, h: int, ops: list[str], fx: tuple[float, float], fy: tuple[float, float]
) -> None:
    rng = np.random.default_rng(w * 100 + h)
    im = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
    x1, x2 = sorted(v * w for v in fx)
    y1, y2 = sorted(v * h for v in fy)
    box = [x1, y1, x2, y2]
    out, b = apply_transforms(im, box, ops)
    back, b2 = apply_transforms(out, b, corrective_ops(ops))
    assert np.array_equal(_arr(back), _arr(im))
    assert np.allclose(b2, box)
    assert 0 <= b[0] <= b[2] <= out.size[0] + 1e-9 and 0 <= b[1] <= b[3] <= out.size[1] + 1e-9
